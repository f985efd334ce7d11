"""interp/compress_train.py piece by piece: matching, the read metric and basis, the loss
recomputed in numpy from the public forward, the validator, the read rank, the restarts.

Written to kill the mutants `make mutation` found alive (docs/mutation.md). Expected
values are worked out by hand, taken from the documentation (docs/superposition.md:
frac_prevs's read rank is 11), or recomputed in numpy from `run_batch` on the original
and the folded model; the restart logic runs on stand-in starts with made-up scores.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import interp.compress_train as train
from compiler import CompiledModel
from examples.library import EXAMPLES
from interp.compress import CompressedModel, exact_match
from interp.compress_train import (TrainingResult, TrainingSettings, Validator, encode_batch,
                                   make_loss, outputs_match, pca_projection, read_basis,
                                   read_rank, read_residuals, reference_outputs,
                                   residual_metric, train_projection)
from interp.circuits import example_model
from tests.helpers import compile_example
from rasp_runtime.interventions import run_batch


@pytest.fixture(scope="module")
def frac_prevs():
    return compile_example("frac_prevs")


def frac_inputs(count, seed):
    rng = random.Random(seed)
    return [EXAMPLES["frac_prevs"].sample(rng) for _ in range(count)]


def keep(d_model, *coordinates):
    """W whose rows pick residual coordinates (z = x[coordinates])."""
    return np.eye(d_model, dtype=np.float32)[list(coordinates)]


@pytest.mark.parametrize("want,got,tolerance,match", [
    ([1, None, "a"], [1, None, "a"], 0.01, True),
    ([1, 2], [1], 0.01, False),                  # lengths differ
    ([1, 2], [1, 2, 3], 0.01, False),
    ([None], [0], 0.01, False), ([0], [None], 0.01, False),  # None only where None is due
    ([0.5], [0.75], 0.25, True),                 # exactly at the tolerance: agrees
    ([0.5], [0.75], 0.125, False),
    ([1], [1.004], 0.01, True),                  # an int expected, a float decoded
    ([0.5], [0.25], 0.25, True), ([0.5], [0.2], 0.25, False),
    (["a"], ["b"], 0.01, False), ([2], [3], 0.01, False),
    ([1], ["1"], 0.01, False)])                  # a number expected, a token decoded
def test_outputs_match_by_hand(want, got, tolerance, match):
    assert outputs_match(want, got, tolerance) is match


def test_the_read_basis_keeps_eigenvalues_above_a_1e_13_share_of_the_largest():
    edge = 4.0 * 1e-13  # exactly the cut-off share of the largest eigenvalue, 4: dropped
    basis = read_basis(np.diag([1.0, 0.0, edge, 4.0, 1e-12]))
    assert basis.shape == (5, 3)
    np.testing.assert_allclose(basis @ basis.T, np.diag([1.0, 0, 0, 1, 1]), atol=1e-12)


def fake_model(params, d):
    return SimpleNamespace(config=SimpleNamespace(d_model=d), params=params)


def test_the_readers_metric_by_hand():
    params = {"layer/attn/query": {"w": np.array([[1.0], [0.0]])},
              "layer/attn/linear": {"w": np.array([[5.0, 5.0]])},  # a writer: not read
              "unembed": {"w": np.array([[0.0], [2.0]])}}
    # R·Rᵀ: diag(1, 0) + diag(0, 4); trace 5, scaled to trace 2
    np.testing.assert_allclose(residual_metric(fake_model(params, 2), "reads"),
                               np.diag([0.4, 1.6]), atol=1e-12)
    nothing = {"unembed": {"w": np.zeros((2, 1))}}
    np.testing.assert_array_equal(residual_metric(fake_model(nothing, 2), "reads"), np.eye(2))
    np.testing.assert_array_equal(residual_metric(fake_model(params, 2), "euclidean"),
                                  np.eye(2))
    with pytest.raises(ValueError, match=r"^residual_metric must be 'reads' or 'euclidean', "
                                         r"got 'cosine'$"):
        residual_metric(fake_model(params, 2), "cosine")


def test_encode_batch_pads_to_max_seq_len_plus_one():
    model = example_model("reverse")  # BOS 0, a 1, b 2, c 3, PAD 4; N = 5
    ids, valid = encode_batch(model, [["a", "c"], ["b", "b", "a", "c", "a"]])
    np.testing.assert_array_equal(ids, [[0, 1, 3, 4, 4, 4], [0, 2, 2, 1, 3, 1]])
    np.testing.assert_array_equal(valid, [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])


def test_reference_outputs_without_a_program_are_the_models_own():
    model = example_model("reverse")
    bare = CompiledModel(model.params, model.config, model.residual_labels, model.components,
                         list(model.value_records.values()))
    inputs = [("a", "b", "c"), ("c",)]
    assert reference_outputs(bare, inputs) == ([["a", "b", "c"], ["c"]], [["c", "b", "a"], ["c"]])
    assert reference_outputs(model, inputs) == ([["a", "b", "c"], ["c"]],
                                                [["c", "b", "a"], ["c"]])


def numpy_output_loss(model, w, inputs):
    """The numerical output loss from the public forward: the mean squared error over token
    positions (not BOS) between the folded model and the original."""
    batch = [["BOS", *xs] for xs in inputs]
    narrow = run_batch(CompressedModel(model, w), batch)["output"][..., 0]
    reference = run_batch(model, batch)["output"][..., 0]
    errors = [float(a) - float(b) for got, want, xs in zip(narrow, reference, inputs)
              for a, b in zip(got[1:len(xs) + 1], want[1:len(xs) + 1])]
    return float(np.mean(np.square(errors)))


def numpy_residual_loss(model, w, inputs):
    """The euclidean residual term: |z·W − x|² averaged over residuals and real positions
    (BOS included)."""
    batch = [["BOS", *xs] for xs in inputs]
    narrow = run_batch(CompressedModel(model, w), batch)["residuals"]
    original = run_batch(model, batch)["residuals"]
    terms = [((z[row, :len(xs) + 1] @ w - x[row, :len(xs) + 1]) ** 2).sum(-1)
             for z, x in zip(narrow, original) for row, xs in enumerate(inputs)]
    return float(np.concatenate(terms).sum() / (len(narrow) * sum(len(xs) + 1 for xs in inputs)))


def test_the_numerical_loss_recomputed_from_the_public_forward(frac_prevs):
    inputs = frac_inputs(16, 1)
    ids, valid = map(jnp.asarray, encode_batch(frac_prevs, inputs))
    w = keep(14, 0, 1, 2, 3, 4, 5, 7, 8, 9, 11)
    output = numpy_output_loss(frac_prevs, w, inputs)
    residual = numpy_residual_loss(frac_prevs, w, inputs)
    assert output > 1e-4 and residual > 1e-3  # this W does lose something
    plain = float(jax.jit(make_loss(frac_prevs, 10, 0.0))(w, ids, valid))
    assert plain == pytest.approx(output, rel=1e-4)
    both = float(jax.jit(make_loss(frac_prevs, 10, 2.0, "euclidean"))(w, ids, valid))
    assert both == pytest.approx(output + 2.0 * residual, rel=1e-4)
    exact = jax.jit(make_loss(frac_prevs, 14, 1.0, "euclidean"))(np.eye(14, dtype=np.float32),
                                                                 ids, valid)
    assert float(exact) == pytest.approx(0.0, abs=1e-9)


def test_the_categorical_loss_of_an_exact_model_by_hand():
    """W = I: every logit row is one-hot (1 on the answer), with the None column at the
    decode threshold 0.5; at scale 10 the cross-entropy is log(1 + 2e^-10 + e^-5)."""
    model = example_model("reverse")  # three output values
    ids, valid = map(jnp.asarray, encode_batch(model, [["a", "b"], ["c", "a", "b", "b"]]))
    loss = jax.jit(make_loss(model, model.config.d_model, 1.0))
    want = math.log(1 + 2 * math.exp(-10) + math.exp(-5))
    assert float(loss(np.eye(model.config.d_model, dtype=np.float32), ids, valid)) == \
        pytest.approx(want, rel=1e-3)


def test_the_validator_agrees_with_exact_match(frac_prevs):
    inputs = frac_inputs(40, 2)
    kept, expected = reference_outputs(frac_prevs, inputs)
    w = keep(14, 0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13)
    for tolerance in (1e-2, 3e-2):
        validator = Validator(frac_prevs, 12, kept, expected, tolerance)
        want = exact_match(CompressedModel(frac_prevs, w), inputs, tolerance)
        assert 0.0 < want < 1.0 or tolerance == 3e-2
        assert validator.accuracy(w) == pytest.approx(want)
    assert Validator(frac_prevs, 12, [], [], 1e-2).accuracy(w) == 1.0


def test_the_read_rank_and_the_pca_start(frac_prevs):
    # docs/superposition.md: frac_prevs's residuals span 11 dimensions as readers see them
    inputs = frac_inputs(200, 3)
    assert read_rank(frac_prevs, inputs) == 11
    metric = residual_metric(frac_prevs, "reads")
    read = read_residuals(frac_prevs, inputs, metric)
    for dim in (11, 10):
        w = pca_projection(frac_prevs, inputs, dim, metric).astype(np.float64)
        assert w.shape == (dim, 14)
        np.testing.assert_allclose(w @ w.T, np.eye(dim), atol=1e-5)
        lost = np.abs(read @ w.T @ w - read).max()
        assert (lost < 1e-4) if dim == 11 else (lost > 1e-2)


def stand_in_starts(monkeypatch, scores, exact):
    """Starts that return made-up validation scores: start r (seed 10 + 7919·r) scored
    scores[r], ran r + 3 steps and stopped early if exact[r]."""
    seeds = []

    def one_start(model, settings, sampler, validator):
        r = (settings.seed - 10) // 7919
        seeds.append(settings.seed)
        return TrainingResult(np.full((1, 1), r, np.float32), (1.0,) * (r + 3),
                              ((0, 0.0), (r + 3, scores[r])), exact[r])

    monkeypatch.setattr(train, "_train_one_start", one_start)
    return seeds


@pytest.mark.parametrize("restarts,scores,exact,starts,kept", [
    (3, [0.2, 0.7, 0.5], [False, False, False], 3, 2),  # all run; the best is the second
    (3, [0.2, 1.0, 0.9], [False, True, False], 2, 2),   # the second is exact: no third
    (3, [0.5, 0.5, 0.9], [False, False, False], 3, 3),
    (2, [0.6, 0.6, 0.9], [False, False, False], 2, 1),  # a tie keeps the first
    (1, [0.3, 0.9, 0.9], [False, False, False], 1, 1)])
def test_restarts_by_hand(monkeypatch, restarts, scores, exact, starts, kept):
    seeds = stand_in_starts(monkeypatch, scores, exact)
    result = train_projection(None, TrainingSettings(dim=1, seed=10, restarts=restarts),
                              None, None)
    assert seeds == [10 + 7919 * r for r in range(starts)]
    assert (result.starts, result.kept_start) == (starts, kept)
    assert result.projection[0, 0] == kept - 1
    assert result.steps_all_starts == sum(r + 3 for r in range(starts))
    assert result.validation[-1] == (kept + 2, scores[kept - 1])


def test_each_evaluation_is_recorded_and_the_last_step_is_always_evaluated(frac_prevs):
    from interp.compress import compress
    narrow = compress(frac_prevs, 3, steps=5, eval_every=2, batch_size=4, init="random",
                      validation_size=8, example="frac_prevs", progress=False)
    training = narrow.training
    assert [step for step, _ in training["validation"]] == [0, 2, 4, 5]
    assert training["steps_run"] == 5 and not training["stopped_early"]
    best = max(score for _, score in training["validation"])
    # the kept W is the best evaluated one (the latest of equals): its score is the best
    rng = random.Random(1_000_003)  # compress's validation inputs
    sample = lambda r: EXAMPLES["frac_prevs"].sample(r, 8, ["x", "y", "z"])
    assert exact_match(narrow, [sample(rng) for _ in range(8)]) == pytest.approx(best)
