"""craft.categorical lookup and pair-lookup MLPs, on every input value.

Expected outputs come from the Python function being tabulated (a dict or a
formula written here), never from the MLP construction.
"""

from __future__ import annotations

import numpy as np
import pytest

from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.categorical import (categorical_output, lookup_mlp, numerical_output, pair_lookup_mlp,
                               values_of)
from tests.craft_mlp_helpers import DTYPES, EXACT, INFO, build, onehot, others_zero, read

# =========================================================================== lookup_mlp

TOKENS = VectorSpace.from_values("tokens", ["c", "a", 7, "b", "e", "d"])
CAT_OUT = VectorSpace.from_values("out", ["y", "x", 0, "z"])
CAT_TABLE = {"c": "x", "a": "y", 7: None, "b": 0, "e": "x", "d": "z"}
NUM_OUT_DIR = BasisDirection("num")
NUM_OUT = VectorSpace((NUM_OUT_DIR,))
NUM_TABLE = {"c": 2.5, "a": -1.0, 7: None, "b": 0.0, "e": 1000.0, "d": 1e-3}
EXTRA = VectorSpace((BasisDirection("unrelated"), BasisDirection("tokens2", "a")))


def cat_lookup():
    return lookup_mlp(TOKENS, CAT_OUT, lambda d: categorical_output(CAT_OUT)(CAT_TABLE[d.value]),
                      "h_lookup", INFO)


def num_lookup():
    return lookup_mlp(TOKENS, NUM_OUT, lambda d: numerical_output(NUM_OUT_DIR)(NUM_TABLE[d.value]),
                      "h_lookup", INFO)


def lookup_residual(out_space):
    return VectorSpace((BOS,)).join(EXTRA, TOKENS, VectorSpace((ONE,)), out_space)


def expected_lookup(out_space, table, value):
    if value is None:
        return np.zeros(out_space.dim)
    result = table[value]
    if out_space is NUM_OUT:
        return np.array([0.0 if result is None else result])
    return onehot(out_space, result)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["categorical", "numerical"])
def test_lookup_every_value(kind, dtype):
    mlp, out_space, table = ((cat_lookup(), CAT_OUT, CAT_TABLE) if kind == "categorical"
                             else (num_lookup(), NUM_OUT, NUM_TABLE))
    residual = lookup_residual(out_space)
    values = values_of(TOKENS) + [None]
    rows = [{} if v is None else {BasisDirection("tokens", v): 1.0} for v in values]
    y = mlp.forward(residual, build(residual, rows, dtype))
    got = read(residual, y, out_space)
    np.testing.assert_allclose(got[0], np.zeros(out_space.dim), atol=EXACT[dtype], rtol=0)
    for p, v in enumerate(values, start=1):
        expected = expected_lookup(out_space, table, v)
        np.testing.assert_allclose(got[p], expected, atol=EXACT[dtype] * max(1, abs(expected).max()),
                                   rtol=0, err_msg=f"value {v!r}")
    assert others_zero(residual, y, out_space)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["categorical", "numerical"])
def test_lookup_robust_to_noise_on_off_directions(kind, dtype):
    mlp, out_space, table = ((cat_lookup(), CAT_OUT, CAT_TABLE) if kind == "categorical"
                             else (num_lookup(), NUM_OUT, NUM_TABLE))
    residual = lookup_residual(out_space)
    rng = np.random.default_rng(0)
    values = values_of(TOKENS) + [None]
    rows, expected = [], []
    for trial in range(8):
        for v in values:
            row = {}
            for d in TOKENS.basis:
                if d.value == v:
                    row[d] = 1.0
                elif trial == 0:
                    row[d] = 0.1        # every off direction at +0.1
                elif trial == 1:
                    row[d] = -0.1       # every off direction at -0.1
                else:
                    row[d] = rng.uniform(-0.1, 0.1) if trial < 6 else rng.choice([-0.1, 0.1])
            rows.append(row)
            expected.append(expected_lookup(out_space, table, v))
    y = mlp.forward(residual, build(residual, rows, dtype))
    got = read(residual, y, out_space)
    np.testing.assert_allclose(got[0], 0.0, atol=1e-6)
    for p, e in enumerate(expected, start=1):
        np.testing.assert_allclose(got[p], e, atol=1e-6 * max(1, abs(e).max()), rtol=0)


def test_lookup_bos_and_none_are_zero_even_with_other_directions_set():
    """BOS: one = 0 and no input: nothing written. Unrelated directions are ignored."""
    mlp = cat_lookup()
    residual = lookup_residual(CAT_OUT)
    x = np.zeros((1, 3, residual.dim))
    x[0, 0, residual.index[BOS]] = 1.0
    for d in EXTRA.basis:
        x[0, :, residual.index[d]] = 5.0
    x[0, 1, residual.index[ONE]] = 1.0   # real position, value None
    # position 2: padding-like all-zero except the unrelated ones
    y = mlp.forward(residual, x)
    assert np.all(y == 0.0)


def test_lookup_width_counts_only_non_none_outputs():
    assert cat_lookup().hidden_space.dim == 5    # 7 -> None gets no unit
    assert num_lookup().hidden_space.dim == 4    # 7 -> None and b -> 0.0 get no unit
    assert cat_lookup().writes == CAT_OUT


