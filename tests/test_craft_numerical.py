"""craft.numerical discretising, gated and linear MLPs, on every input value.

Expected outputs come from the Python function being tabulated (a dict or a
formula written here), never from the MLP construction. In float32 every
observed error must stay within the bound the compiler accepts constructions
by (`discretiser_error_bounds`), in every explicit summation order of
tests.float_orders as well as in this machine's BLAS.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import BlockInfo
from craft.categorical import categorical_output
from craft.numerical import (discretiser_error_bounds, discretising_mlp,
                             gated_discretising_mlp, linear_mlp)
from tests.craft_mlp_helpers import DTYPES, INFO, build, onehot, others_zero, read
from tests.float_orders import every_order

# =========================================================================== discretising_mlp

X = BasisDirection("x")
Y = BasisDirection("y")
Y_SPACE = VectorSpace((Y,))

WIDE_GAPS = [0.0, 0.001, 0.002, 1.0, 2.0, 1002.0]
NEGATIVE = [-7.5, -3.0, -1.0, -0.5, 0.0, 0.25, 2.5, 7.0]
FAREY_30 = sorted({Fraction(k, n) for n in range(1, 31) for k in range(0, n + 1)})
VALUE_SETS = {
    "wide_gaps": WIDE_GAPS,
    "negative": NEGATIVE,
    "farey30": [float(f) for f in FAREY_30],
    "two": [3.0, 4.0],
}


def table_for(values, seed):
    """An arbitrary numeric table f(x), values in [-4, 4], some exactly 0."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, x in enumerate(values):
        out[x] = 0.0 if i % 5 == 2 else float(np.round(rng.uniform(-4, 4), 3))
    return out


LABELS = ["lo", "mid", "hi", None]


