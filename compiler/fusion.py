"""Fuse chains that need no layer of their own (runs after lowering).

Takes a lowered program and gives an equivalent one with fewer sublayers:
  - Map/SequenceMap chains over at most two source SOps (at most one numerical)
    become one Map or SequenceMap: one MLP instead of one per link;
  - a Map of a SelectorWidth is computed by the SelectorWidth's own MLP
    (annotation `width_map`); a SequenceMap of a width and tokens or indices
    is too (compiler.blocks gates the width's discretiser by the token or index);
  - a Map of one categorical SOp feeding a Select is folded into the
    predicate (W_QK), and one feeding an Aggregate into W_OV (annotation
    `value_map`).
Every fused function keeps RASP's None rule: None in, None out.

A numerical SelectorWidth output telescopes over up to N steps, and its float32
error bound (any summation order, craft.float_bounds) grows like u·N³; where
`output_error_bound` exceeds NUMERIC_BUDGET the width stays categorical and a
lookup MLP turns it into a number.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from compiler.budgets import NUMERIC_BUDGET, OUTPUT_BUDGET
from compiler.lowering import rebuilt, selector_terms
from craft.numerical import output_error_bound
from rasp import expr as rx
from rasp.traverse import topological_order


@dataclasses.dataclass(frozen=True)
class _Fused:
    """A value computed by MLPs alone from `sources`: fn(*source_values)."""

    sources: tuple[rx.SOp, ...]
    fn: Callable[..., Any]


def fuse_program(program: rx.SOp, max_seq_len: int) -> rx.SOp:
    """The program with MLP chains fused and Maps folded into attention."""
    done: dict[int, rx.RASPExpr] = {}
    forms: dict[int, _Fused] = {}
    for expr in topological_order(program):
        budget = OUTPUT_BUDGET if expr is program else NUMERIC_BUDGET
        new = _fuse(expr, lambda e: done[e.unique_id], forms, max_seq_len, budget)
        done[expr.unique_id] = new
        if isinstance(new, (rx.Map, rx.SequenceMap)) and not _is_linear(new):
            forms[new.unique_id] = _form_of(new)
    return done[program.unique_id]


def _fuse(expr, fused, forms, max_seq_len, budget):
    match expr:
        case rx.Map() | rx.SequenceMap():
            return _mlp_chain(expr, [fused(c) for c in expr.children], forms, max_seq_len,
                              budget)
        case rx.Aggregate():
            selector = _fold_selector(expr.selector, fused, forms)
            sop = fused(expr.sop)
            single = _single_categorical_source(sop, forms)
            if single is not None and "value_map" not in sop.annotations:
                source, fn = single
                new = rx.Aggregate(selector, source, expr.default)
                return new.annotated(**{**expr.annotations, "name": expr.label, "value_map": fn})
            return rebuilt(expr, rx.Aggregate(selector, sop, expr.default))
        case rx.SelectorWidth():
            width = rebuilt(expr, rx.SelectorWidth(_fold_selector(expr.selector, fused, forms)))
            if rx.is_numerical(width) and not _width_is_precise(_identity, max_seq_len, budget):
                counted = rx.categorical(rx.SelectorWidth(width.selector))
                counted = counted.named(f"{expr.label}.categorical")
                return rx.Map(_identity, counted).annotated(**{**expr.annotations,
                                                               "name": expr.label})
            return width
    return expr


def _width_is_precise(width_map, max_seq_len, budget) -> bool:
    """Whether a width's MLP can output width_map(w) as a number within `budget`, in
    float32 and any summation order (NUMERIC_BUDGET, or OUTPUT_BUDGET for the output)."""
    if width_map is _identity:
        return _count_is_precise(max_seq_len, budget)
    return _outputs_are_precise(width_map, max_seq_len, budget)


@functools.lru_cache(maxsize=64)
def _count_is_precise(max_seq_len: int, budget: float) -> bool:
    """`_width_is_precise` of the width itself: a constant of N and the budget."""
    return _outputs_are_precise(_identity, max_seq_len, budget)


def _outputs_are_precise(width_map, max_seq_len, budget) -> bool:
    widths = range(max_seq_len + 1)
    try:
        outputs = [float(width_map(w)) for w in widths]
    except Exception:  # noqa: BLE001  non-numeric or failing maps are checked elsewhere
        return True
    return output_error_bound([1 / (w + 1) for w in widths], outputs) <= budget


def _is_linear(expr) -> bool:
    """A LinearSequenceMap of numerical inputs: kept as an exact linear MLP."""
    return (isinstance(expr, rx.LinearSequenceMap) and rx.is_numerical(expr.fst)
            and rx.is_numerical(expr.snd))


def _form_of(expr) -> _Fused:
    return _Fused(tuple(expr.children), expr.f)


def _mlp_chain(expr, children, forms, max_seq_len, budget):
    """`expr` over its children, expanded through child MLP chains where it fits."""
    child_forms = [forms.get(c.unique_id, _Fused((c,), _identity)) for c in children]
    for expand in ([True, True], [True, False], [False, True], [False, False])[:2 ** len(children)]:
        parts = [f if e else _Fused((c,), _identity)
                 for f, e, c in zip(child_forms, expand, children)]
        sources = tuple(dict.fromkeys(s for p in parts for s in p.sources))
        if _fits(sources):
            return _emit(expr, sources, _compose(expr.f, parts, sources), max_seq_len, budget)
    if isinstance(expr, rx.LinearSequenceMap):
        return rebuilt(expr, rx.LinearSequenceMap(*children, expr.fst_fac, expr.snd_fac))
    return rebuilt(expr, type(expr)(expr.f, *children))


def _fits(sources) -> bool:
    numerical = sum(rx.is_numerical(s) for s in sources)
    return len(sources) == 1 or (len(sources) == 2 and numerical <= 1)


def _identity(x):
    return x


def _compose(f, parts: list[_Fused], sources: tuple[rx.SOp, ...]):
    index = {s.unique_id: i for i, s in enumerate(sources)}
    # Called for every value (pair) by value-set inference and by the block builders, so
    # one-source parts skip the list, and identity parts the call.
    steps = [(part.fn, tuple(index[s.unique_id] for s in part.sources)) for part in parts]

    def fused(*values):
        inputs = []
        for fn, picks in steps:
            if len(picks) == 1:
                value = values[picks[0]]
                if value is not None and fn is not _identity:
                    value = fn(value)
            else:
                args = [values[i] for i in picks]
                value = None if any(a is None for a in args) else fn(*args)
            if value is None:
                return None
            inputs.append(value)
        return f(*inputs)

    return fused


def _emit(expr, sources, fn, max_seq_len, budget):
    """The fused node: a width-map, a Map or a SequenceMap over `sources`."""
    annotations = {**expr.annotations, "name": expr.label}
    if len(sources) == 1 and isinstance(sources[0], rx.SelectorWidth):
        width = sources[0]
        inner = width.annotations.get("width_map")
        mapped = fn if inner is None else (lambda w: _then(inner(w), fn))
        if rx.is_categorical(expr) or _width_is_precise(mapped, max_seq_len, budget):
            return rx.SelectorWidth(width.selector).annotated(
                **{**annotations, "width_map": mapped})
    if len(sources) == 1:
        new = rx.Map(fn, sources[0])
    else:
        new = rx.SequenceMap(fn, *sources)
    return new.annotated(**annotations)


def _then(value, fn):
    return None if value is None else fn(value)


def _single_categorical_source(sop, forms):
    """(source, fn) when `sop` is an MLP-only function of one categorical SOp."""
    form = forms.get(sop.unique_id)
    if form is None or len(form.sources) != 1 or not rx.is_categorical(form.sources[0]):
        return None
    if isinstance(form.sources[0], rx.SelectorWidth):
        return None  # its own MLP computes the map
    return form.sources[0], form.fn


# ---------------------------------------------------------------- selectors


def _fold_selector(selector, fused, forms):
    """The selector with each term reading Map sources directly where possible."""
    terms = [_fold_term(t, fused, forms) for t in selector_terms(selector)]
    result = terms[0]
    for term in terms[1:]:
        result = rx.SelectorAnd(result, term)
    return result if any(t is not o for t, o in zip(terms, selector_terms(selector))) \
        else selector


def _fold_term(term, fused, forms):
    leaves = _leaves(term)
    keys = {fused(leaf.keys) for leaf in leaves}
    queries = {fused(leaf.queries) for leaf in leaves}
    if len(keys) != 1 or len(queries) != 1:
        return term
    (key,), (query,) = keys, queries
    if any(leaf.annotations.get("product") for leaf in leaves):
        key_fold = query_fold = None  # tuples must be built: a None part has to be seen
    else:
        key_fold = _single_categorical_source(key, forms)
        query_fold = _single_categorical_source(query, forms)
    new_key, key_fn = key_fold if key_fold else (key, _identity)
    new_query, query_fn = query_fold if query_fold else (query, _identity)
    if new_key is key and new_query is query and all(
            leaf.keys is key and leaf.queries is query for leaf in leaves):
        return term
    return _rewrite_term(term, new_key, key_fn, new_query, query_fn)


def _leaves(term):
    if isinstance(term, rx.Select):
        return [term]
    return [leaf for child in term.children for leaf in _leaves(child)]


def _rewrite_term(term, key, key_fn, query, query_fn):
    match term:
        case rx.Select() if key_fn is _identity and query_fn is _identity:
            return rx.Select(key, query, term.predicate).annotated(
                **{**term.annotations, "name": term.label})
        case rx.Select():
            predicate = term.predicate
            if isinstance(predicate, rx.Comparison):
                predicate = predicate.function

            def folded(k, q):
                k, q = key_fn(k), query_fn(q)
                return k is not None and q is not None and bool(predicate(k, q))

            original = term.predicate.name if isinstance(term.predicate, rx.Comparison) else \
                getattr(term.predicate, "__name__", "predicate")
            folded.__name__ = f"{original}∘map"

            return rx.Select(key, query, folded).annotated(
                **{**term.annotations, "name": term.label})
        case rx.SelectorNot():
            return rx.SelectorNot(_rewrite_term(term.inner, key, key_fn, query, query_fn))
        case rx.SelectorAnd():  # also SelectorOr
            return type(term)(_rewrite_term(term.fst, key, key_fn, query, query_fn),
                              _rewrite_term(term.snd, key, key_fn, query, query_fn))
    return term
