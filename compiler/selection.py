"""Selectors → attention scores: a bilinear form with integer levels.

A lowered selector is a conjunction of terms, each reading one key SOp and one
query SOp. Each term contributes a 0/1 score (its predicate table over the two
value sets, with None as a value of its own), so the selector holds exactly at
level = number of terms: `and` stays in one head; `or`, `not` and nested
composites of one key and one query SOp cost nothing extra.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers

import numpy as np

from compiler.graph import ProgramGraph
from compiler.lowering import evaluate_term, selector_terms, term_sops
from compiler.values import ValueSet
from craft.attention import predicate_form
from craft.bases import VectorSpace, zeros_matrix
from craft.maps import BilinearForm
from rasp import expr as rx
from rasp.errors import CompileError
from rasp.naming import function_name


@dataclasses.dataclass(frozen=True)
class Selection:
    """Scores of a selector: selected exactly where `form` reaches `level`."""

    form: BilinearForm
    level: int
    keys: tuple[int, ...]      # node ids of the key SOps
    queries: tuple[int, ...]   # node ids of the query SOps
    description: str


def build_selection(selector: rx.Selector, spaces: dict[int, VectorSpace],
                    values: dict[int, ValueSet], graph: ProgramGraph) -> Selection:
    """The scores of a lowered selector."""
    terms = selector_terms(selector)
    forms, keys, queries = [], [], []
    for term in terms:
        (key,), (query,) = term_sops(term)
        if term.annotations.get("product"):
            for sop in (key, query):
                if values[sop.unique_id].may_be_none:
                    parts = ", ".join(map(repr, term.annotations["product"]))
                    raise CompileError(term, f"a composite selector over several SOps "
                                       f"({parts}) reads one that can be None",
                                       "make sure the SOps it reads are never None (give "
                                       "Aggregates a default, or map None to a value)")
        forms.append(_term_form(term, key, query, spaces))
        keys.append(key.unique_id)
        queries.append(query.unique_id)
    form = forms[0]
    for other in forms[1:]:
        form = form + other
    return Selection(form, len(terms), tuple(dict.fromkeys(keys)),
                     tuple(dict.fromkeys(queries)), describe(selector, graph))


def _term_form(term, key, query, spaces) -> BilinearForm:
    table = _comparison_table(term, spaces[key.unique_id], spaces[query.unique_id])
    if table is not None:
        return predicate_form(spaces[query.unique_id], spaces[key.unique_id], table=table)

    def refused(error, key_value, query_value) -> CompileError:
        return CompileError(term, f"its predicate raised {type(error).__name__}: {error} "
                            f"on key {key_value!r} and query {query_value!r}",
                            "make the predicate accept every pair of values the keys "
                            "and queries can take")

    if isinstance(term, rx.Select):  # fast path: most terms are one Select
        predicate = term.predicate
        predicate = predicate.function if isinstance(predicate, rx.Comparison) else predicate

        def selected(key_value, query_value):  # called for every (key, query) pair
            if key_value is None or query_value is None:
                return False
            try:
                return bool(predicate(key_value, query_value))
            except CompileError:
                raise
            except Exception as error:
                raise refused(error, key_value, query_value) from error

        table = _select_table(predicate, spaces[key.unique_id], spaces[query.unique_id])
        if table is not None:
            return predicate_form(spaces[query.unique_id], spaces[key.unique_id], table=table)
    else:
        def selected(key_value, query_value):
            try:
                return evaluate_term(term, {key.unique_id: key_value},
                                     {query.unique_id: query_value})
            except CompileError:
                raise
            except Exception as error:
                raise refused(error, key_value, query_value) from error

    return predicate_form(spaces[query.unique_id], spaces[key.unique_id], selected)


_NUMPY_COMPARISONS = {
    rx.Comparison.EQ: np.equal, rx.Comparison.LT: np.less, rx.Comparison.LEQ: np.less_equal,
    rx.Comparison.GT: np.greater, rx.Comparison.GEQ: np.greater_equal,
    rx.Comparison.NEQ: np.not_equal,
}


def _select_table(predicate, key_space, query_space) -> np.ndarray | None:
    """A Select's predicate table (None never selected), each query's row called from C;
    None where the predicate raises, for `selected` to name the first pair that does."""
    keys = [d.value for d in key_space.basis]
    if any(v is None for v in keys) or any(d.value is None for d in query_space.basis):
        return None  # `selected` never asks the predicate about None
    table = zeros_matrix(len(query_space.basis) + 1, len(keys) + 1)  # refuses sizes beyond memory
    try:
        table[1:, 1:] = [list(map(bool, map(predicate, keys, itertools.repeat(d.value))))
                         for d in query_space.basis]
    except Exception:  # noqa: BLE001  rebuilt pair by pair, which reports the error
        return None
    return table


def _comparison_table(term, key_space, query_space):
    """The predicate table of a built-in comparison between numbers, vectorised."""
    if not isinstance(term, rx.Select) or term.predicate not in _NUMPY_COMPARISONS:
        return None
    keys = [d.value for d in key_space.basis]
    queries = [d.value for d in query_space.basis]
    if not all(isinstance(v, numbers.Real) for v in keys + queries):
        return None
    table = zeros_matrix(len(queries) + 1, len(keys) + 1)  # row/column 0: None, never selected
    compare = _NUMPY_COMPARISONS[term.predicate]
    table[1:, 1:] = compare(np.array(keys, float)[None, :], np.array(queries, float)[:, None])
    return table


def describe(selector: rx.Selector, graph: ProgramGraph | None = None) -> str:
    """A readable formula for a selector, e.g. `Select(indices, opp_idx, EQ) & ~...`."""
    def label(sop):
        if graph is not None and sop.unique_id in graph:
            return graph.label(sop.unique_id)
        return sop.label

    match selector:
        case rx.Select():
            name = function_name(selector.predicate)
            return f"Select({label(selector.keys)}, {label(selector.queries)}, {name})"
        case rx.SelectorNot():
            return f"~({describe(selector.inner, graph)})"
        case rx.SelectorOr():
            return f"({describe(selector.fst, graph)} | {describe(selector.snd, graph)})"
        case rx.SelectorAnd():
            return f"({describe(selector.fst, graph)} & {describe(selector.snd, graph)})"
    return type(selector).__name__
