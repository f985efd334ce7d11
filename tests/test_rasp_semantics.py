"""Semantics of the SOps: primitives, maps, constants, width and aggregate."""

from __future__ import annotations

import operator
from fractions import Fraction

import pytest

import rasp
from rasp import Comparison

from tests.rasp_helpers import ev, none_at_zero, recorder


class TestPrimitives:
    def test_tokens_list(self):
        assert ev(rasp.tokens, [3, 1, 2]) == [3, 1, 2]

    def test_tokens_str_is_split_into_characters(self):
        assert ev(rasp.tokens, "abc") == ["a", "b", "c"]

    def test_tokens_tuple(self):
        assert ev(rasp.tokens, (5, 6)) == [5, 6]

    def test_indices(self):
        assert ev(rasp.indices, "wxyz") == [0, 1, 2, 3]

    def test_length(self):
        assert ev(rasp.length, "abc") == [3, 3, 3]
        assert ev(rasp.length, [9]) == [1]

    def test_primitive_types(self):
        assert isinstance(rasp.tokens, rasp.TokensType)
        assert isinstance(rasp.indices, rasp.IndicesType)
        assert isinstance(rasp.length, rasp.LengthType)
        for sop in (rasp.tokens, rasp.indices, rasp.length):
            assert isinstance(sop, rasp.SOp)
            assert sop.children == ()

    def test_evaluation_returns_a_fresh_list(self):
        xs = [1, 2]
        out = ev(rasp.tokens, xs)
        out.append(3)
        assert xs == [1, 2]
        assert ev(rasp.tokens, xs) == [1, 2]


# ----------------------------------------------------------------------- SOp kinds


class TestMap:
    def test_applies_f_elementwise(self):
        assert ev(rasp.Map(lambda x: x * 10 + 1, rasp.tokens), [0, 1, 2]) == [1, 11, 21]

    def test_on_strings(self):
        assert ev(rasp.Map(str.upper, rasp.tokens), "ab") == ["A", "B"]

    def test_children_and_fields(self):
        f = abs
        m = rasp.Map(f, rasp.indices)
        assert m.f is f
        assert m.inner is rasp.indices
        assert m.children == (rasp.indices,)

    def test_nested_maps_without_simplify(self):
        inner = rasp.Map(lambda x: x + 1, rasp.tokens)
        outer = rasp.Map(lambda x: x * 2, inner)
        assert outer.inner is inner
        assert ev(outer, [1, 5]) == [4, 12]

    def test_simplify_composes_into_one_map(self):
        inner = rasp.Map(lambda x: x + 1, rasp.tokens)
        outer = rasp.Map(lambda x: x * 2, inner, simplify=True)
        assert outer.inner is rasp.tokens
        assert ev(outer, [1, 5]) == [4, 12]

    def test_simplify_keeps_annotated_inner_map(self):
        inner = rasp.Map(lambda x: x + 1, rasp.tokens).named("inc")
        outer = rasp.Map(lambda x: x * 2, inner, simplify=True)
        assert outer.inner is inner
        assert ev(outer, [1, 5]) == [4, 12]

    def test_none_yields_none_without_calling_f(self):
        calls = []
        m = rasp.Map(recorder(lambda x: x * 100, calls), none_at_zero(rasp.tokens))
        assert ev(m, [0, 2, 0, 3]) == [None, 200, None, 300]
        assert calls == [(2,), (3,)]

    def test_simplify_keeps_none_semantics(self):
        # An intermediate None must still stay None (the unsimplified program
        # gives [None, 2, 3]); the composed function must not see it.
        inner = none_at_zero(rasp.tokens)
        unsimplified = rasp.Map(lambda x: x + 1, inner)
        simplified = rasp.Map(lambda x: x + 1, inner, simplify=True)
        assert ev(unsimplified, [0, 1, 2]) == [None, 2, 3]
        assert ev(simplified, [0, 1, 2]) == [None, 2, 3]


class TestSequenceMap:
    def test_pairs_elementwise(self):
        sm = rasp.SequenceMap(lambda x, y: f"{x}{y}", rasp.tokens, rasp.indices)
        assert ev(sm, "ab") == ["a0", "b1"]

    def test_argument_order(self):
        sm = rasp.SequenceMap(lambda x, y: x - y, rasp.length, rasp.indices)
        assert ev(sm, "abcd") == [4, 3, 2, 1]

    def test_children_and_fields(self):
        sm = rasp.SequenceMap(operator.add, rasp.tokens, rasp.indices)
        assert sm.fst is rasp.tokens and sm.snd is rasp.indices
        assert sm.children == (rasp.tokens, rasp.indices)

    def test_same_sop_twice(self):
        sm = rasp.SequenceMap(lambda x, y: x * y, rasp.tokens, rasp.tokens)
        assert ev(sm, [2, 3]) == [4, 9]

    @pytest.mark.parametrize("side", ["fst", "snd", "both"])
    def test_none_yields_none_without_calling_f(self, side):
        calls = []
        with_none = none_at_zero(rasp.tokens)
        fst = with_none if side in ("fst", "both") else rasp.indices
        snd = with_none if side in ("snd", "both") else rasp.indices
        sm = rasp.SequenceMap(recorder(lambda x, y: (x, y), calls), fst, snd)
        out = ev(sm, [0, 5, 0])
        assert out[0] is None and out[2] is None
        assert out[1] == ((5, 1) if side == "fst" else (1, 5) if side == "snd" else (5, 5))
        assert len(calls) == 1


