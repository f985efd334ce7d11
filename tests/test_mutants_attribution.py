"""The gradient methods (interp/circuits/attribution.py) by hand.

Written to kill the mutants `make mutation` found alive (docs/mutation.md): the
objective on tiny logits whose log-probabilities are worked out on paper (two
pairs, three positions, two columns, so no axis can stand in for another), and
EAP's single clean-run gradient on `reverse`, the EAP-IG integral of
test_circuits_scoring.py taken at t = 0 only.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from examples.library import EXAMPLES
from interp.circuits import eap, example_model, make_dataset
from interp.circuits.attribution import objective
from tests.test_circuits_scoring import CARRYING, changed_positions

LN3 = math.log(3.0)  # logits (ln 3, 0) give probabilities (3/4, 1/4)


def model(numerical=False):
    return SimpleNamespace(config=SimpleNamespace(output_numerical=numerical))


def test_categorical_objective_by_hand():
    clean = np.array([[[1, 0], [0, 1], [1, 0]],      # answers 0, 1, 0
                      [[0, 1], [1, 0], [0, 1]]], np.float32)  # answers 1, 0, 1
    logits = np.array([[[0, 0], [LN3, 0], [LN3, 0]],
                       [[LN3, 0], [0, 0], [0, LN3]]], np.float32)
    scored = np.array([[True, True, False], [False, True, True]])
    # pair 0: log 1/2 + log 1/4 (the third position is not scored); pair 1: log 1/2 + log 3/4
    want = [math.log(1 / 8), math.log(3 / 8)]
    assert np.asarray(objective(model(), clean, logits, scored)) == pytest.approx(want, rel=1e-5)


def test_numerical_objective_sums_the_scored_values():
    values = np.array([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]], np.float32)
    scored = np.array([[True, False, True], [False, True, True]])
    out = np.asarray(objective(model(numerical=True), values, values, scored))
    assert out.tolist() == [4.0, 11.0]


def test_objective_without_output_columns_is_zero_per_pair():
    empty = np.zeros((2, 3, 0), np.float32)
    out = np.asarray(objective(model(), empty, empty, np.ones((2, 3), bool)))
    assert out.shape == (2,) and (out == 0).all()


def test_eap_is_the_integrand_at_the_clean_run():
    """At t = 0 the logits at a changed position are e_c, so f(0) = −1 − s_c' + s_c with
    s_c = e/D, s_c' = 1/D, D = e + 1 + V − 2 (see the EAP-IG test); the default
    granularity is the component one."""
    dataset = make_dataset(EXAMPLES["reverse"], example_model("reverse"), 16, seed=0)
    v = len(EXAMPLES["reverse"].vocab)
    denominator = math.e + 1 + v - 2
    f = -1 - 1 / denominator + math.e / denominator
    expected = np.mean([abs(k * f) for k in changed_positions(dataset)])
    assert expected > 0.5
    scores = eap(dataset)
    assert CARRYING <= set(scores)
    for edge, score in scores.items():
        want = expected if edge in CARRYING else 0.0
        assert score == pytest.approx(want, rel=1e-3, abs=1e-6), edge
