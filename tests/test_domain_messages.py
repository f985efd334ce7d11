"""Domain messages that say what to change, empty domains refused, and Tracr's depth for
count_less_freq with a numerical width (issue 23).

Through the real entry points: `compile_rasp_to_model` (warnings recorded, and asserted
absent where none is due) and one `python -m raspc run --strict`. Which inputs collide
or raise is checked with the reference evaluator, never with the code under test.
"""

from __future__ import annotations

import itertools
import warnings

import pytest

import rasp
from compiler import compile_rasp_to_model
from examples import lib
from rasp_runtime.verify import find_mismatches
from tests import tracr_programs
from tests.test_cli import assert_clean_error, raspc
from tests.tracr_references import ref_count_less_freq


def compile_warned(program, vocab, max_seq_len, **kwargs):
    """(model, the messages of the CompileWarnings compilation emitted)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = compile_rasp_to_model(program, vocab, max_seq_len, **kwargs)
    return model, [str(w.message) for w in caught if issubclass(w.category, rasp.CompileWarning)]


def sort(min_key):
    return lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=8, min_key=min_key)


# ------------------------------------------------------------------ tie-broken keys
@pytest.mark.parametrize("vocab,min_key", [((1, 2, 3, 4), 1), ((1.5, 2, 3), 0.5)])
def test_sort_whose_offsets_stay_below_every_gap_compiles_without_a_warning(vocab, min_key):
    model, caught = compile_warned(sort(min_key), vocab, 8)
    assert caught == [] and model.domain.total


def test_sort_whose_offsets_reach_a_gap_names_a_colliding_pair_and_min_key():
    model, caught = compile_warned(sort(1), (1.5, 2, 3), 8)
    (message,) = caught
    assert "'sort'" in message and "'unique_keys'" in message
    assert "1.5 at position 4 and 2 at position 0" in message
    assert "smallest gap" in message and "0.5" in message and "min_key" in message
    assert "as make_sort does" not in message  # it already breaks ties by position
    # The pair really collides: the evaluator rejects an input holding it.
    with pytest.raises(rasp.EvaluationError, match="differing values"):
        rasp.evaluate(sort(1), [2, 3, 3, 3, 1.5])
    assert rasp.evaluate(sort(1), [2, 3, 1.5]) == [1.5, 2, 3]


def test_strict_cli_refuses_the_colliding_sort_with_what_to_change():
    result = raspc("run", "sort", "--vocab", "1.5,2,3", "--strict", "3", "1.5", "2")
    assert_clean_error(result, 1)
    for words in ("'sort'", "1.5 at position 4", "at position 0", "smallest gap",
                  "min_key", "hint:"):  # the CLI reads 2 as 2.0 beside 1.5
        assert words in result.stderr, result.stderr
    assert "as make_sort does" not in result.stderr


# ------------------------------------------------------------------ empty domains
def always_raises():
    return rasp.Map(lambda x: 1 / 0, rasp.tokens).named("always")


def raises_at_position_zero():
    return rasp.Map(lambda i: 10 // i, rasp.indices).named("at_zero")


def raises_on_each_token_somewhere():
    # 'not_a' fails on "a", 'not_b' on "b": every input of {a, b} fails one of them.
    not_a = rasp.Map(lambda t: {"b": 1}[t], rasp.tokens).named("not_a")
    not_b = rasp.Map(lambda t: {"a": 1}[t], rasp.tokens).named("not_b")
    return (not_a + not_b).named("both")


def raises_by_length_then_position():
    # length 1 fails 'not_one'; every longer input has position 1, which fails 'not_at_1'.
    not_one = rasp.Map(lambda n: 1 // (n - 1), rasp.length).named("not_one")
    not_at_1 = rasp.Map(lambda i: 1 // (i - 1), rasp.indices).named("not_at_1")
    return (not_one + not_at_1).named("sum")


EMPTY = {"always": (always_raises, ("a", "b"), "'always' raises ZeroDivisionError"),
         "at_zero": (raises_at_position_zero, ("a", "b"), "'at_zero' raises"),
         "both": (raises_on_each_token_somewhere, ("a", "b"), "'not_b' raises KeyError"),
         "sum": (raises_by_length_then_position, ("a",), "'not_at_1' raises")}


def no_input_is_valid(program, vocab, max_seq_len) -> bool:
    """Whether the evaluator rejects every input up to `max_seq_len`."""
    for n in range(1, max_seq_len + 1):
        for xs in itertools.product(vocab, repeat=n):
            try:
                rasp.evaluate(program, list(xs))
                return False
            except rasp.EvaluationError:
                pass
    return True


@pytest.mark.parametrize("name", sorted(EMPTY))
@pytest.mark.parametrize("strict", [False, True])
def test_a_program_whose_domain_is_empty_is_refused_naming_why(name, strict):
    build, vocab, why = EMPTY[name]
    assert no_input_is_valid(build(), vocab, 4)
    with pytest.raises(rasp.CompileError) as refused:
        compile_rasp_to_model(build(), vocab, 4, strict=strict)
    assert "no input of this vocabulary is valid" in refused.value.reason
    assert why in refused.value.reason and refused.value.hint


PARTIAL = {"at_two": lambda: rasp.Map(lambda i: 10 // (i - 2), rasp.indices).named("at_two"),
           "on_a": lambda: rasp.Map(lambda t: {"b": 1}[t], rasp.tokens).named("on_a"),
           "length_one": lambda: (rasp.Map(lambda n: 1 // (n - 1), rasp.length).named("n")
                                  + rasp.Map(lambda i: 1 // (i - 2), rasp.indices))}


@pytest.mark.parametrize("name", sorted(PARTIAL))
def test_a_partial_but_nonempty_domain_still_only_warns(name):
    assert not no_input_is_valid(PARTIAL[name](), ("a", "b"), 4)
    model, caught = compile_warned(PARTIAL[name](), ("a", "b"), 4)
    assert len(caught) == 1 and "the program is partial" in caught[0]
    assert not model.domain.total and not model.domain.empty


# ------------------------------------------------------------------ depth (same issue)
@pytest.mark.parametrize("max_seq_len", [6, 7])
def test_count_less_freq_with_a_numerical_width_takes_tracrs_two_layers_exactly(max_seq_len):
    """Tracr compiles it in 2 layers; a lookup after a categorical width made it 3 here
    from N = 6. Exact against the reference on every input of length 1..N over abc."""
    program = rasp.numerical(tracr_programs.make_count_less_freq(2))
    model = compile_rasp_to_model(program, ("a", "b", "c"), max_seq_len)
    assert len(model.config.layers) == 2
    inputs = [list(xs) for n in range(1, max_seq_len + 1)
              for xs in itertools.product("abc", repeat=n)]
    for xs in inputs[:: 97]:  # the reference itself, on a spread of inputs
        assert rasp.evaluate(program, xs) == ref_count_less_freq(xs, 2)
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == len(inputs) and mismatches == []