class TestLinearSequenceMap:
    def test_values(self):
        lsm = rasp.LinearSequenceMap(rasp.tokens, rasp.indices, 2, -3)
        # 2*x - 3*i for x = [5, 1, 0], i = [0, 1, 2]
        assert ev(lsm, [5, 1, 0]) == [10, -1, -6]

    def test_float_coefficients(self):
        lsm = rasp.LinearSequenceMap(rasp.tokens, rasp.tokens, 0.5, 0.25)
        assert ev(lsm, [4, 8]) == [3.0, 6.0]

    def test_is_a_sequence_map_with_factors(self):
        lsm = rasp.LinearSequenceMap(rasp.tokens, rasp.indices, 1, -1)
        assert isinstance(lsm, rasp.SequenceMap)
        assert (lsm.fst_fac, lsm.snd_fac) == (1, -1)
        assert lsm.children == (rasp.tokens, rasp.indices)

    def test_none_propagates(self):
        lsm = rasp.LinearSequenceMap(none_at_zero(rasp.tokens), rasp.indices, 1, 1)
        assert ev(lsm, [0, 3]) == [None, 4]

    def test_non_numeric_coefficient_is_rejected(self):
        with pytest.raises(TypeError, match="LinearSequenceMap"):
            rasp.LinearSequenceMap(rasp.tokens, rasp.indices, "2", 1)


class TestFullAndConstant:
    def test_full(self):
        assert ev(rasp.Full(7), "abc") == [7, 7, 7]
        assert ev(rasp.Full("z"), [1]) == ["z"]
        assert rasp.Full(1).children == ()

    def test_constant_sop(self):
        assert ev(rasp.ConstantSOp([4, 5, 6]), "abc") == [4, 5, 6]
        assert ev(rasp.ConstantSOp(("x", None)), "ab") == ["x", None]

    def test_constant_sop_length_mismatch(self):
        c = rasp.ConstantSOp([1, 2]).named("two_values")
        with pytest.raises(rasp.EvaluationError, match="two_values"):
            ev(c, "abc")

    def test_constant_sop_unchecked_length_pads_with_none_and_truncates(self):
        assert ev(rasp.ConstantSOp([1, 2], check_length=False), "abcd") == [1, 2, None, None]
        assert ev(rasp.ConstantSOp([1, 2, 3], check_length=False), "a") == [1]

    def test_constant_sop_copies_its_value(self):
        values = [1, 2]
        c = rasp.ConstantSOp(values)
        values[0] = 99
        assert ev(c, "ab") == [1, 2]

    @pytest.mark.parametrize("bad", ["abc", 3, None])
    def test_constant_sop_rejects_non_sequences(self, bad):
        with pytest.raises(TypeError, match="ConstantSOp"):
            rasp.ConstantSOp(bad)


class TestSelectorWidth:
    def test_counts_selected_keys(self):
        # keys equal to the query token: "abab" -> each token occurs twice
        sw = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ))
        assert ev(sw, "abab") == [2, 2, 2, 2]
        assert ev(sw, "aab") == [2, 2, 1]

    def test_strictly_smaller_keys(self):
        sw = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, Comparison.LT))
        assert ev(sw, [3, 1, 2, 1]) == [3, 0, 2, 0]

    def test_empty_and_full(self):
        none = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, Comparison.FALSE))
        full = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, Comparison.TRUE))
        assert ev(none, "abc") == [0, 0, 0]
        assert ev(full, "abc") == [3, 3, 3]

    def test_children(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.TRUE)
        sw = rasp.SelectorWidth(sel)
        assert sw.selector is sel and sw.children == (sel,)


