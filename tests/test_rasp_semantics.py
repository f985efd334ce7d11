"""Unit tests of the RASP expression language and its reference evaluator.

Every expected value here is worked out by hand or by a few lines of plain
Python written independently of `rasp`; nothing is computed by the code under
test. Never compare two SOps with `==` (it builds a new SOp): use `is` or ids.
"""

from __future__ import annotations

import operator
import time
from fractions import Fraction

import pytest

import rasp
from rasp import Comparison

T, F = True, False


def ev(program, xs, **kwargs):
    return rasp.evaluate(program, xs, **kwargs)


def recorder(f, calls):
    """`f`, logging every argument tuple it is called with into `calls`."""
    def wrapped(*args):
        calls.append(args)
        return f(*args)
    return wrapped


def none_at_zero(sop):
    """A Map that turns 0 into None (no value) and leaves everything else."""
    return rasp.Map(lambda x: None if x == 0 else x, sop)


# --------------------------------------------------------------------- primitives


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
COMPARISON_TABLE = {
    Comparison.EQ: lambda key, query: key == query,
    Comparison.LT: lambda key, query: key < query,
    Comparison.LEQ: lambda key, query: key <= query,
    Comparison.GT: lambda key, query: key > query,
    Comparison.GEQ: lambda key, query: key >= query,
    Comparison.NEQ: lambda key, query: key != query,
    Comparison.TRUE: lambda key, query: True,
    Comparison.FALSE: lambda key, query: False,
}


class TestSelect:
    # keys = tokens = [0, 1, 2]; queries = Full(1). Row q, column k.
    HAND = {
        Comparison.EQ: [F, T, F],
        Comparison.LT: [T, F, F],   # key < 1
        Comparison.LEQ: [T, T, F],
        Comparison.GT: [F, F, T],   # key > 1
        Comparison.GEQ: [F, T, T],
        Comparison.NEQ: [T, F, T],
        Comparison.TRUE: [T, T, T],
        Comparison.FALSE: [F, F, F],
    }

    @pytest.mark.parametrize("comparison", list(Comparison))
    def test_each_comparison_by_hand(self, comparison):
        sel = rasp.Select(rasp.tokens, rasp.Full(1), comparison)
        assert ev(sel, [0, 1, 2]) == [self.HAND[comparison]] * 3

    @pytest.mark.parametrize("comparison", list(Comparison))
    def test_each_comparison_on_all_pairs(self, comparison):
        keys, queries = [3, 1, 2, 1], [2, 2, 0, 3]
        sel = rasp.Select(rasp.tokens, rasp.ConstantSOp(queries), comparison)
        expected = [[COMPARISON_TABLE[comparison](k, q) for k in keys] for q in queries]
        assert ev(sel, keys) == expected

    def test_lt_means_key_less_than_query(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.LT)
        assert ev(sel, [0, 1, 2]) == [
            [F, F, F],
            [T, F, F],
            [T, T, F],
        ]

    def test_keys_and_queries_are_distinct_roles(self):
        # keys = indices [0, 1, 2], queries = tokens [2, 0, 0]: row q selects key
        # k when k == tokens[q].
        sel = rasp.Select(rasp.indices, rasp.tokens, Comparison.EQ)
        assert ev(sel, [2, 0, 0]) == [
            [F, F, T],
            [T, F, F],
            [T, F, F],
        ]

    def test_comparison_called_directly(self):
        assert Comparison.LT(1, 2) is True   # key 1 < query 2
        assert Comparison.LT(2, 1) is False
        assert Comparison.GEQ(2, 2) is True
        assert Comparison.TRUE("a", 5) is True
        assert Comparison.FALSE(1, 1) is False

    def test_module_level_aliases(self):
        assert (rasp.EQ, rasp.LT, rasp.LEQ, rasp.GT, rasp.GEQ, rasp.NEQ, rasp.TRUE,
                rasp.FALSE) == tuple(Comparison)

    def test_callable_predicate_gets_key_then_query(self):
        calls = []
        sel = rasp.Select(rasp.tokens, rasp.indices, recorder(lambda k, q: k == q + 1, calls))
        # keys = tokens [1, 5], queries = indices [0, 1]
        assert ev(sel, [1, 5]) == [[T, F], [F, F]]
        assert sorted(calls) == sorted([(1, 0), (5, 0), (1, 1), (5, 1)])

    def test_predicate_result_is_made_bool(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k if q else 0)
        out = ev(sel, [0, 2])
        assert out == [[F, F], [F, T]]
        assert all(type(v) is bool for row in out for v in row)

    def test_none_key_or_query_never_selected(self):
        calls = []
        with_none = none_at_zero(rasp.tokens)
        sel = rasp.Select(with_none, with_none, recorder(lambda k, q: True, calls))
        assert ev(sel, [1, 0, 2]) == [
            [T, F, T],
            [F, F, F],
            [T, F, T],
        ]
        assert all(None not in args for args in calls)

    def test_none_never_selected_even_by_true(self):
        sel = rasp.Select(none_at_zero(rasp.tokens), rasp.indices, Comparison.TRUE)
        assert ev(sel, [0, 1]) == [[F, T], [F, T]]

    def test_fields(self):
        sel = rasp.Select(rasp.indices, rasp.tokens, Comparison.GT)
        assert sel.keys is rasp.indices and sel.queries is rasp.tokens
        assert sel.predicate is Comparison.GT
        assert sel.children == (rasp.indices, rasp.tokens)
        assert isinstance(sel, rasp.Selector)


