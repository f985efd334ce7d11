"""Tracr-style programs (tests/tracr_programs.py) against plain-Python references.

The references (tests/tracr_references.py) say directly what each program computes.
Inputs are drawn from `random.Random` with fixed seeds: lengths 1..10 over
small vocabularies.
"""

from __future__ import annotations

import math
import random

import pytest

import rasp
from tests import tracr_programs as lib
from tests.tracr_references import (
    CASES, MAX_LEN,
    ref_length, ref_reverse, ref_hist, ref_sort_unique, ref_stable_sort, ref_sort_freq,
    ref_frac_prevs, ref_pair_balance, ref_shuffle_dyck, ref_shift_by, ref_detect_pattern,
    ref_count_less_freq, ref_count, ref_prefix_count, unique_key_inputs, dyck_inputs,
)



def random_inputs(seed, vocab, cases=CASES, max_len=MAX_LEN):
    rng = random.Random(seed)
    return [[rng.choice(vocab) for _ in range(rng.randint(1, max_len))] for _ in range(cases)]


def assert_close_lists(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        if e is None:
            assert g is None
        else:
            assert math.isclose(g, e, rel_tol=1e-9, abs_tol=1e-9), (got, expected)



# --------------------------------------------------------------------- tests


def test_length():
    program = lib.make_length()
    for xs in random_inputs(1, "abc"):
        assert rasp.evaluate(program, xs) == ref_length(xs)


def test_module_level_length_is_named():
    assert lib.length.label == "length"
    assert rasp.evaluate(lib.length, "hello") == [5] * 5


@pytest.mark.parametrize("vocab", ["abcd", [0, 1, 2, 3, 4]])
def test_reverse(vocab):
    program = lib.make_reverse(rasp.tokens)
    for xs in random_inputs(2, vocab):
        assert rasp.evaluate(program, xs) == ref_reverse(xs)


def test_reverse_of_derived_sop():
    program = lib.make_reverse(rasp.indices + 10)
    for xs in random_inputs(3, "ab"):
        assert rasp.evaluate(program, xs) == ref_reverse([i + 10 for i in range(len(xs))])


def test_hist():
    program = lib.make_hist()
    for xs in random_inputs(4, "abc"):
        assert rasp.evaluate(program, xs) == ref_hist(xs)


def test_sort_unique_tokens():
    program = lib.make_sort_unique(rasp.tokens, rasp.tokens)
    for keys in unique_key_inputs(5):
        assert rasp.evaluate(program, keys) == sorted(keys)


def test_sort_unique_values_by_keys():
    # Values are the original positions: the result is the argsort of the keys.
    program = lib.make_sort_unique(rasp.indices, rasp.tokens)
    for keys in unique_key_inputs(6):
        assert rasp.evaluate(program, keys) == ref_sort_unique(list(range(len(keys))), keys)


@pytest.mark.parametrize("vals", ["tokens", "indices"])
def test_sort_with_repeated_keys(vals):
    vals_sop = rasp.tokens if vals == "tokens" else rasp.indices
    program = lib.make_sort(vals_sop, rasp.tokens, max_seq_len=MAX_LEN, min_key=1)
    for xs in random_inputs(7, [0, 1, 2, 3]):
        values = xs if vals == "tokens" else list(range(len(xs)))
        assert rasp.evaluate(program, xs) == ref_stable_sort(values, xs)


def test_sort_freq():
    program = lib.make_sort_freq(max_seq_len=MAX_LEN)
    for xs in random_inputs(8, "abc"):
        assert rasp.evaluate(program, xs) == ref_sort_freq(xs)


def test_sort_freq_by_hand():
    assert rasp.evaluate(lib.make_sort_freq(max_seq_len=MAX_LEN), "abbc") == list("bbac")


def test_frac_prevs():
    program = lib.make_frac_prevs(rasp.tokens == "x")
    assert rasp.is_numerical(program)
    for xs in random_inputs(9, "xy"):
        assert_close_lists(rasp.evaluate(program, xs), ref_frac_prevs([x == "x" for x in xs]))


def test_frac_prevs_by_hand():
    program = lib.make_frac_prevs(rasp.tokens == "x")
    assert rasp.evaluate(program, "xyxx") == [1.0, 0.5, 2 / 3, 0.75]


@pytest.mark.parametrize("pair", ["()", "{}"])
def test_pair_balance(pair):
    program = lib.make_pair_balance(rasp.tokens, pair[0], pair[1])
    assert rasp.is_numerical(program)
    for xs in random_inputs(10, "(){}a"):
        assert_close_lists(rasp.evaluate(program, xs), ref_pair_balance(xs, pair[0], pair[1]))


def test_pair_balance_intermediates_have_unique_labels():
    program = lib.make_pair_balance(rasp.tokens, "(", ")")
    out, values = rasp.evaluate(program, "(()", return_intermediates=True)
    assert_close_lists(out, [1.0, 1.0, 1 / 3])
    assert_close_lists(values["opens"], [1.0, 1.0, 2 / 3])
    assert_close_lists(values["closes"], [0.0, 0.0, 1 / 3])
    assert values["bools_open"] == [True, True, False]


def test_shuffle_dyck2_intermediates_keep_repeated_names_apart():
    # make_pair_balance is called once per pair, so names like "opens" repeat.
    out, values = rasp.evaluate(lib.make_shuffle_dyck2(), "({)", return_intermediates=True)
    assert out == [False] * 3
    assert_close_lists(values["balance_()"], [1.0, 0.5, 0.0])
    assert_close_lists(values["balance_{}"], [0.0, 0.5, 1 / 3])
    opens = sorted([values["opens"], values["opens_2"]])
    assert_close_lists(opens[0], [0.0, 0.5, 1 / 3])
    assert_close_lists(opens[1], [1.0, 0.5, 1 / 3])
    assert values["last_zero"] == [False] * 3


def _check_dyck(program, pairs, inputs):
    outcomes = set()
    for xs in inputs:
        expected = ref_shuffle_dyck(xs, pairs)
        assert rasp.evaluate(program, xs) == expected, "".join(xs)
        outcomes.add(expected[0])
    assert outcomes == {True, False}  # both kinds of input were exercised


def test_shuffle_dyck_one_pair():
    pairs = ["()"]
    _check_dyck(lib.make_shuffle_dyck(pairs), pairs, dyck_inputs(11, pairs, extra="x"))


def test_shuffle_dyck_three_pairs():
    pairs = ["()", "[]", "{}"]
    _check_dyck(lib.make_shuffle_dyck(pairs), pairs, dyck_inputs(12, pairs))


def test_shuffle_dyck2():
    pairs = ["()", "{}"]
    _check_dyck(lib.make_shuffle_dyck2(), pairs, dyck_inputs(13, pairs, extra="a"))


def test_shuffle_dyck2_by_hand():
    program = lib.make_shuffle_dyck2()
    assert rasp.evaluate(program, "({)}") == [True] * 4
    assert rasp.evaluate(program, "(}{)") == [False] * 4
    assert rasp.evaluate(program, ")(") == [False] * 2
    assert rasp.evaluate(program, "(()") == [False] * 3


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_shift_by(offset):
    program = lib.make_shift_by(offset, rasp.tokens)
    for xs in random_inputs(14 + offset, "abcd"):
        assert rasp.evaluate(program, xs) == ref_shift_by(offset, xs)


@pytest.mark.parametrize("pattern", ["a", "ab", "abc", "aa"])
def test_detect_pattern(pattern):
    program = lib.make_detect_pattern(rasp.tokens, pattern)
    found = False
    for xs in random_inputs(20, "abc"):
        expected = ref_detect_pattern(xs, pattern)
        assert rasp.evaluate(program, xs) == expected, "".join(xs)
        found = found or True in expected
    assert found


@pytest.mark.parametrize("n", [1, 2, 3])
def test_count_less_freq(n):
    program = lib.make_count_less_freq(n)
    for xs in random_inputs(30 + n, "abcd"):
        assert rasp.evaluate(program, xs) == ref_count_less_freq(xs, n)


def test_count_less_freq_by_hand():
    assert rasp.evaluate(lib.make_count_less_freq(2), "aaabbc") == [3] * 6


@pytest.mark.parametrize("token", ["a", "c"])
def test_count(token):
    program = lib.make_count(rasp.tokens, token)
    for xs in random_inputs(40, "abc"):
        assert rasp.evaluate(program, xs) == ref_count(xs, token)


def test_nary_sequencemap():
    program = lib.make_nary_sequencemap(lambda x, i, n: x * i - n, rasp.tokens, rasp.indices,
                                        rasp.length)
    for xs in random_inputs(50, [0, 1, 2, 3]):
        n = len(xs)
        assert rasp.evaluate(program, xs) == [x * i - n for i, x in enumerate(xs)]


def test_nary_sequencemap_of_four_sops():
    program = lib.make_nary_sequencemap(lambda a, b, c, d: f"{a}{b}{c}{d}", rasp.tokens,
                                        rasp.indices, rasp.tokens, rasp.length)
    for xs in random_inputs(51, "xy"):
        n = len(xs)
        assert rasp.evaluate(program, xs) == [f"{x}{i}{x}{n}" for i, x in enumerate(xs)]


def test_broadcast_first():
    program = lib.make_broadcast_first(rasp.tokens)
    for xs in random_inputs(60, "abc"):
        assert rasp.evaluate(program, xs) == [xs[0]] * len(xs)


def test_mean():
    program = lib.make_mean(rasp.tokens)
    assert rasp.is_numerical(program)
    for xs in random_inputs(61, [0, 1, 2, 5, 9]):
        assert_close_lists(rasp.evaluate(program, xs), [sum(xs) / len(xs)] * len(xs))


@pytest.mark.parametrize("token", ["a", "b"])
def test_prefix_count(token):
    program = lib.make_prefix_count(rasp.tokens, token)
    for xs in random_inputs(62, "abc"):
        assert rasp.evaluate(program, xs) == ref_prefix_count(xs, token)


def test_weighted_position():
    program = lib.make_weighted_position(rasp.tokens, 0.5, -2)
    for xs in random_inputs(63, [0, 1, 2, 3]):
        assert_close_lists(rasp.evaluate(program, xs),
                           [0.5 * x - 2 * i for i, x in enumerate(xs)])


# ------------------------------------------------------------ causal evaluation


def test_frac_prevs_causal():
    program = lib.make_frac_prevs(rasp.tokens == "x")
    for xs in random_inputs(70, "xyz"):
        assert_close_lists(rasp.evaluate(program, xs, causal=True),
                           ref_frac_prevs([x == "x" for x in xs]))


@pytest.mark.parametrize("offset", [1, 2])
def test_shift_by_causal(offset):
    program = lib.make_shift_by(offset, rasp.tokens)
    for xs in random_inputs(71, "abcd"):
        assert rasp.evaluate(program, xs, causal=True) == ref_shift_by(offset, xs)


def test_pair_balance_causal():
    program = lib.make_pair_balance(rasp.tokens, "(", ")")
    for xs in random_inputs(72, "()"):
        assert_close_lists(rasp.evaluate(program, xs, causal=True),
                           ref_pair_balance(xs, "(", ")"))


def test_detect_pattern_causal():
    program = lib.make_detect_pattern(rasp.tokens, "ab")
    for xs in random_inputs(73, "ab"):
        assert rasp.evaluate(program, xs, causal=True) == ref_detect_pattern(xs, "ab")


def test_prefix_count_causal():
    program = lib.make_prefix_count(rasp.tokens, "a")
    for xs in random_inputs(74, "ab"):
        assert rasp.evaluate(program, xs, causal=True) == ref_prefix_count(xs, "a")


def test_hist_causal_counts_only_the_prefix():
    program = lib.make_hist()
    for xs in random_inputs(75, "abc"):
        assert rasp.evaluate(program, xs, causal=True) == ref_prefix_count_each(xs)


def ref_prefix_count_each(xs):
    return [xs[:i + 1].count(x) for i, x in enumerate(xs)]


# ------------------------------------------------------------------ annotations


def test_encodings_follow_tracr_conventions():
    assert rasp.is_categorical(lib.make_hist())
    assert rasp.is_categorical(lib.make_reverse(rasp.tokens))
    assert rasp.is_numerical(lib.make_frac_prevs(rasp.tokens == "x"))
    assert rasp.is_numerical(lib.make_pair_balance(rasp.tokens, "(", ")"))
    assert lib.make_shuffle_dyck2().label == "shuffle_dyck2"
    assert lib.make_shift_by(2, rasp.tokens).label == "shift_by(2)"
