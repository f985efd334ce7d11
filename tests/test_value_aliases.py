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


def test_two_aliased_inputs_at_once_are_checked_together():
    fst = int_or_float()
    snd = rasp.numerical(rasp.Map(lambda i: 1 if i % 2 == 0 else 1.0, rasp.indices))
    both = rasp.categorical(rasp.SequenceMap(
        lambda x, y: isinstance(x, float) and isinstance(y, float), fst, snd))
    with pytest.raises(rasp.CompileError, match="which Python counts as one"):
        compile_rasp_to_model(both, ["a", "b"], 4, fuse=False)


def test_a_mean_of_one_value_is_the_evaluators_float():
    # The evaluator's mean of one selected 1 is 1.0, so str gives '1.0' (once '1').
    ones = rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, rasp.tokens))
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.EQ),
                                         ones, default=0))
    assert_exact(rasp.categorical(rasp.Map(str, mean)), fuse=False)


def test_an_unreachable_default_is_no_alias():
    # A prefix mean is never empty: its default 0 never shows, so it is no alias of 0.0.
    is_a = rasp.numerical(rasp.Map(lambda t: t == "a", rasp.tokens))
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.LEQ),
                                         is_a, default=0))
    assert_exact(rasp.categorical(rasp.Map(str, mean)), fuse=False)