class TestAggregate:
    def test_numerical_mean(self):
        prefix = rasp.Select(rasp.indices, rasp.indices, Comparison.LEQ)
        agg = rasp.numerical(rasp.Aggregate(prefix, rasp.tokens, default=0))
        # prefix means of [1, 2, 3, 6]: 1, 3/2, 6/3, 12/4
        assert ev(agg, [1, 2, 3, 6]) == [1.0, 1.5, 2.0, 3.0]

    def test_numerical_mean_of_bools(self):
        everything = rasp.Select(rasp.indices, rasp.indices, Comparison.TRUE)
        agg = rasp.numerical(rasp.Aggregate(everything, rasp.tokens))
        assert ev(agg, [True, False, False, True]) == [0.5] * 4

    def test_numerical_mean_is_exact_on_fractions(self):
        everything = rasp.Select(rasp.indices, rasp.indices, Comparison.TRUE)
        values = rasp.ConstantSOp([Fraction(1, 3), Fraction(1, 6), Fraction(1, 2)])
        agg = rasp.numerical(rasp.Aggregate(everything, values))
        assert ev(agg, "abc") == [Fraction(1, 3)] * 3

    def test_categorical_single_selection(self):
        # Select key at position length-1-q: reverses the input.
        opp = rasp.SequenceMap(lambda n, i: n - 1 - i, rasp.length, rasp.indices)
        flip = rasp.Select(rasp.indices, opp, Comparison.EQ)
        assert ev(rasp.Aggregate(flip, rasp.tokens), "abc") == ["c", "b", "a"]

    def test_categorical_agreeing_values(self):
        same = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        agg = rasp.Aggregate(same, rasp.tokens)
        assert ev(agg, "abca") == ["a", "b", "c", "a"]

    def test_categorical_differing_values_raise(self):
        everything = rasp.Select(rasp.indices, rasp.indices, Comparison.TRUE)
        agg = rasp.Aggregate(everything, rasp.tokens).named("gather_all")
        with pytest.raises(rasp.EvaluationError) as info:
            ev(agg, "ab")
        message = str(info.value)
        assert "gather_all" in message
        assert "position 0" in message

    def test_categorical_differing_values_reports_first_bad_position(self):
        # Query 0 selects only key 0; query 1 selects keys 0 and 1 ("x", "y").
        prefix = rasp.Select(rasp.indices, rasp.indices, Comparison.LEQ)
        agg = rasp.Aggregate(prefix, rasp.tokens)
        with pytest.raises(rasp.EvaluationError) as info:
            ev(agg, "xy")
        message = str(info.value)
        assert f"aggregate_{agg.unique_id}" in message
        assert "position 1" in message

    def test_default_when_nothing_selected(self):
        nothing = rasp.Select(rasp.tokens, rasp.tokens, Comparison.FALSE)
        assert ev(rasp.Aggregate(nothing, rasp.tokens), "ab") == [None, None]
        assert ev(rasp.Aggregate(nothing, rasp.tokens, default="z"), "ab") == ["z", "z"]
        assert ev(rasp.numerical(rasp.Aggregate(nothing, rasp.tokens, default=0)), [4, 5]) == [0, 0]

    def test_default_only_where_nothing_selected(self):
        # Query q selects the key at q - 1 (if any): a shift right by one.
        prev = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q - 1)
        assert ev(rasp.Aggregate(prev, rasp.tokens, default="_"), "abc") == ["_", "a", "b"]

    def test_numerical_aggregate_of_none_raises(self):
        everything = rasp.Select(rasp.indices, rasp.indices, Comparison.TRUE)
        agg = rasp.numerical(rasp.Aggregate(everything, none_at_zero(rasp.tokens)))
        with pytest.raises(rasp.EvaluationError, match=f"aggregate_{agg.unique_id}"):
            ev(agg, [0, 1])

    def test_numerical_aggregate_of_strings_raises(self):
        everything = rasp.Select(rasp.indices, rasp.indices, Comparison.TRUE)
        agg = rasp.numerical(rasp.Aggregate(everything, rasp.tokens)).named("mean_tok")
        with pytest.raises(rasp.EvaluationError, match="mean_tok"):
            ev(agg, "ab")

    def test_numerical_aggregate_of_non_numbers_is_an_evaluation_error(self):
        # A mean of tuples has no well-defined value: it must be reported as an
        # EvaluationError naming the aggregate, not leak a bare TypeError.
        everything = rasp.Select(rasp.indices, rasp.indices, Comparison.TRUE)
        tuples = rasp.Map(lambda x: (x,), rasp.tokens)
        agg = rasp.numerical(rasp.Aggregate(everything, tuples)).named("mean_of_tuples")
        with pytest.raises(rasp.EvaluationError, match="mean_of_tuples"):
            ev(agg, [1, 2])

    def test_fields(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        agg = rasp.Aggregate(sel, rasp.indices, default=-1)
        assert agg.selector is sel and agg.sop is rasp.indices and agg.default == -1
        assert agg.children == (sel, rasp.indices)


# ----------------------------------------------------------------------- selectors


# Hand-written truth table of each comparison as predicate(key, query).