def test_lookup_identity_map_on_many_values():
    """A categorical copy over 50 values: each one-hot maps to the matching one-hot."""
    src = VectorSpace.from_values("src", range(50))
    dst = VectorSpace.from_values("dst", range(49, -1, -1))   # reversed order on purpose
    mlp = lookup_mlp(src, dst, lambda d: {BasisDirection("dst", (d.value * 7) % 50): 1.0},
                     "h", INFO)
    residual = VectorSpace((ONE, BOS)).join(src, dst)
    for dtype in DTYPES:
        y = mlp.forward(residual, build(residual, [{BasisDirection("src", v): 1.0}
                                                   for v in range(50)], dtype))
        got = read(residual, y, dst)
        assert np.all(got[0] == 0)
        for v in range(50):
            np.testing.assert_allclose(got[v + 1], onehot(dst, (v * 7) % 50), atol=EXACT[dtype])


# =========================================================================== pair_lookup_mlp

FST = VectorSpace.from_values("fst", ["p", "q", "r"])
SND = VectorSpace.from_values("snd", [0, 1, 2, 3])
PAIR_OUT = VectorSpace.from_values("pair", ["p0", "match", "big", "none?"])


def pair_fn(a, b):
    """An arbitrary table with some None outputs."""
    if a == "p" and b == 0:
        return "p0"
    if (a, b) in {("q", 1), ("r", 2)}:
        return "match"
    if b == 3:
        return None
    if a == "r":
        return "big"
    return None if b == 2 else "none?"


def num_pair_fn(a, b):
    if a == "q" and b == 3:
        return None
    return {"p": 1.5, "q": -2.0, "r": 0.0}[a] * b + (3.0 if a == "r" else 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["categorical", "numerical"])
def test_pair_lookup_every_pair_and_none(kind, dtype):
    if kind == "categorical":
        out_space, fn = PAIR_OUT, pair_fn
        output = categorical_output(PAIR_OUT)
    else:
        out_space, fn = NUM_OUT, num_pair_fn
        output = numerical_output(NUM_OUT_DIR)
    mlp = pair_lookup_mlp(FST, SND, out_space, lambda a, b: output(fn(a.value, b.value)),
                          "h_pair", INFO)
    residual = VectorSpace((BasisDirection("junk"), ONE)).join(SND, VectorSpace((BOS,)), out_space, FST)
    pairs = [(a, b) for a in values_of(FST) + [None] for b in values_of(SND) + [None]]
    rows = []
    for a, b in pairs:
        row = {}
        if a is not None:
            row[BasisDirection("fst", a)] = 1.0
        if b is not None:
            row[BasisDirection("snd", b)] = 1.0
        rows.append(row)
    y = mlp.forward(residual, build(residual, rows, dtype))
    got = read(residual, y, out_space)
    np.testing.assert_allclose(got[0], 0.0, atol=0)
    for p, (a, b) in enumerate(pairs, start=1):
        if a is None or b is None:
            expected = np.zeros(out_space.dim)
        elif kind == "categorical":
            expected = onehot(out_space, fn(a, b))
        else:
            r = fn(a, b)
            expected = np.array([0.0 if r is None else r])
        np.testing.assert_allclose(got[p], expected, atol=EXACT[dtype] * max(1, abs(expected).max()),
                                   rtol=0, err_msg=f"pair {(a, b)!r}")
    assert others_zero(residual, y, out_space)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pair_lookup_robust_to_noise(dtype):
    out = categorical_output(PAIR_OUT)
    mlp = pair_lookup_mlp(FST, SND, PAIR_OUT, lambda a, b: out(pair_fn(a.value, b.value)),
                          "h_pair", INFO)
    residual = VectorSpace((ONE, BOS)).join(FST, SND, PAIR_OUT)
    rng = np.random.default_rng(1)
    pairs = [(a, b) for a in values_of(FST) + [None] for b in values_of(SND) + [None]] * 4
    rows = []
    for a, b in pairs:
        row = {d: rng.choice([-0.1, 0.1]) * rng.uniform(0.5, 1.0) for d in FST.basis + SND.basis}
        if a is not None:
            row[BasisDirection("fst", a)] = 1.0
        if b is not None:
            row[BasisDirection("snd", b)] = 1.0
        rows.append(row)
    got = read(residual, mlp.forward(residual, build(residual, rows, dtype)), PAIR_OUT)
    for p, (a, b) in enumerate(pairs, start=1):
        expected = np.zeros(PAIR_OUT.dim) if a is None or b is None else onehot(PAIR_OUT, pair_fn(a, b))
        np.testing.assert_allclose(got[p], expected, atol=1e-6, rtol=0)


def test_pair_lookup_requires_disjoint_spaces():
    out = categorical_output(PAIR_OUT)
    with pytest.raises(ValueError):
        pair_lookup_mlp(FST, FST, PAIR_OUT, lambda a, b: out("p0"), "h", INFO)
    overlapping = VectorSpace((BasisDirection("snd", 9), BasisDirection("fst", "q")))
    with pytest.raises(ValueError):
        pair_lookup_mlp(FST, overlapping, PAIR_OUT, lambda a, b: out("p0"), "h", INFO)


def test_pair_lookup_width_counts_only_non_none_outputs():
    out = categorical_output(PAIR_OUT)
    mlp = pair_lookup_mlp(FST, SND, PAIR_OUT, lambda a, b: out(pair_fn(a.value, b.value)),
                          "h_pair", INFO)
    expected_units = sum(pair_fn(a, b) is not None for a in values_of(FST) for b in values_of(SND))
    assert mlp.hidden_space.dim == expected_units
