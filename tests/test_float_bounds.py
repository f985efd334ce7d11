"""craft.float_bounds: the any-order float32 bounds, and the compiler decisions they drive.

Exact sums come from math.fsum over products of float32 numbers (exact in float64),
never from the bounds under test; summation orders from tests.float_orders.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from compiler.input_errors import MAX_ONE_HOT_ERROR
from compiler.budgets import NUMERIC_BUDGET
from craft import float_bounds
from craft.numerical import one_hot_error_bound, output_error_bound
from rasp.errors import CompileError
from tests.float_orders import ORDERS, ordered_matmul

U = Fraction(1, 2 ** 24)


def test_gamma_is_n_u_over_one_minus_n_u():
    for n in (1, 2, 3, 100, 4096):
        assert float_bounds.gamma(n) == pytest.approx(float(n * U / (1 - n * U)), rel=1e-15)
    assert float_bounds.UNIT_ROUNDOFF == float(U) == np.finfo(np.float32).eps / 2
    with pytest.raises(ValueError):
        float_bounds.gamma(2 ** 24)


def cancelling_dots(rng, rows, n):
    """Rows of x and a weight column whose products are large and cancel."""
    x = rng.uniform(0, 1000, size=(rows, n)).astype(np.float32)
    w = np.concatenate([rng.uniform(0.5, 2, n // 2), -rng.uniform(0.5, 2, n - n // 2)])
    return x, w.astype(np.float32)[:, None]


def test_matmul_error_holds_in_every_order_and_one_rounding_does_not():
    x, w = cancelling_dots(np.random.default_rng(0), 40, 600)
    exact = np.array([math.fsum(float(a) * float(b) for a, b in zip(row, w[:, 0])) for row in x])
    terms = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64))[:, 0]
    bound = float_bounds.matmul_error(terms, len(w))
    results = {order: ordered_matmul(x, w, order)[:, 0].astype(np.float64) for order in ORDERS}
    results["blas"] = (x @ w)[:, 0].astype(np.float64)
    for order, got in results.items():
        assert np.all(np.abs(got - exact) <= bound), order
    worst = max(np.max(np.abs(got - exact) / terms) for got in results.values())
    assert worst > 2 * float_bounds.UNIT_ROUNDOFF  # a few roundings' worth: orders matter
    assert len({tuple(got) for got in results.values()}) > 1


def test_mean_error_holds_for_softmax_averages_in_every_order():
    rng = np.random.default_rng(1)
    count = 257
    logits = rng.uniform(-3, 0, size=(8, count)).astype(np.float32)
    values = rng.uniform(-4, 4, size=(count, 1)).astype(np.float32)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    exact_weights = np.exp(logits.astype(np.float64))
    exact_weights /= exact_weights.sum(axis=1, keepdims=True)
    exact = exact_weights @ values.astype(np.float64)
    bound = float_bounds.mean_error(count, float(np.abs(values).max()))
    for order in ORDERS:
        got = ordered_matmul(weights, values, order).astype(np.float64)
        assert np.abs(got - exact).max() <= bound, order


# ---------------------------------------------------------------- compiler decisions

FAREY_30 = [float(f) for f in sorted({Fraction(k, n) for n in range(1, 31) for k in range(n + 1)})]


def farey_program(function, numerical):
    """A Map over a numerical SOp taking exactly the Farey values (a mean over one key)."""
    x = rasp.numerical(rasp.Map(lambda t: t, rasp.tokens)).named("x")
    same = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.EQ).named("same")
    mean = rasp.numerical(rasp.Aggregate(same, x, default=0)).named("mean")
    out = rasp.Map(function, mean).named("out")
    return rasp.numerical(out) if numerical else out


def check_every_value(model, function, numerical):
    for value in FAREY_30:
        got = model.apply(["BOS", value]).decoded[1]
        if numerical:
            assert abs(got - function(value)) <= NUMERIC_BUDGET, value
        else:
            assert got == function(value), value


def test_farey30_numerical_map_exceeds_budget_so_it_is_built_as_classes_then_lookup():
    rng = np.random.default_rng(0)
    table = {x: float(np.round(rng.uniform(-4, 4), 3)) for x in FAREY_30}
    assert output_error_bound(FAREY_30, [table[x] for x in FAREY_30]) > NUMERIC_BUDGET
    model = compile_rasp_to_model(farey_program(table.get, True), set(FAREY_30), 1,
                                  compiler_bos="BOS")
    assert [layer.mlp_hidden > 0 for layer in model.config.layers] == [True, True]
    check_every_value(model, table.get, True)


def test_farey30_labels_that_toggle_often_are_built_as_runs_then_lookup():
    labels = ["lo", "mid", "hi"]
    label = {x: labels[(i * 3 + i // 4) % 3] for i, x in enumerate(FAREY_30)}
    rows = [[float(label[x] == v) for v in labels] for x in FAREY_30]
    assert one_hot_error_bound(FAREY_30, rows) > MAX_ONE_HOT_ERROR
    runs = np.eye(len(FAREY_30))  # every value its own run here
    assert one_hot_error_bound(FAREY_30, runs) <= MAX_ONE_HOT_ERROR
    model = compile_rasp_to_model(farey_program(label.get, False), set(FAREY_30), 1,
                                  compiler_bos="BOS")
    assert [layer.mlp_hidden > 0 for layer in model.config.layers] == [True, True]
    check_every_value(model, label.get, False)


def test_a_mean_whose_averaging_error_exceeds_its_reader_is_refused():
    """frac_prevs over 256 positions takes values 1/65280 apart; its float32 averaging
    bound (≈ 3e-5) exceeds what a Map reading it tolerates, so compilation refuses."""
    ones = rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, rasp.tokens))
    prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    frac = rasp.numerical(rasp.Aggregate(prefix, ones, default=0)).named("frac")
    half = rasp.Map(lambda x: x > 0.5, frac).named("half")
    compile_rasp_to_model(half, {"a", "b"}, 16, compiler_bos="BOS")
    with pytest.raises(CompileError, match="averaging over up to 257 positions"):
        compile_rasp_to_model(half, {"a", "b"}, 256, compiler_bos="BOS")
