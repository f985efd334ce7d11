"""craft.clean_lookup: exact outputs from one-hots that err by up to INPUT_TOLERANCE.

Inputs are one-hots with every direction pushed by ±1/16 (the extremes and random
values in between); expected outputs come from the tables written here. Errors must
stay within `error_bound` in every explicit summation order.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import BlockInfo
from craft.clean_lookup import (INPUT_TOLERANCE, clean_lookup_mlp, clean_pair_lookup_mlp,
                                error_bound)
from tests.float_orders import every_order

INFO = BlockInfo(("f",), "map")
A = VectorSpace.from_values("a", range(5))
B = VectorSpace.from_values("b", ["x", "y", "z"])
NUM = VectorSpace((BasisDirection("out"),))
TABLE = {0: -3.5, 1: 0.0, 2: 2.25, 3: 17.0, 4: -0.125}
PAIR_TABLE = {(a, b): (a * 7 - 3 * i) % 5 - 2.5 for a in range(5) for i, b in enumerate("xyz")}


def noisy_rows(rng, spaces, values):
    """One row per value tuple: its one-hots, every direction moved by up to 1/16."""
    rows = []
    for tup in values:
        row = {}
        for space, value in zip(spaces, tup):
            for d in space.basis:
                push = rng.choice([-1.0, 1.0, rng.uniform(-1, 1)]) * INPUT_TOLERANCE
                row[d] = float(d.value == value) + push
        rows.append(row)
    return rows


def residual_for(spaces, rows, out):
    residual = VectorSpace((ONE, BOS)).join(*spaces, out)
    x = np.zeros((1, 1 + len(rows), residual.dim), np.float32)
    x[0, 0, residual.index[BOS]] = 1.0
    for p, row in enumerate(rows, start=1):
        x[0, p, residual.index[ONE]] = 1.0
        for d, v in row.items():
            x[0, p, residual.index[d]] = v
    return residual, x


@pytest.mark.parametrize("pair", [False, True])
def test_clean_lookups_are_exact_within_their_bound_in_every_order(pair):
    rng = np.random.default_rng(0)
    if pair:
        spaces, table = (A, B), PAIR_TABLE
        mlp = clean_pair_lookup_mlp(A, B, NUM, lambda a, b: {NUM.basis[0]: table[a.value, b.value]},
                                    "h", INFO)
        values = list(itertools.product(range(5), "xyz")) * 20
    else:
        spaces, table = (A,), {(k,): v for k, v in TABLE.items()}
        mlp = clean_lookup_mlp(A, NUM, lambda a: {NUM.basis[0]: TABLE[a.value]}, "h", INFO)
        values = [(v,) for v in range(5)] * 40
    residual, x = residual_for(spaces, noisy_rows(rng, spaces, values), NUM)
    expected = np.array([table[v] for v in values])
    bound = error_bound(max(abs(v) for v in table.values()), pair)
    assert bound < 1e-4
    for order, y in every_order(mlp, residual, x):
        got = (y - x)[0, :, residual.index[NUM.basis[0]]].astype(np.float64)
        assert got[0] == 0.0, order
        assert np.abs(got[1:] - expected).max() <= bound, order


def test_clean_lookup_one_hot_output_and_none():
    out = VectorSpace.from_values("c", ["p", "q"])
    labels = {0: "p", 1: "q", 2: None, 3: "p", 4: "q"}
    mlp = clean_lookup_mlp(A, out, lambda a: {} if labels[a.value] is None
                           else {BasisDirection("c", labels[a.value]): 1.0}, "h", INFO)
    assert mlp.hidden_space.dim == 2 * 4  # None gets no units
    rng = np.random.default_rng(1)
    values = [(v,) for v in range(5)] * 20
    residual, x = residual_for((A,), noisy_rows(rng, (A,), values), out)
    cols = [residual.index[d] for d in out.basis]
    expected = np.array([[labels[v] == "p", labels[v] == "q"] for (v,) in values], float)
    for order, y in every_order(mlp, residual, x):
        got = (y - x)[0][:, cols].astype(np.float64)
        assert np.abs(got[1:] - expected).max() <= error_bound(1.0), order


def test_clean_pair_lookup_needs_disjoint_spaces():
    with pytest.raises(ValueError):
        clean_pair_lookup_mlp(A, A, NUM, lambda a, b: {}, "h", INFO)
