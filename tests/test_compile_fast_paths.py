"""The compile's fast paths give what their pair-by-pair and uncached forms give.

Predicates called from C (Select tables, counts of selected keys) fall back pair by
pair where a predicate raises; memoised bounds and bases equal fresh ones.
"""

import warnings

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from compiler.values import keys_holding
from craft import attention
from craft.bases import BasisDirection, VectorSpace
from craft.maps import BilinearForm
from rasp.errors import CompileError


def _refusal(program, vocab, n) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CompileError) as error:
            compile_rasp_to_model(program, vocab, n)
    return str(error.value)


def test_a_raising_select_predicate_names_its_first_raising_pair():
    # the queries' rows are asked in order, None first (never selected): 'a' rows pass
    weight = {"a": 1, "b": 0}
    select = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: weight[k] / weight[q] > 0)
    message = _refusal(rasp.SelectorWidth(select), {"a", "b"}, 4)
    assert "ZeroDivisionError" in message and "on key 'a' and query 'b'" in message


def test_a_raising_index_predicate_names_key_and_query_zero():
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: 1 / (k - q) > 0)
    ones = rasp.numerical(rasp.Map(lambda x: 1, rasp.tokens))
    message = _refusal(rasp.numerical(rasp.Aggregate(select, ones, default=0)), {"a"}, 4)
    assert "on key 0 and query 0" in message


def test_a_predicate_from_c_that_mostly_holds_compiles_exactly():
    select = rasp.Select(rasp.indices, rasp.indices, lambda k, q: k <= q and k % 2 == 0)
    program = rasp.numerical(rasp.SelectorWidth(select))
    model = compile_rasp_to_model(program, {"x"}, 7)
    decoded = model.apply(["BOS"] + ["x"] * 7).decoded[1:]
    assert np.allclose(decoded, [1, 1, 2, 2, 3, 3, 4], atol=1e-4)


def test_keys_holding_counts_a_raising_pair_as_not_holding():
    def predicate(key, query):
        if key == 2:
            raise ValueError("no 2")
        return key < query

    assert keys_holding(predicate, range(5), 4) == 3  # 0, 1, 3 (2 raises)
    assert keys_holding(lambda k, q: k == q, (1, 2, 2), 2) == 2
    assert keys_holding(lambda k, q: np.array([1, 1]), (1,), 0) == 0  # no truth value


def _form(names_q, names_k, matrix) -> BilinearForm:
    spaces = [VectorSpace(tuple(BasisDirection(n, i) for i, n in enumerate(names)))
              for names in (names_q, names_k)]
    return BilinearForm(*spaces, np.asarray(matrix, float))


def test_remembered_logit_bounds_equal_fresh_ones(monkeypatch):
    rng = np.random.default_rng(0)
    forms = [_form(["one", "a", "a", "b"], ["bos", "a", "b", "a"], rng.normal(size=(4, 4)))
             for _ in range(3)]
    remembered = [attention.logit_error_bound(f) for f in forms]
    again = [attention.logit_error_bound(_form(["one", "a", "a", "b"], ["bos", "a", "b", "a"],
                                                f.matrix.copy())) for f in forms]
    monkeypatch.setattr(attention, "MAX_REMEMBERED_SCORES", -1)  # never remembered
    fresh = [attention.logit_error_bound(f) for f in forms]
    assert remembered == again == fresh
    assert len(set(fresh)) == 3  # distinct matrices are not confused


def test_range_bases_are_remembered_and_equal_built_ones():
    space = VectorSpace.from_values("h", range(5))
    assert space == VectorSpace(tuple(BasisDirection("h", i) for i in range(5)))
    assert space.basis is VectorSpace.from_values("h", range(5)).basis
    assert space.dim == len(space.basis) == 5
    assert space.labels() == ["h:0", "h:1", "h:2", "h:3", "h:4"]
    assert VectorSpace.from_values("h", range(2, 5)).labels() == ["h:2", "h:3", "h:4"]