def label_for(values):
    """An arbitrary categorical table: position-dependent label, some None."""
    return {x: LABELS[(i * 3 + i // 4) % 4] for i, x in enumerate(values)}


CAT_Y = VectorSpace.from_values("ycat", ["hi", "lo", "mid"])


def disc_setup(values, kind, seed=0):
    if kind == "numerical":
        table = table_for(values, seed)
        out_space = Y_SPACE
        mlp = discretising_mlp(X, values, out_space, lambda x: {Y: table[x]}, "h_disc", INFO)
        expect = lambda x: np.array([table[x]])  # noqa: E731
    else:
        table = label_for(values)
        out_space = CAT_Y
        output = categorical_output(CAT_Y)
        mlp = discretising_mlp(X, values, out_space, lambda x: output(table[x]), "h_disc", INFO)
        expect = lambda x: onehot(CAT_Y, table[x])  # noqa: E731
    residual = VectorSpace((BasisDirection("noise"), X, ONE)).join(out_space, VectorSpace((BOS,)))
    return mlp, out_space, residual, expect


# Float64 is exact up to rounding; float32 is held to the compiler's bound instead.
FLOAT64_TOL = 1e-9


def check_disc(mlp, residual, out_space, values, expect, inputs, sources, dtype, label):
    """Every input decodes to expect(its source value): in float64 up to rounding, in
    float32 within the source value's error bound, in every summation order."""
    rows = [{X: x, BasisDirection("noise"): 3.0} for x in inputs]
    x = build(residual, rows, dtype)
    assert x[0, 1:, residual.index[X]].tolist() == pytest.approx(
        np.asarray(inputs, dtype=dtype).tolist())
    expected = np.array([expect(v) for v in sources])
    if dtype == np.float64:
        y = mlp.forward(residual, x)
        got = read(residual, y, out_space)
        np.testing.assert_allclose(got[0], 0.0, atol=0, err_msg="BOS position")
        assert np.abs(got[1:] - expected).max() <= FLOAT64_TOL, label
        assert others_zero(residual, y, out_space)
        return
    ordered = sorted(set(values))
    bounds = discretiser_error_bounds(ordered, [expect(v) for v in ordered])
    bound = bounds[[ordered.index(v) for v in sources]]
    keep = [i for i, d in enumerate(residual.basis) if d not in out_space]
    for order, y in every_order(mlp, residual, x):
        got = read(residual, y - x, out_space)
        assert np.all(got[0] == 0.0), f"{label}, {order}: BOS position wrote {got[0]}"
        err = np.abs(got[1:] - expected)
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        assert np.all(err <= bound), (
            f"{label}, {order}: input {inputs[worst[0]]!r} gave {got[1 + worst[0]]}, expected "
            f"{expected[worst[0]]}: error {err[worst]:.3g} > bound {bound[worst]:.3g}")
        assert np.array_equal(y[..., keep], x[..., keep]), f"{label}, {order}: wrote elsewhere"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["numerical", "categorical"])
@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_discretising_every_value(set_name, kind, dtype):
    values = VALUE_SETS[set_name]
    mlp, out_space, residual, expect = disc_setup(values, kind)
    check_disc(mlp, residual, out_space, values, expect, values, values, dtype, set_name)


def perturbed_inputs(values, rng):
    """Each value moved by up to a fifth of the gap on that side (both extremes and random)."""
    xs = sorted(values)
    inputs, sources = [], []
    for i, x in enumerate(xs):
        left = xs[i] - xs[i - 1] if i > 0 else xs[1] - xs[0]
        right = xs[i + 1] - xs[i] if i + 1 < len(xs) else xs[-1] - xs[-2]
        for delta in (-left / 5, right / 5, -left / 5 * rng.uniform(), right / 5 * rng.uniform(),
                      -left / 5 * 0.999, right / 5 * 0.999):
            inputs.append(x + delta)
            sources.append(x)
    return inputs, sources


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["numerical", "categorical"])
@pytest.mark.parametrize("set_name", ["wide_gaps", "negative", "farey30"])
def test_discretising_perturbed_inputs_decode_exactly(set_name, kind, dtype):
    values = VALUE_SETS[set_name]
    mlp, out_space, residual, expect = disc_setup(values, kind, seed=1)
    inputs, sources = perturbed_inputs(values, np.random.default_rng(2))
    check_disc(mlp, residual, out_space, values, expect, inputs, sources, dtype,
               f"{set_name} perturbed")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_discretising_identity_map_recovers_values(set_name, dtype):
    """f(x) = x: each value comes back, within its bound in float32."""
    values = VALUE_SETS[set_name]
    mlp = discretising_mlp(X, values, Y_SPACE, lambda x: {Y: x}, "h", INFO)
    residual = VectorSpace((BasisDirection("noise"), X, ONE, BOS, Y))
    check_disc(mlp, residual, Y_SPACE, values, lambda x: np.array([x]), values, values, dtype,
               f"{set_name} identity")


def test_discretising_single_value_and_duplicates():
    mlp = discretising_mlp(X, [2.0, 2.0, 2], Y_SPACE, lambda x: {Y: 5.0}, "h", INFO)
    assert mlp.hidden_space.dim == 1
    residual = VectorSpace((ONE, BOS, X, Y))
    got = read(residual, mlp.forward(residual, build(residual, [{X: 2.0}, {X: 0.0}], np.float64)),
               Y_SPACE)[:, 0]
    np.testing.assert_allclose(got, [0.0, 5.0, 5.0], atol=1e-12)


def test_discretising_width_and_duplicates_ignored():
    mlp = discretising_mlp(X, [3, 1, 2, 3, 1], Y_SPACE, lambda x: {Y: x}, "h", INFO)
    assert mlp.hidden_space.dim == 2 * (3 - 1) + 1
    residual = VectorSpace((ONE, BOS, X, Y))
    got = read(residual, mlp.forward(residual, build(residual, [{X: v} for v in (1, 2, 3)],
                                                     np.float64)), Y_SPACE)[:, 0]
    np.testing.assert_allclose(got, [0.0, 1.0, 2.0, 3.0], atol=1e-12)


def test_discretising_rejects_empty():
    with pytest.raises(ValueError):
        discretising_mlp(X, [], Y_SPACE, lambda x: {Y: x}, "h", INFO)


@pytest.mark.parametrize("dtype", DTYPES)
def test_discretising_bos_zero_for_every_set(dtype):
    """At BOS (one = 0, input 0) every unit is off, whatever the value set."""
    for values in VALUE_SETS.values():
        for kind in ("numerical", "categorical"):
            mlp, out_space, residual, _ = disc_setup(values, kind)
            x = np.zeros((1, 1, residual.dim), dtype=dtype)
            x[0, 0, residual.index[BOS]] = 1.0
            assert np.all(mlp.forward(residual, x) == 0.0)


# =========================================================================== linear_mlp


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_mlp_exact_on_random_values(dtype):
    a, b, c, out = (BasisDirection(n) for n in ("a", "b", "c", "out"))
    mlp = linear_mlp([(a, 2.5), (b, -1.0), (a, 0.5), (c, 0.0)], out, "h_lin", INFO)
    residual = VectorSpace((out, BOS, c, ONE, b, a))
    rng = np.random.default_rng(3)
    vals = rng.uniform(-100, 100, size=(200, 3))
    vals[:5] = [[0, 0, 0], [-1, 1, 5], [1e-3, -1e-3, -7], [-50.5, 0, 2], [0, -3, 0]]
    rows = [{a: va, b: vb, c: vc} for va, vb, vc in vals]
    x = build(residual, rows, dtype)
    y = mlp.forward(residual, x)
    got = read(residual, y, VectorSpace((out,)))[:, 0]
    xa = x[0, 1:, residual.index[a]].astype(np.float64)
    xb = x[0, 1:, residual.index[b]].astype(np.float64)
    expected = 3.0 * xa - xb
    assert got[0] == 0.0
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got[1:], expected, rtol=tol, atol=tol * 100)
    assert others_zero(residual, y, VectorSpace((out,)))


