"""Numerical Maps of a categorical value written by an MLP (issue 30's open question).

Such a one-hot carries float32 noise, so the lookup that turns it into a number has an
error of its own, checked against what the Map's readers tolerate. Here the lookups'
worst-case errors are computed independently, in explicit summation orders
(tests.float_orders), and compiled programs are compared with the evaluator on every
input of length ≤ 5 over {0..4}.
"""

import itertools

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from craft import clean_lookup
from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import BlockInfo
from craft.categorical import lookup_mlp, output_lookup_error
from rasp_runtime.verify import find_mismatches
from tests.float_orders import ORDERS, every_order, ordered_matmul

INFO = BlockInfo(("f",), "map")
CLASSES = VectorSpace.from_values("c", range(6))
NUMBER = VectorSpace((BasisDirection("out"),))
TABLE = {0: 0.0, 1: 3.0, 2: -40.0, 3: 999.0, 4: 0.125, 5: -7.5}
VOCAB = [0, 1, 2, 3, 4]
ALL_INPUTS = [list(xs) for n in range(1, 6) for xs in itertools.product(VOCAB, repeat=n)]


def noisy_one_hots(noise, repeats=20, seed=0):
    """(class, residual rows) with every class direction pushed by ±noise or a random
    fraction of it, so each extreme sign pattern and points between are covered."""
    rng = np.random.default_rng(seed)
    residual = VectorSpace((ONE, BOS)).join(CLASSES, NUMBER)
    classes = [c for c in TABLE for _ in range(repeats)]
    x = np.zeros((1, 1 + len(classes), residual.dim), np.float64)
    x[0, 0, residual.index[BOS]] = 1.0
    for p, c in enumerate(classes, start=1):
        x[0, p, residual.index[ONE]] = 1.0
        for d in CLASSES.basis:
            push = [noise, -noise, rng.uniform(-noise, noise)][(p + d.value) % 3]
            x[0, p, residual.index[d]] = float(d.value == c) + push
    return classes, residual, x.astype(np.float32)


def errors_in_every_order(mlp, classes, residual, x):
    """(order, |written − TABLE[class]|) for every explicit summation order and BLAS."""
    column = residual.index[NUMBER.basis[0]]
    expected = np.array([TABLE[c] for c in classes])
    for order, y in every_order(mlp, residual, x):
        written = y[0, 1:, column].astype(np.float64)
        yield order, np.abs(written - expected)


def test_a_plain_lookup_of_a_noisy_one_hot_stays_within_its_bound_per_value():
    noise = 1e-5
    mlp = lookup_mlp(CLASSES, NUMBER, lambda d: {NUMBER.basis[0]: TABLE[d.value]}, "h", INFO)
    classes, residual, x = noisy_one_hots(noise)
    bounds = np.array([output_lookup_error(1, abs(TABLE[c]), noise) for c in classes])
    for order, error in errors_in_every_order(mlp, classes, residual, x):
        assert np.all(error <= bounds), order
    # the bound is about twice the noise, relative: no budget of 5e-5 admits 999
    assert output_lookup_error(1, 999.0, noise) > 2 * noise * 999


def test_a_clean_lookup_stays_within_its_bound_per_value_and_its_units_are_exact():
    mlp = clean_lookup.clean_lookup_mlp(CLASSES, NUMBER,
                                        lambda d: {NUMBER.basis[0]: TABLE[d.value]}, "h", INFO)
    classes, residual, x = noisy_one_hots(clean_lookup.INPUT_TOLERANCE)
    bounds = np.array([clean_lookup.error_bound(abs(TABLE[c])) for c in classes])
    for order, error in errors_in_every_order(mlp, classes, residual, x):
        assert np.all(error <= bounds), order
    # each unit is exactly relu(2x − offset) (computed here in float64), in any order
    first = mlp.first.in_spaces(residual, mlp.hidden_space)
    exact = np.maximum(x[0].astype(np.float64) @ first.astype(np.float64), 0.0)
    for order in ORDERS:
        assert np.array_equal(np.maximum(ordered_matmul(x[0], first, order), 0.0), exact), order


def width_map(scale):
    """scale·(how many tokens equal mine): a numerical Map of a SelectorWidth's one-hot,
    which its discretiser writes with float32 noise."""
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.EQ))
    return rasp.numerical(rasp.Map(lambda w: scale * w, width)).named("scaled")


def test_a_map_of_a_noisy_one_hot_writing_large_values_is_exact():
    for program in (width_map(40), width_map(1000)):
        for fuse in (True, False):
            model = compile_rasp_to_model(program, VOCAB, 5, fuse=fuse)
            checked, mismatches = find_mismatches(model, program, ALL_INPUTS)
            assert checked == len(ALL_INPUTS) and not mismatches, mismatches[:1]


def test_a_lookup_is_charged_what_its_reader_tolerates_at_the_values_it_writes():
    # total = 100,000·w + mean reaches 500,000, where the output's budget is relative
    # (2⁻¹⁸·|v|): the lookup writing 100,000·w is charged that, not the absolute 5e-5
    # that total's small values need (refused before: one budget for every value)
    total = rasp.numerical(rasp.LinearSequenceMap(width_map(100_000), _fraction(), 1, 1))
    model = compile_rasp_to_model(total, VOCAB, 5, fuse=False)
    checked, mismatches = find_mismatches(model, total, ALL_INPUTS)
    assert checked == len(ALL_INPUTS) and not mismatches, mismatches[:1]


def test_a_lookup_beyond_its_readers_budget_is_refused_naming_the_reader():
    # 10·w − 10·token is 0 where w = token (w counts equal tokens, so 1..5), so the
    # lookup writing 10·w up to 50 must fit the output's absolute budget: it cannot
    token = rasp.numerical(rasp.Map(lambda t: 10 * t, rasp.tokens))
    total = rasp.numerical(rasp.LinearSequenceMap(width_map(10), token, 1, -1)).named("total")
    with pytest.raises(rasp.CompileError) as refusal:
        compile_rasp_to_model(total, VOCAB, 5, fuse=False)
    message = str(refusal.value)
    assert "'scaled'" in message and "its reader 'total'" in message and "(-" not in message


def _fraction():
    return rasp.numerical(rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, rasp.GEQ),
                                         rasp.numerical(rasp.Map(lambda x: x != 2, rasp.tokens)),
                                         default=0))