class TestCompositeSelectors:
    # keys = queries = indices [0, 1, 2]
    LEQ = [[T, F, F], [T, T, F], [T, T, T]]
    GEQ = [[T, T, T], [F, T, T], [F, F, T]]

    def _leq(self):
        return rasp.Select(rasp.indices, rasp.indices, Comparison.LEQ)

    def _geq(self):
        return rasp.Select(rasp.indices, rasp.indices, Comparison.GEQ)

    def test_and(self):
        both = rasp.SelectorAnd(self._leq(), self._geq())
        assert ev(both, "abc") == [[T, F, F], [F, T, F], [F, F, T]]

    def test_or(self):
        either = rasp.SelectorOr(self._leq(), self._geq())
        assert ev(either, "abc") == [[T] * 3] * 3

    def test_not(self):
        assert ev(rasp.SelectorNot(self._leq()), "abc") == [[F, T, T], [F, F, T], [F, F, F]]

    def test_operators_build_selector_nodes(self):
        a, b = self._leq(), self._geq()
        conj, disj, neg = a & b, a | b, ~a
        assert type(conj) is rasp.SelectorAnd and conj.fst is a and conj.snd is b
        assert type(disj) is rasp.SelectorOr and disj.fst is a and disj.snd is b
        assert type(neg) is rasp.SelectorNot and neg.inner is a
        assert ev(conj, "abc") == [[T, F, F], [F, T, F], [F, F, T]]
        assert ev(disj, "abc") == [[T] * 3] * 3
        assert ev(neg, "abc") == [[F, T, T], [F, F, T], [F, F, F]]

    def test_nested_operators(self):
        # not (k <= q) or (k == q)  ==  k >= q
        eq = rasp.Select(rasp.indices, rasp.indices, Comparison.EQ)
        assert ev(~self._leq() | eq, "abc") == self.GEQ

    def test_not_not(self):
        assert ev(~~self._leq(), "abc") == self.LEQ

    def test_constant_selector(self):
        value = [[1, 0], [0, 1]]
        sel = rasp.ConstantSelector(value)
        assert ev(sel, "ab") == [[T, F], [F, T]]
        assert sel.children == ()

    def test_constant_selector_length_mismatch(self):
        sel = rasp.ConstantSelector([[True]]).named("const_sel")
        with pytest.raises(rasp.EvaluationError, match="const_sel"):
            ev(sel, "ab")

    def test_constant_selector_combines(self):
        sel = rasp.ConstantSelector([[T, T], [F, T]])
        width = rasp.SelectorWidth(sel & rasp.Select(rasp.tokens, rasp.tokens, Comparison.TRUE))
        assert ev(width, "ab") == [2, 1]

    def test_children(self):
        a, b = self._leq(), self._geq()
        assert rasp.SelectorAnd(a, b).children == (a, b)
        assert rasp.SelectorOr(a, b).children == (a, b)
        assert rasp.SelectorNot(a).children == (a,)


# ------------------------------------------------------------------ SOp operators


XS = [6, -3, 4, 7]          # no zeros, so every division below is defined
YS = [2, 5, -2, 3]          # second operand for SOp-SOp forms


def _sop_pair():
    return rasp.tokens, rasp.ConstantSOp(YS)


BINARY = [
    ("+", operator.add), ("-", operator.sub), ("*", operator.mul),
    ("/", operator.truediv), ("//", operator.floordiv), ("%", operator.mod),
    ("**", operator.pow), ("<", operator.lt), ("<=", operator.le),
    (">", operator.gt), (">=", operator.ge), ("==", operator.eq), ("!=", operator.ne),
]