def test_linear_mlp_single_term_negative_coefficient():
    a, out = BasisDirection("a"), BasisDirection("out")
    mlp = linear_mlp([(a, -0.25)], out, "h", INFO)
    assert mlp.hidden_space.dim == 2
    residual = VectorSpace((ONE, BOS, a, out))
    vals = [-8.0, -1.0, 0.0, 3.0, 1e6]
    got = read(residual, mlp.forward(residual, build(residual, [{a: v} for v in vals], np.float64)),
               VectorSpace((out,)))[:, 0]
    np.testing.assert_array_equal(got, [0.0] + [-0.25 * v for v in vals])


def test_gated_discretising_mlp_is_exact_on_every_pair_and_silent_without_a_gate():
    x_dir = BasisDirection("x")
    gate_space = VectorSpace.from_values("c", ["p", "q", "r"])
    out_space = VectorSpace.from_values("out", range(-20, 40))
    xs = [0.0, 0.001, 0.5, 1.0, 7.0]
    table = {(x, c): int(round(10 * x)) % 7 - (3 if c == "q" else 0) + (5 if c == "r" else 0)
             for x in xs for c in "pqr"}
    mlp = gated_discretising_mlp(x_dir, xs, gate_space, out_space,
                                 lambda x, c: {BasisDirection("out", table[(x, c)]): 1.0},
                                 "h", BlockInfo(("f",), "sequence_map"))
    residual = VectorSpace((ONE, BOS, x_dir)).join(gate_space, out_space)
    for dtype in (np.float32, np.float64):
        for x in xs:
            for c in [None, "p", "q", "r"]:
                row = np.zeros((1, 1, residual.dim), dtype)
                row[..., residual.index[ONE]] = 1
                row[..., residual.index[x_dir]] = x
                if c is not None:
                    row[..., residual.index[BasisDirection("c", c)]] = 1
                got = mlp.forward(residual, row)[0, 0]
                expected = np.zeros(residual.dim)
                if c is not None:
                    expected[residual.index[BasisDirection("out", table[(x, c)])]] = 1
                assert np.abs(got - expected).max() < 1e-3, (x, c, dtype)
    bos = np.zeros((1, 1, residual.dim))
    bos[..., residual.index[BOS]] = 1
    assert not mlp.forward(residual, bos).any()


def test_single_value_bounds_gated_and_not():
    """One input value: no thresholds, only the base unit (a fuzzer-found crash when gated)."""
    for gated in (False, True):
        bounds = discretiser_error_bounds([0.0], [[1.0, -2.0]], gated)
        assert bounds.shape == (1, 2) and np.all(bounds < 1e-6)
