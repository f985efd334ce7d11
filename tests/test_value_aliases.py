"""Values Python counts as one (1, 1.0 and True; 0.0 and −0.0) share one direction.

A function that tells them apart (str, type checks) cannot be compiled from that
direction: it is refused by name. One that does not (arithmetic, comparisons) compiles
and is exact. Expected outputs come from rasp.evaluate.
"""

from __future__ import annotations

import itertools

import pytest

import rasp
from compiler import compile_rasp_to_model
from compiler.values import _from_values
from rasp_runtime.verify import find_mismatches

INPUTS = [list(xs) for k in range(1, 5) for xs in itertools.product("ab", repeat=k)]


def int_or_float():
    return rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 1.0, rasp.tokens))


def assert_exact(program, **options):
    model = compile_rasp_to_model(program, ["a", "b"], 4, **options)
    checked, mismatches = find_mismatches(model, program, INPUTS)
    assert checked == len(INPUTS) and not mismatches, mismatches[:1]


def test_a_value_set_keeps_the_first_spelling_and_lists_the_others():
    values = _from_values([1, 1.0, True, 2, 0.0, -0.0, None])
    assert values.values == (0.0, 1, 2) and values.may_be_none
    assert [repr(v) for v in values.aliases] == ["1.0", "True", "-0.0"]
    assert _from_values([1, 2, 1]).aliases == ()


@pytest.mark.parametrize("make,message", [
    (lambda: rasp.categorical(rasp.Map(str, int_or_float())), "both 1 and 1.0"),
    (lambda: rasp.categorical(rasp.Map(str, rasp.categorical(
        rasp.Map(lambda t: True if t == "a" else 1, rasp.tokens)))), "both True and 1"),
    (lambda: rasp.categorical(rasp.Aggregate(
        rasp.Select(rasp.categorical(rasp.Map(lambda t: 1 if t == "a" else 1.0, rasp.tokens)),
                    rasp.tokens, lambda k, q: type(k) is int), rasp.tokens)), "both 1 and 1.0"),
])
def test_a_function_that_tells_equal_values_apart_is_refused_by_name(make, message):
    # Each was a silently wrong model before (str: wrong on 30 of 30 inputs).
    with pytest.raises(rasp.CompileError, match=f"{message}, which Python counts as one"):
        compile_rasp_to_model(make(), ["a", "b"], 4, fuse=False)


def test_fused_into_a_lookup_of_tokens_the_same_program_is_exact():
    assert_exact(rasp.categorical(rasp.Map(str, int_or_float())))


def test_a_function_that_does_not_tell_them_apart_compiles_exactly():
    assert_exact(rasp.numerical(rasp.Map(lambda v: 3 * v, int_or_float())), fuse=False)