def _apply(symbol, a, b):
    """`a <symbol> b` spelt out, so the SOp operator itself is exercised."""
    if symbol == "+": return a + b                 # noqa: E701
    if symbol == "-": return a - b                 # noqa: E701
    if symbol == "*": return a * b                 # noqa: E701
    if symbol == "/": return a / b                 # noqa: E701
    if symbol == "//": return a // b               # noqa: E701
    if symbol == "%": return a % b                 # noqa: E701
    if symbol == "**": return a ** b               # noqa: E701
    if symbol == "<": return a < b                 # noqa: E701
    if symbol == "<=": return a <= b               # noqa: E701
    if symbol == ">": return a > b                 # noqa: E701
    if symbol == ">=": return a >= b               # noqa: E701
    if symbol == "==": return a == b               # noqa: E701
    if symbol == "!=": return a != b               # noqa: E701
    if symbol == "&": return a & b                 # noqa: E701
    if symbol == "|": return a | b                 # noqa: E701
    raise AssertionError(symbol)


class TestSOpOperators:
    @pytest.mark.parametrize("symbol,op", BINARY, ids=[s for s, _ in BINARY])
    def test_with_constant(self, symbol, op):
        out = _apply(symbol, rasp.tokens, 2)
        assert type(out) is rasp.Map and out.inner is rasp.tokens
        assert ev(out, XS) == [op(x, 2) for x in XS]

    @pytest.mark.parametrize("symbol,op", BINARY, ids=[s for s, _ in BINARY])
    def test_with_sop(self, symbol, op):
        a, b = _sop_pair()
        out = _apply(symbol, a, b)
        assert type(out) is rasp.SequenceMap and out.fst is a and out.snd is b
        assert ev(out, XS) == [op(x, y) for x, y in zip(XS, YS)]

    @pytest.mark.parametrize("symbol,op", [
        ("+", operator.add), ("-", operator.sub), ("*", operator.mul),
        ("/", operator.truediv)])
    def test_reflected_arithmetic(self, symbol, op):
        out = _apply(symbol, 10, rasp.tokens)
        assert type(out) is rasp.Map and out.inner is rasp.tokens
        assert ev(out, XS) == [op(10, x) for x in XS]

    @pytest.mark.parametrize("symbol,op", [
        ("<", operator.lt), ("<=", operator.le), (">", operator.gt),
        (">=", operator.ge), ("==", operator.eq), ("!=", operator.ne)])
    def test_reflected_comparisons(self, symbol, op):
        # `4 < tokens` is evaluated by Python as `tokens > 4`.
        out = _apply(symbol, 4, rasp.tokens)
        assert isinstance(out, rasp.Map)
        assert ev(out, XS) == [op(4, x) for x in XS]

    def test_string_concatenation(self):
        assert ev(rasp.tokens + "!", "ab") == ["a!", "b!"]
        assert ev("<" + rasp.tokens, "ab") == ["<a", "<b"]

    def test_negation(self):
        out = -rasp.tokens
        assert type(out) is rasp.Map
        assert ev(out, XS) == [-6, 3, -4, -7]

    def test_invert_is_logical_not(self):
        out = ~rasp.tokens
        assert type(out) is rasp.Map
        assert ev(out, [True, False, 0, 3]) == [False, True, True, False]

    def test_logical_and_or_with_sop(self):
        a = rasp.tokens
        b = rasp.ConstantSOp([True, False, True, False])
        xs = [True, True, False, False]
        conj, disj = a & b, a | b
        assert type(conj) is rasp.SequenceMap and type(disj) is rasp.SequenceMap
        assert ev(conj, xs) == [True, False, False, False]
        assert ev(disj, xs) == [True, True, True, False]

    def test_logical_and_or_with_constant_and_reflected(self):
        xs = [True, False]
        assert ev(rasp.tokens & True, xs) == [True, False]
        assert ev(rasp.tokens & False, xs) == [False, False]
        assert ev(rasp.tokens | True, xs) == [True, True]
        assert ev(rasp.tokens | False, xs) == [True, False]
        assert ev(True & rasp.tokens, xs) == [True, False]
        assert ev(False | rasp.tokens, xs) == [True, False]

    def test_operator_results_are_new_expressions(self):
        a = rasp.tokens + 1
        b = rasp.tokens + 1
        assert a is not b and a.unique_id != b.unique_id

    def test_operators_compose(self):
        expr = (rasp.tokens * 2 + rasp.indices) % 5
        # [(2x + i) % 5] for x = [1, 4, 3]: (2+0)%5, (8+1)%5, (6+2)%5
        assert ev(expr, [1, 4, 3]) == [2, 4, 3]

    def test_operators_propagate_none(self):
        expr = none_at_zero(rasp.tokens) + rasp.indices
        assert ev(expr, [0, 5]) == [None, 6]
        assert ev(none_at_zero(rasp.tokens) < 3, [0, 5]) == [None, False]

    def test_sop_has_no_truth_value(self):
        with pytest.raises(TypeError):
            bool(rasp.tokens)
        with pytest.raises(TypeError):
            bool(rasp.tokens == 1)

    def test_sop_with_selector_is_a_type_error(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        with pytest.raises(TypeError):
            rasp.tokens + sel
        with pytest.raises(TypeError):
            sel + rasp.tokens


# -------------------------------------------------------------------- annotations


class TestAnnotations:
    def test_default_encoding_is_categorical(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        assert rasp.get_encoding(m) is rasp.Encoding.CATEGORICAL
        assert rasp.is_categorical(m) and not rasp.is_numerical(m)
        assert rasp.is_categorical(rasp.tokens)

    def test_numerical(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        n = rasp.numerical(m)
        assert rasp.get_encoding(n) is rasp.Encoding.NUMERICAL
        assert rasp.is_numerical(n) and not rasp.is_categorical(n)
        assert n is not m and n.unique_id != m.unique_id
        assert rasp.is_categorical(m)  # the original is untouched
        assert type(n) is rasp.Map and n.f is m.f and n.inner is m.inner

    def test_categorical_undoes_numerical(self):
        n = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
        c = rasp.categorical(n)
        assert rasp.is_categorical(c) and rasp.is_numerical(n)
        assert c is not n

    def test_numerical_primitive(self):
        n = rasp.numerical(rasp.tokens)
        assert n is not rasp.tokens and isinstance(n, rasp.TokensType)
        assert rasp.is_numerical(n) and rasp.is_categorical(rasp.tokens)
        assert n.label == "tokens"
        assert ev(n, [1, 2]) == [1, 2]

    def test_named(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        named = m.named("ident")
        assert named.name == "ident" and named.label == "ident"
        assert named is not m and named.unique_id != m.unique_id
        assert m.name == m.label == f"map_{m.unique_id}"

    def test_named_keeps_encoding_and_numerical_keeps_name(self):
        a = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens)).named("a")
        assert rasp.is_numerical(a) and a.label == "a"
        b = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens).named("b"))
        assert rasp.is_numerical(b) and b.label == "b"

    def test_renaming(self):
        x = rasp.tokens.named("first").named("second")
        assert x.label == "second"

    def test_annotated_and_annotate(self):
        m = rasp.Map(lambda x: x, rasp.tokens).named("m")
        a = m.annotated(color="red")
        b = rasp.annotate(a, size=3)
        assert dict(a.annotations) == {"name": "m", "color": "red",
                                       "encoding": rasp.Encoding.CATEGORICAL}
        assert dict(b.annotations) == {"name": "m", "color": "red", "size": 3,
                                       "encoding": rasp.Encoding.CATEGORICAL}
        assert dict(m.annotations) == {"name": "m", "encoding": rasp.Encoding.CATEGORICAL}
        assert len({m.unique_id, a.unique_id, b.unique_id}) == 3

    def test_annotate_encoding_directly(self):
        n = rasp.annotate(rasp.Map(lambda x: x, rasp.tokens), encoding=rasp.Encoding.NUMERICAL)
        assert rasp.is_numerical(n)

    def test_annotations_are_read_only(self):
        m = rasp.Map(lambda x: x, rasp.tokens).named("m")
        with pytest.raises(TypeError):
            m.annotations["name"] = "other"
        assert m.label == "m"

    def test_annotated_copy_evaluates_the_same(self):
        m = rasp.Map(lambda x: x * 3, rasp.tokens)
        assert ev(m.named("triple"), [1, 2]) == [3, 6]
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.LT)
        assert ev(sel.named("lt"), [2, 1]) == [[F, T], [F, F]]

    @pytest.mark.parametrize("bad", ["", 3, None])
    def test_named_rejects_bad_names(self, bad):
        with pytest.raises(TypeError):
            rasp.tokens.named(bad)

    def test_numerical_rejects_selectors_and_non_expressions(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        for bad in (sel, 3):
            with pytest.raises(TypeError):
                rasp.numerical(bad)
            with pytest.raises(TypeError):
                rasp.categorical(bad)
        with pytest.raises(TypeError):
            rasp.annotate("tokens", name="x")


# ------------------------------------------------------------------------ identity


class TestIdentity:
    def test_hashable_by_identity(self):
        a = rasp.Map(lambda x: x, rasp.tokens)
        b = rasp.Map(lambda x: x, rasp.tokens)
        table = {a: "a", b: "b", rasp.tokens: "t"}
        assert table[a] == "a" and table[b] == "b" and table[rasp.tokens] == "t"
        assert len({a, b, a, rasp.tokens, rasp.tokens}) == 3
        assert hash(a) == hash(a)

    def test_selectors_hashable(self):
        s = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        t = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        assert len({s, t, s}) == 2

    def test_unique_ids(self):
        exprs = [rasp.tokens, rasp.indices, rasp.length]
        exprs += [rasp.Map(lambda x: x, rasp.tokens) for _ in range(20)]
        exprs += [rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ) for _ in range(5)]
        exprs += [e.named("same") for e in exprs[:10]]
        ids = [e.unique_id for e in exprs]
        assert len(set(ids)) == len(ids)
        assert all(isinstance(i, int) for i in ids)

    def test_ids_are_stable(self):
        m = rasp.Map(lambda x: x, rasp.tokens)
        assert m.unique_id == m.unique_id
        assert m.label == m.label

    def test_primitive_labels(self):
        assert rasp.tokens.label == "tokens"
        assert rasp.indices.label == "indices"
        assert rasp.length.label == "length"
        assert rasp.tokens.named("input").label == "input"

    def test_default_labels(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        cases = [
            (rasp.Map(abs, rasp.tokens), "map"),
            (rasp.SequenceMap(operator.add, rasp.tokens, rasp.indices), "sequence_map"),
            (rasp.LinearSequenceMap(rasp.tokens, rasp.indices, 1, 1), "linear_sequence_map"),
            (rasp.Full(0), "full"),
            (rasp.ConstantSOp([1]), "constant_sop"),
            (rasp.SelectorWidth(sel), "selector_width"),
            (rasp.Aggregate(sel, rasp.tokens), "aggregate"),
            (sel, "select"),
            (rasp.ConstantSelector([[True]]), "constant_selector"),
            (sel & sel, "selector_and"),
            (sel | sel, "selector_or"),
            (~sel, "selector_not"),
        ]
        for expr, kind in cases:
            assert expr.name == expr.label
            assert expr.label == f"{kind}_{expr.unique_id}"

    def test_copy_has_own_label(self):
        m = rasp.Map(abs, rasp.tokens)
        n = rasp.numerical(m)
        assert n.label == f"map_{n.unique_id}" != m.label

    def test_repr_mentions_label(self):
        assert "tokens" in repr(rasp.tokens)
        assert "my_map" in repr(rasp.Map(abs, rasp.tokens).named("my_map"))

    @pytest.mark.parametrize("attribute", ["f", "inner", "unique_id", "new_attribute",
                                           "_annotations"])
    def test_setattr_raises(self, attribute):
        m = rasp.Map(abs, rasp.tokens)
        before = (m.f, m.inner, m.unique_id)
        with pytest.raises(AttributeError):
            setattr(m, attribute, 1)
        assert (m.f, m.inner, m.unique_id) == before

    def test_setattr_raises_for_every_kind(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        for expr, attribute in [(rasp.tokens, "x"), (sel, "predicate"), (sel, "keys"),
                                (rasp.Aggregate(sel, rasp.tokens), "default"),
                                (rasp.Full(1), "fill"), (rasp.ConstantSOp([1]), "value")]:
            with pytest.raises(AttributeError):
                setattr(expr, attribute, None)

    def test_delattr_raises(self):
        m = rasp.Map(abs, rasp.tokens)
        with pytest.raises(AttributeError):
            del m.f
        assert m.f is abs

    def test_constant_values_are_frozen(self):
        c = rasp.ConstantSOp([1, 2])
        assert isinstance(c.value, tuple)
        s = rasp.ConstantSelector([[1, 0], [0, 1]])
        assert s.value == ((True, False), (False, True))


# ------------------------------------------------------------------------ traverse


class TestTraverse:
    def test_children_before_parents(self):
        a = rasp.Map(abs, rasp.tokens)
        b = rasp.SequenceMap(operator.add, a, rasp.indices)
        sel = rasp.Select(b, a, Comparison.EQ)
        root = rasp.Aggregate(sel, b)
        order = rasp.topological_order(root)
        ids = [e.unique_id for e in order]
        assert sorted(ids) == sorted({e.unique_id for e in (rasp.tokens, rasp.indices, a, b, sel, root)})
        assert len(ids) == len(set(ids))
        assert order[-1] is root
        position = {e.unique_id: i for i, e in enumerate(order)}
        for expr in order:
            for child in expr.children:
                assert position[child.unique_id] < position[expr.unique_id]

    def test_single_node(self):
        order = rasp.topological_order(rasp.tokens)
        assert len(order) == 1 and order[0] is rasp.tokens

    def test_diamond_of_depth_200_is_linear(self):
        depth = 200
        node = rasp.tokens
        for _ in range(depth):
            node = rasp.SequenceMap(lambda x, y: max(x, y) + 1, node, node)
        start = time.perf_counter()
        order = rasp.topological_order(node)
        elapsed = time.perf_counter() - start
        # A naive tree walk would visit 2**200 paths; a DAG walk sees 201 nodes.
        assert elapsed < 1.0
        assert len(order) == depth + 1
        assert len({e.unique_id for e in order}) == depth + 1
        assert order[0] is rasp.tokens and order[-1] is node

        start = time.perf_counter()
        assert ev(node, [0, 5]) == [200, 205]
        assert time.perf_counter() - start < 1.0

    def test_diamond_with_two_branches_per_level(self):
        # Each level: two distinct Maps of the previous node, joined again.
        depth = 200
        node = rasp.tokens
        for _ in range(depth):
            left = rasp.Map(lambda x: x + 1, node)
            right = rasp.Map(lambda x: x - 1, node)
            node = rasp.SequenceMap(lambda x, y: (x + y) // 2, left, right)
        start = time.perf_counter()
        order = rasp.topological_order(node)
        assert time.perf_counter() - start < 1.0
        assert len(order) == 3 * depth + 1
        assert len({e.unique_id for e in order}) == 3 * depth + 1
        assert ev(node, [7, 9]) == [7, 9]

    def test_deep_chain_has_no_recursion_limit(self):
        node = rasp.tokens
        for _ in range(5000):
            node = rasp.Map(lambda x: x + 1, node)
        assert len(rasp.topological_order(node)) == 5001
        assert ev(node, [0, 1]) == [5000, 5001]

    def test_unique_labels_suffixes_duplicates(self):
        a = rasp.Map(lambda x: x + 1, rasp.tokens).named("x")
        b = rasp.Map(lambda x: x * 2, rasp.tokens).named("x")
        c = rasp.SequenceMap(operator.add, a, b).named("x")
        order = rasp.topological_order(c)
        labels = rasp.unique_labels(order)
        assert set(labels) == {e.unique_id for e in order}
        assert len(set(labels.values())) == len(order)
        assert labels[rasp.tokens.unique_id] == "tokens"
        assert sorted(labels[e.unique_id] for e in (a, b, c)) == ["x", "x_2", "x_3"]
        # The first one met in the order keeps the plain name.
        named = [e for e in order if e.name == "x"]
        assert labels[named[0].unique_id] == "x"

    def test_unique_labels_avoids_clash_with_a_given_suffix(self):
        a = rasp.Map(abs, rasp.tokens).named("y")
        b = rasp.Map(abs, a).named("y")
        c = rasp.Map(abs, b).named("y_2")
        labels = rasp.unique_labels(rasp.topological_order(c))
        assert len(set(labels.values())) == 4
        assert labels[a.unique_id] == "y"

    def test_unique_labels_keeps_distinct_labels(self):
        a = rasp.Map(abs, rasp.tokens).named("a")
        b = rasp.Map(abs, a)
        labels = rasp.unique_labels(rasp.topological_order(b))
        assert labels == {rasp.tokens.unique_id: "tokens", a.unique_id: "a",
                          b.unique_id: f"map_{b.unique_id}"}


# -------------------------------------------------------------------------- causal


class TestCausal:
    def test_select_is_masked(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.TRUE)
        assert ev(sel, "abc", causal=True) == [[T, F, F], [T, T, F], [T, T, T]]
        assert ev(sel, "abc") == [[T, T, T]] * 3

    def test_selector_width_counts_prefix(self):
        sw = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, Comparison.TRUE))
        assert ev(sw, "abcd", causal=True) == [1, 2, 3, 4]

    def test_selector_width_of_equal_tokens(self):
        sw = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ))
        # occurrences of each token so far in "abab"
        assert ev(sw, "abab", causal=True) == [1, 1, 2, 2]

    def test_numerical_aggregate_becomes_prefix_mean(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.TRUE)
        agg = rasp.numerical(rasp.Aggregate(sel, rasp.tokens, default=0))
        assert ev(agg, [4, 2, 6, 0], causal=True) == [4.0, 3.0, 4.0, 3.0]

    def test_future_only_selection_gets_default(self):
        nxt = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k == q + 1)
        agg = rasp.Aggregate(nxt, rasp.tokens, default="-")
        assert ev(agg, "abc") == ["b", "c", "-"]
        assert ev(agg, "abc", causal=True) == ["-", "-", "-"]

    def test_constant_selector_and_not_are_masked(self):
        const = rasp.ConstantSelector([[T, T], [T, T]])
        assert ev(const, "ab", causal=True) == [[T, F], [T, T]]
        never = rasp.Select(rasp.tokens, rasp.tokens, Comparison.FALSE)
        assert ev(~never, "abc", causal=True) == [[T, F, F], [T, T, F], [T, T, T]]

    def test_or_and_are_masked(self):
        a = rasp.Select(rasp.indices, rasp.indices, Comparison.GEQ)   # k >= q
        b = rasp.Select(rasp.indices, rasp.indices, Comparison.NEQ)
        assert ev(a | b, "abc", causal=True) == [[T, F, F], [T, T, F], [T, T, T]]
        assert ev(a & b, "abc", causal=True) == [[F, F, F], [F, F, F], [F, F, F]]

    def test_elementwise_ops_unchanged(self):
        expr = rasp.tokens * 2 + rasp.indices + rasp.length
        assert ev(expr, [1, 2, 3], causal=True) == [5, 8, 11]


