"""Width of categorical Maps: one hidden unit per output value where that is narrower.

Expected outputs come from the Python functions tabulated here and from
rasp.evaluate, never from the MLP construction.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from craft import float_bounds
from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.categorical import (categorical_output, numerical_output, output_lookup_error,
                               output_lookup_mlp)
from rasp_runtime.verify import find_mismatches
from tests.craft_mlp_helpers import DTYPES, INFO, build, onehot, others_zero, read

TOKENS = VectorSpace.from_values("tokens", range(100))
PARITY = VectorSpace.from_values("parity", [0, 1])


def parity_mlp():
    return output_lookup_mlp(TOKENS, PARITY, lambda d: categorical_output(PARITY)(d.value % 2),
                             "h", INFO)


def residual_for(out_space):
    return VectorSpace((ONE, BOS)).join(TOKENS, out_space)


@pytest.mark.parametrize("dtype", DTYPES)
def test_100_values_to_2_take_2_units_and_are_exact_on_every_value_and_none(dtype):
    mlp = parity_mlp()
    assert mlp.hidden_space.dim == 2
    residual = residual_for(PARITY)
    rows = [{BasisDirection("tokens", v): 1.0} for v in range(100)] + [{}]   # last: None
    y = mlp.forward(residual, build(residual, rows, dtype))
    got = read(residual, y, PARITY)
    assert np.all(got[0] == 0.0)                       # BOS
    for v in range(100):
        assert np.array_equal(got[v + 1], onehot(PARITY, v % 2)), v
    assert np.all(got[-1] == 0.0)                      # None in, None out
    assert others_zero(residual, y, PARITY)


def test_values_mapped_to_none_get_no_unit_and_give_none():
    out = VectorSpace.from_values("out", ["low", "high"])
    table = {v: None if v % 10 == 0 else ("low" if v < 50 else "high") for v in range(100)}
    mlp = output_lookup_mlp(TOKENS, out, lambda d: categorical_output(out)(table[d.value]),
                            "h", INFO)
    assert mlp.hidden_space.dim == 2
    residual = residual_for(out)
    y = mlp.forward(residual, build(residual, [{BasisDirection("tokens", v): 1.0}
                                               for v in range(100)], np.float32))
    got = read(residual, y, out)
    for v in range(100):
        assert np.array_equal(got[v + 1], onehot(out, table[v])), v


def test_numerical_outputs_group_by_value():
    num = VectorSpace((BasisDirection("num"),))
    table = {v: [0.0, 2.5, -1.0][v % 3] for v in range(100)}
    mlp = output_lookup_mlp(TOKENS, num, lambda d: numerical_output(num.basis[0])(table[d.value]),
                            "h", INFO)
    assert mlp.hidden_space.dim == 2                   # 0.0 writes nothing: no unit
    residual = residual_for(num)
    y = mlp.forward(residual, build(residual, [{BasisDirection("tokens", v): 1.0}
                                               for v in range(100)], np.float32))
    assert read(residual, y, num)[1:, 0].tolist() == [table[v] for v in range(100)]


def test_noisy_inputs_stay_within_the_stated_bound():
    """Every direction off by up to ε (worst signs and random), float32: the observed error
    is within output_lookup_error, and silent units stay exactly silent."""
    epsilon = 1e-4
    bound = output_lookup_error(50, 1.0, epsilon)
    assert 2 * 50 * epsilon < bound < 2 * 50 * epsilon + 1e-4
    mlp, residual = parity_mlp(), residual_for(PARITY)
    rng = np.random.default_rng(0)
    rows, expected = [], []
    for trial, v in itertools.product(range(4), [*range(0, 100, 7), None]):
        signs = [1.0, -1.0, None, None][trial]
        row = {d: (signs if signs is not None else rng.uniform(-1, 1)) * epsilon
               for d in TOKENS.basis}
        if v is not None:
            row[BasisDirection("tokens", v)] += 1.0
        rows.append(row)
        expected.append(onehot(PARITY, None if v is None else v % 2))
    got = read(residual, mlp.forward(residual, build(residual, rows, np.float32)), PARITY)
    for p, e in enumerate(expected, start=1):
        assert np.all(got[p][e == 0] == 0.0)
        assert np.all(np.abs(got[p] - e) <= bound)


def test_error_bound_is_zero_on_exact_one_hots_and_refuses_large_noise():
    assert output_lookup_error(100, 1.0, 0.0) == 0.0
    assert output_lookup_error(1, 1.0, 1e-5) > 2e-5 + float_bounds.gamma(2)
    with pytest.raises(ValueError):
        output_lookup_error(100, 1.0, 0.01)


# --------------------------------------------------------------------------- compiled models

def mlp_widths(model):
    return [layer.mlp_hidden for layer in model.config.layers]


def test_compiled_100_token_parity_map_has_2_hidden_units_and_is_exact_on_all_inputs():
    program = rasp.categorical(rasp.Map(lambda x: x % 2, rasp.tokens))
    model = compile_rasp_to_model(program, set(range(100)), 2)
    assert mlp_widths(model) == [2]
    inputs = [list(p) for n in (1, 2) for p in itertools.product(range(100), repeat=n)]
    checked, mismatches = find_mismatches(model, program, inputs, batch_size=2048)
    assert checked == 100 + 100 ** 2 and not mismatches


def test_compiled_map_with_none_outputs_decodes_none():
    program = rasp.categorical(rasp.Map(lambda x: None if x % 10 == 0 else x < 50, rasp.tokens))
    model = compile_rasp_to_model(program, set(range(100)), 3)
    assert mlp_widths(model) == [2]
    inputs = [[v, (v * 37) % 100, (v * 11) % 100] for v in range(100)]
    assert [model.apply([model.config.bos, v]).decoded[1:] for v in (0, 10, 7, 71)] == [
        [None], [None], [True], [False]]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == 100 and not mismatches


def test_few_inputs_to_many_outputs_keep_one_unit_per_input():
    program = rasp.categorical(rasp.Map(lambda x: 10 * x + 1, rasp.tokens))
    assert mlp_widths(compile_rasp_to_model(program, set(range(5)), 3)) == [5]


def test_a_map_of_a_noisy_one_hot_keeps_one_unit_per_input():
    """An aggregate's one-hot carries float32 noise on every direction: summing a
    50-value preimage of it would break what readers assume, so the map stays per input."""
    shifted = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.EQ), rasp.tokens)
    program = rasp.categorical(rasp.Map(lambda x: x % 2, rasp.categorical(shifted)))
    model = compile_rasp_to_model(program, set(range(100)), 3)
    assert max(mlp_widths(model)) == 100
    inputs = [[v, (v * 37) % 100, (v * 11) % 100] for v in range(100)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == 100 and not mismatches


# Weights of the reference compiler (tracr-pypi 1.0.0, its haiku parameters) for
# Map(f, tokens) over range(vocab) at N = 5, measured once with benchmarks/width.py.
REFERENCE_PARAMS = {
    "parity": (lambda x: x % 2, 100, 12_867),
    "mod_5": (lambda x: x % 5, 100, 13_896),
    "low_half": (lambda x: x < 32, 64, 5_991),
    "bucket": (lambda x: x // 10, 30, 2_006),
    "spread": (lambda x: 10 * x + 1, 5, 501),
}


@pytest.mark.parametrize("name", REFERENCE_PARAMS)
def test_single_maps_have_no_more_weights_than_the_reference(name):
    fn, vocab, reference = REFERENCE_PARAMS[name]
    model = compile_rasp_to_model(rasp.categorical(rasp.Map(fn, rasp.tokens)), set(range(vocab)), 5)
    assert len(model.config.layers) == 1
    assert model.parameter_count <= reference


@pytest.mark.parametrize("max_len", [5, 16])
def test_lookups_of_exact_one_hots_count_as_exact_gates(max_len):
    """A pair lookup of tokens and indices counts as an exact one-hot
    (compiler.input_errors, _exact_lookup); a discretiser of a mean gated by it stays exact."""
    pair = rasp.categorical(rasp.SequenceMap(lambda t, i: (t + i) % 3, rasp.tokens, rasp.indices))
    ones = rasp.numerical(rasp.Map(lambda t: 1 if t == 1 else 0, rasp.tokens))
    prefix = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.LEQ),
                                           ones, default=0))
    program = rasp.categorical(rasp.SequenceMap(lambda c, x: c if x > 0.5 else -c, pair, prefix))
    model = compile_rasp_to_model(program, {1, 2, 3}, max_len)
    rng = np.random.default_rng(max_len)
    inputs = [list(rng.integers(1, 4, size=rng.integers(1, max_len + 1))) for _ in range(300)]
    checked, mismatches = find_mismatches(model, program, [list(map(int, x)) for x in inputs])
    assert checked == 300 and not mismatches
