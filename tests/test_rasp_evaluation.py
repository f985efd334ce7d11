"""Causal evaluation, intermediates and the errors of our own."""

from __future__ import annotations

import operator

import pytest

import rasp
from rasp import Comparison

from tests.rasp_helpers import F, T, ev


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
        assert message.endswith(": its function raised KeyError: 'q' on input 'q' at position 1")
        assert isinstance(info.value.__cause__, KeyError)

    def test_sequence_map_failure(self):
        sm = rasp.SequenceMap(lambda x, y: x / y, rasp.tokens, rasp.indices).named("ratio")
        with pytest.raises(rasp.EvaluationError) as info:
            ev(sm, [7, 8])
        message = str(info.value)
        assert "ratio" in message and "ZeroDivisionError" in message
        assert message.endswith("on input (7, 0) at position 0")  # the pair and its position
        later = rasp.SequenceMap(lambda x, y: x / (y - 1), rasp.tokens, rasp.indices)
        with pytest.raises(rasp.EvaluationError, match=r"on input \(8, 1\) at position 1$"):
            ev(later, [7, 8])
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
        with pytest.raises(rasp.EvaluationError,
                           match="^empty input: a RASP program needs at least one token$"):
            ev(rasp.tokens, xs)
        with pytest.raises(rasp.RaspError):
            ev(rasp.Map(abs, rasp.tokens), xs)

    def test_leading_bos_is_refused(self):
        with pytest.raises(rasp.EvaluationError) as info:
            ev(rasp.tokens, ["BOS", "a"])
        assert str(info.value) == (
            "the input starts with 'BOS', which the compiler reserves for its own BOS token: "
            "evaluate takes the tokens alone (model.apply takes them after 'BOS'); "
            "drop the leading BOS")

    def test_unknown_expression_type_is_named(self):
        class Mystery(rasp.SOp):
            pass

        with pytest.raises(rasp.EvaluationError,
                           match="^puzzle: unknown expression type Mystery$"):
            ev(Mystery().named("puzzle"), [1])

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