# ------------------------------------------------------------ return_intermediates


class TestIntermediates:
    def test_returns_output_and_dict(self):
        doubled = rasp.Map(lambda x: 2 * x, rasp.tokens).named("doubled")
        total = rasp.SequenceMap(operator.add, doubled, rasp.indices).named("total")
        result = ev(total, [1, 2], return_intermediates=True)
        assert isinstance(result, tuple) and len(result) == 2
        out, values = result
        assert out == [2, 5]
        assert values == {"tokens": [1, 2], "doubled": [2, 4], "indices": [0, 1],
                          "total": [2, 5]}

    def test_default_labels_and_selectors(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)
        width = rasp.SelectorWidth(sel)
        out, values = ev(width, "aba", return_intermediates=True)
        assert out == [2, 1, 2]
        assert values[f"select_{sel.unique_id}"] == [[T, F, T], [F, T, F], [T, F, T]]
        assert values[f"selector_width_{width.unique_id}"] == [2, 1, 2]
        assert set(values) == {"tokens", f"select_{sel.unique_id}",
                               f"selector_width_{width.unique_id}"}

    def test_duplicate_names_are_suffixed(self):
        a = rasp.Map(lambda x: x + 1, rasp.tokens).named("step")
        b = rasp.Map(lambda x: x * 10, a).named("step")
        out, values = ev(b, [1], return_intermediates=True)
        assert out == [20]
        assert values == {"tokens": [1], "step": [2], "step_2": [20]}

    def test_without_flag_only_output(self):
        assert ev(rasp.tokens, [1], return_intermediates=False) == [1]

    def test_causal_intermediates(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.TRUE).named("all")
        out, values = ev(rasp.SelectorWidth(sel), "ab", causal=True, return_intermediates=True)
        assert out == [1, 2]
        assert values["all"] == [[T, F], [T, T]]


