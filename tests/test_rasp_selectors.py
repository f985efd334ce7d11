"""Semantics of Select (every comparison and callables) and composite selectors."""

from __future__ import annotations


import pytest

import rasp
from rasp import Comparison

from tests.rasp_helpers import F, T, ev, none_at_zero, recorder


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