# -------------------------------------------------------------------------- errors


class TestErrors:
    def test_hierarchy(self):
        assert issubclass(rasp.EvaluationError, rasp.RaspError)
        assert issubclass(rasp.CompileError, rasp.RaspError)
        assert issubclass(rasp.InputError, rasp.RaspError)
        assert issubclass(rasp.InputError, ValueError)
        assert issubclass(rasp.RaspError, Exception)

    def test_map_function_failure(self):
        m = rasp.Map(lambda x: 10 // x, rasp.tokens).named("ten_over")
        with pytest.raises(rasp.EvaluationError) as info:
            ev(m, [5, 0, 2])
        message = str(info.value)
        assert "ten_over" in message
        assert "ZeroDivisionError" in message
        assert "0" in message and "position 1" in message
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        assert isinstance(info.value, rasp.RaspError)

    def test_map_failure_shows_input_repr_and_default_label(self):
        m = rasp.Map(lambda x: {"a": 1}[x], rasp.tokens)
        with pytest.raises(rasp.EvaluationError) as info:
            ev(m, "aq")
        message = str(info.value)
        assert f"map_{m.unique_id}" in message
        assert "'q'" in message
        assert "KeyError" in message
        assert isinstance(info.value.__cause__, KeyError)

    def test_sequence_map_failure(self):
        sm = rasp.SequenceMap(lambda x, y: x / y, rasp.tokens, rasp.indices).named("ratio")
        with pytest.raises(rasp.EvaluationError) as info:
            ev(sm, [7, 8])
        message = str(info.value)
        assert "ratio" in message and "ZeroDivisionError" in message
        assert "(7, 0)" in message
        assert isinstance(info.value.__cause__, ZeroDivisionError)

    def test_operator_failure(self):
        expr = (rasp.tokens + 1).named("plus_one")
        with pytest.raises(rasp.EvaluationError) as info:
            ev(expr, [1, "a"])
        assert "plus_one" in str(info.value) and "'a'" in str(info.value)
        assert "TypeError" in str(info.value)
        assert isinstance(info.value.__cause__, TypeError)

    def test_incomparable_tokens_in_select(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.LT).named("less")
        with pytest.raises(rasp.EvaluationError) as info:
            ev(sel, [1, "a"])
        message = str(info.value)
        assert "less" in message
        assert "1" in message and "'a'" in message
        assert isinstance(info.value.__cause__, TypeError)
        assert isinstance(info.value, rasp.RaspError)

    def test_incomparable_tokens_in_select_default_label(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, Comparison.GEQ)
        width = rasp.SelectorWidth(sel)
        with pytest.raises(rasp.EvaluationError, match=f"select_{sel.unique_id}"):
            ev(width, ["b", 2])

    def test_predicate_failure(self):
        sel = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k / q > 1)
        with pytest.raises(rasp.EvaluationError) as info:
            ev(sel, [1, 0])
        assert "ZeroDivisionError" in str(info.value)

    @pytest.mark.parametrize("xs", [[], "", ()])
    def test_empty_input(self, xs):
        with pytest.raises(rasp.EvaluationError, match="empty"):
            ev(rasp.tokens, xs)
        with pytest.raises(rasp.RaspError):
            ev(rasp.Map(abs, rasp.tokens), xs)

    @pytest.mark.parametrize("xs", [5, None, b"ab", {"a": 1}])
    def test_input_not_a_sequence(self, xs):
        with pytest.raises(TypeError, match="evaluate"):
            ev(rasp.tokens, xs)

    def test_program_not_an_expression(self):
        with pytest.raises(TypeError, match="evaluate"):
            rasp.evaluate(lambda x: x, [1])

    @pytest.mark.parametrize("build,words", [
        (lambda: rasp.Map(1, rasp.tokens), ["Map", "callable"]),
        (lambda: rasp.Map(abs, 1), ["Map", "SOp", "int"]),
        (lambda: rasp.Map(abs, rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)),
         ["Map", "SOp", "Select"]),
        (lambda: rasp.SequenceMap(operator.add, rasp.tokens, 2), ["SequenceMap", "SOp", "int"]),
        (lambda: rasp.SequenceMap(operator.add, "x", rasp.tokens), ["SequenceMap", "SOp"]),
        (lambda: rasp.SequenceMap(None, rasp.tokens, rasp.tokens), ["SequenceMap", "callable"]),
        (lambda: rasp.LinearSequenceMap(rasp.tokens, 1, 1, 1), ["SOp", "int"]),
        (lambda: rasp.Select(rasp.tokens, 3, Comparison.EQ), ["Select", "queries", "int"]),
        (lambda: rasp.Select(3, rasp.tokens, Comparison.EQ), ["Select", "keys", "int"]),
        (lambda: rasp.Select(rasp.tokens, rasp.tokens, 3), ["Select", "callable"]),
        (lambda: rasp.Aggregate(rasp.tokens, rasp.tokens), ["Aggregate", "Selector", "TokensType"]),
        (lambda: rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ), 5),
         ["Aggregate", "SOp", "int"]),
        (lambda: rasp.SelectorWidth(rasp.tokens), ["SelectorWidth", "Selector"]),
        (lambda: rasp.SelectorAnd(rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ),
                                  rasp.tokens), ["SelectorAnd", "Selector"]),
        (lambda: rasp.SelectorOr(1, rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ)),
         ["SelectorOr", "Selector"]),
        (lambda: rasp.SelectorNot(rasp.tokens), ["SelectorNot", "Selector"]),
        (lambda: rasp.Select(rasp.tokens, rasp.tokens, Comparison.EQ) & rasp.tokens,
         ["SelectorAnd", "Selector"]),
    ])
    def test_construction_type_errors(self, build, words):
        with pytest.raises(TypeError) as info:
            build()
        for word in words:
            assert word in str(info.value)
