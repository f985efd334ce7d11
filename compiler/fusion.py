"""Fuse chains that need no layer of their own (runs after lowering).

Takes a lowered program and gives an equivalent one with fewer sublayers:
  - Map/SequenceMap chains over at most two source SOps (at most one numerical)
    become one Map or SequenceMap: one MLP instead of one per link; a linear map with
    a numerical input stays linear unless its chains reach categorical sources only
    (compiler.blocks reads a numerical Map of tokens or indices as a one-hot);
  - a Map of a SelectorWidth is computed by the SelectorWidth's own MLP
    (annotation `width_map`); a SequenceMap of a width and tokens or indices
    is too (compiler.blocks gates the width's discretiser by the token or index);
  - a Map of one categorical SOp feeding a Select is folded into the
    predicate (W_QK), and one feeding an Aggregate into W_OV (annotation
    `value_map`).
Every fused function keeps RASP's None rule: None in, None out.
A chain that a SequenceMap's MLP would not need to expand (it fits, and its own MLP
runs in an earlier sublayer) is optional: `fuse_alternatives` also gives the program
with such chains kept separate, for the compiler to keep whichever is narrower.

A numerical SelectorWidth output telescopes over up to N steps, and its float32
error bound (any summation order, craft.float_bounds) grows like u·N³; where
`output_error_bound` exceeds NUMERIC_BUDGET (OUTPUT_BUDGET for the output) the head's
scratch is shifted towards 0 (annotation `scratch_shift`, craft.selector_width), which
rounds less; where that exceeds it too, the width stays categorical and a lookup MLP
turns it into a number, one layer later.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

from compiler.budgets import NUMERIC_BUDGET, OUTPUT_BUDGET
from compiler.layer_norm import LayerNormReads
from compiler.lowering import rebuilt, selector_terms
from craft.float_bounds import NormedRead
from craft.numerical import output_error_bound
from craft.selector_width import scratch_values
from rasp import expr as rx
from rasp.naming import function_name
from rasp.traverse import topological_order


@dataclasses.dataclass(frozen=True)
class _Fused:
    """A value computed by MLPs alone from `sources`: fn(*source_values)."""

    sources: tuple[rx.SOp, ...]
    fn: Callable[..., Any]


def fuse_program(program: rx.SOp, max_seq_len: int) -> rx.SOp:
    """The program with MLP chains fused and Maps folded into attention."""
    return _fused_program(program, max_seq_len, frozenset())[0]


def fuse_alternatives(program: rx.SOp, max_seq_len: int,
                      worth_trying: Callable[[rx.SOp], bool] = lambda chain: True,
                      norm: NormedRead | None = None) -> tuple[rx.SOp, rx.SOp | None]:
    """(fused, narrower): `program` fused, and the same with every optional chain kept
    as its own MLP — a chain expanded into a reader that would also fit without it —
    or None where there is none. Expanding an optional chain can save a layer, or only
    multiply the reader's table: which, only value sets and the schedule tell.
    Only the chains (expressions of `program`) that `worth_trying` accepts are kept
    separate: laying out the alternative costs a second layout. `norm`: every MLP reads
    through a LayerNorm (compiler.layer_norm), which a numerical width's bound pays."""
    fused, optional = _fused_program(program, max_seq_len, frozenset(), norm)
    optional = frozenset(e.unique_id for e in topological_order(program)
                         if e.unique_id in optional and worth_trying(e))
    if not optional:
        return fused, None
    return fused, _fused_program(program, max_seq_len, optional, norm)[0]


def fuse_digits(program: rx.SOp, max_seq_len: int,
                norm: NormedRead | None = None) -> rx.SOp | None:
    """`program` fused, with every numerical width that would stay categorical (a lookup
    of all N + 1 counts, one layer later) counted as two categorical digits instead, w // k
    and w % k for k = ⌈√(N+1)⌉, which a pair lookup turns into k·(w // k) + w % k in the
    same layer: about 2√N one-hot dimensions in the residual instead of N + 1, at the cost
    of a second head. None where no width is split. (compile_rasp_to_model tries it with
    prefer="params".)"""
    fused, _ = _fused_program(program, max_seq_len, frozenset(), norm, digits=True)
    split = any("digit_base" in e.annotations for e in topological_order(fused))
    return fused if split else None


def _fused_program(program, max_seq_len, separate: frozenset[int], norm=None, digits=False):
    """(fused program, ids of the expressions whose chains were expanded optionally);
    chains of the expressions in `separate` (ids in `program`) are never expanded; with
    `digits`, see `fuse_digits`."""
    done: dict[int, rx.RASPExpr] = {}
    forms: dict[int, _Fused] = {}
    original: dict[int, int] = {}  # fused id -> id in `program`
    chains = _Chains(forms, frozenset(), set(), set(), {})
    for expr in topological_order(program):
        budget = OUTPUT_BUDGET if expr is program else NUMERIC_BUDGET
        new = _fuse(expr, lambda e: done[e.unique_id], chains, max_seq_len, budget, norm,
                    digits)
        done[expr.unique_id] = new
        chains.sublayers[new.unique_id] = _sublayer(new, chains.sublayers)
        original.setdefault(new.unique_id, expr.unique_id)
        if expr.unique_id in separate:
            chains = dataclasses.replace(chains, separate=chains.separate | {new.unique_id})
        if isinstance(new, (rx.Map, rx.SequenceMap)) and not _is_linear(new):
            forms[new.unique_id] = _form_of(new)
    return done[program.unique_id], frozenset(original[i]
                                              for i in chains.optional - chains.needed)


@dataclasses.dataclass(frozen=True)
class _Chains:
    """The MLP chains fusion may expand: `forms` by fused id, less the `separate` ones;
    `optional` collects the ids of chains expanded where leaving them would also fit
    and cost no depth (the chain's own MLP runs in an earlier sublayer than its reader),
    `needed` those some reader expands for depth or fit."""

    forms: dict[int, _Fused]
    separate: frozenset[int]
    optional: set[int]
    needed: set[int]
    sublayers: dict[int, int]  # fused id -> the earliest sublayer that can write it

    def get(self, node: int, default=None):
        """The chain `node` computes (for folding into attention: never kept separate)."""
        return self.forms.get(node, default)

    def expandable(self, node: int, default: _Fused) -> _Fused:
        """The chain `node` computes, or `default` where it is kept separate."""
        return default if node in self.separate else self.forms.get(node, default)


def _fuse(expr, fused, forms, max_seq_len, budget, norm=None, digits=False):
    match expr:
        case rx.Map() | rx.SequenceMap():
            return _mlp_chain(expr, [fused(c) for c in expr.children], forms, max_seq_len,
                              budget, norm)
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
            shift = _width_shift(_identity, max_seq_len, budget, norm)
            if rx.is_numerical(width) and shift is None and digits:
                return _digit_width(expr, width.selector, max_seq_len)
            if rx.is_numerical(width) and shift is None:
                counted = rx.categorical(rx.SelectorWidth(width.selector))
                counted = counted.named(f"{expr.label}.categorical")
                return rx.Map(_identity, counted).annotated(**{**expr.annotations,
                                                               "name": expr.label})
            if rx.is_numerical(width) and shift:
                return width.annotated(**{**width.annotations, "name": width.label,
                                          "scratch_shift": shift})
            return width
    return expr


def _digit_width(expr, selector, max_seq_len: int) -> rx.SOp:
    """`fuse_digits`' numerical width: k·(w // k) + w % k of two categorical widths."""
    base = math.isqrt(max_seq_len) + 1  # ⌈√(N+1)⌉: the fewest one-hot dimensions
    high, low = (rx.categorical(rx.SelectorWidth(selector)).annotated(
        name=f"{expr.label}.{part}{base}", width_map=digit, digit_base=base)
        for part, digit in (("div", lambda w: w // base), ("mod", lambda w: w % base)))
    # min(·, N): the pair (N // k, k − 1) never occurs, but value sets take every pair,
    # and a count above N would widen every reader's (and a mean's) value set
    return rx.SequenceMap(lambda h, l: min(base * h + l, max_seq_len), high, low).annotated(
        **{**expr.annotations, "name": expr.label})


def _width_shift(width_map, max_seq_len, budget, norm=None) -> float | None:
    """The scratch shift with which a width's MLP outputs width_map(w) as a number within
    `budget`, in float32 and any summation order (NUMERIC_BUDGET, or OUTPUT_BUDGET for
    the output): 0.0 (none) where that is precise, else 1/N where that is, else None.
    With `norm`, through a LayerNorm, whose read by the width's readers the budget pays."""
    if width_map is _identity:
        return _count_shift(max_seq_len, budget, norm)
    return _precise_shift(width_map, max_seq_len, budget, norm)


@functools.lru_cache(maxsize=64)
def _count_shift(max_seq_len: int, budget: float, norm=None) -> float | None:
    """`_width_shift` of the width itself: a constant of N, the budget and the norm."""
    return _precise_shift(_identity, max_seq_len, budget, norm)


def _precise_shift(width_map, max_seq_len, budget, norm=None) -> float | None:
    try:
        outputs = [float(width_map(w)) for w in range(max_seq_len + 1)]
    except Exception:  # noqa: BLE001  non-numeric or failing maps are checked elsewhere
        return 0.0
    if norm is not None:
        budget -= LayerNormReads.read_error(max(map(abs, outputs)) + 1)
    for shift in (0.0, 1 / max_seq_len):  # 1/N: about the least bound (N = 6..32)
        if output_error_bound(scratch_values(max_seq_len, shift), outputs, norm=norm) <= budget:
            return shift
    return None


def _is_linear(expr) -> bool:
    """A LinearSequenceMap with a numerical input: kept as an exact linear MLP (the
    builder reads a categorical input's one-hot linearly)."""
    return isinstance(expr, rx.LinearSequenceMap) and any(map(rx.is_numerical, expr.children))


def _form_of(expr) -> _Fused:
    return _Fused(tuple(expr.children), expr.f)


def _mlp_chain(expr, children, forms, max_seq_len, budget, norm=None):
    """`expr` over its children, expanded through child MLP chains where it fits."""
    # A linear map of numbers stays linear unless fusing makes it a lookup of categorical
    # sources alone: a discretiser of one number gated by another SOp would need the
    # combination's value gaps, where linear is exact for any values.
    linear = isinstance(expr, rx.LinearSequenceMap) and any(map(rx.is_numerical, children))
    lookup = forms.expandable if isinstance(forms, _Chains) else forms.get
    child_forms = [lookup(c.unique_id, _Fused((c,), _identity)) for c in children]
    expansions = ([True, True], [True, False], [False, True], [False, False])
    for expand in expansions[:2 ** len(children)]:
        parts = _parts(child_forms, expand, children)
        sources = tuple(dict.fromkeys(s for p in parts for s in p.sources))
        if _fits(sources) and not (linear and any(map(rx.is_numerical, sources))):
            if isinstance(forms, _Chains):
                _note_optional(forms, children, child_forms, expand, _mlp_sublayer(
                    [forms.sublayers.get(s.unique_id, -1) for s in sources]))
            return _emit(expr, sources, _compose(expr.f, parts, sources), max_seq_len, budget,
                         norm)
    if isinstance(expr, rx.LinearSequenceMap):
        return rebuilt(expr, rx.LinearSequenceMap(*children, expr.fst_fac, expr.snd_fac))
    return rebuilt(expr, type(expr)(expr.f, *children))


def _parts(child_forms, expand, children) -> list[_Fused]:
    return [f if e else _Fused((c,), _identity) for f, e, c in zip(child_forms, expand, children)]


def _note_optional(chains: _Chains, children, child_forms, expand, reader_sublayer: int):
    """Sort each expanded child chain into `optional` (its reader would also fit without
    expanding it, in the same sublayer) or `needed` (by some reader: never optional)."""
    for i, child in enumerate(children):
        if not expand[i] or child.unique_id not in chains.forms:
            continue
        kept = _parts(child_forms, [e and j != i for j, e in enumerate(expand)], children)
        if chains.sublayers[child.unique_id] < reader_sublayer and \
                _fits(tuple(dict.fromkeys(s for p in kept for s in p.sources))):
            chains.optional.add(child.unique_id)
        else:
            chains.needed.add(child.unique_id)


def _sublayer(expr, sublayers: dict[int, int]) -> int:
    """The earliest sublayer (attention even, MLP odd; as compiler.schedule) that can
    write fused `expr`: an estimate, since blocks decide; -1 for embedded SOps."""
    inputs = [sublayers.get(s.unique_id, -1) for s in _sop_inputs(expr)]
    match expr:
        case rx.Map() | rx.SequenceMap():
            return _mlp_sublayer(inputs)
        case rx.Aggregate():
            return max(inputs, default=-1) // 2 * 2 + 2
        case rx.SelectorWidth():
            return max(inputs, default=-1) // 2 * 2 + 3
    return -1


def _mlp_sublayer(inputs: list[int]) -> int:
    """The first MLP (odd) sublayer after all of `inputs` are written."""
    return (max(inputs, default=-1) + 1) // 2 * 2 + 1


def _sop_inputs(expr) -> list[rx.SOp]:
    """The SOps `expr` reads, through its selectors' keys and queries."""
    found = []
    for child in expr.children:
        found.extend([child] if isinstance(child, rx.SOp) else _sop_inputs(child))
    return found


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


def _emit(expr, sources, fn, max_seq_len, budget, norm=None):
    """The fused node: a width-map, a Map or a SequenceMap over `sources`."""
    annotations = {**expr.annotations, "name": expr.label}
    if len(sources) == 1 and isinstance(sources[0], rx.SelectorWidth):
        width = sources[0]
        inner = width.annotations.get("width_map")
        mapped = fn if inner is None else (lambda w: _then(inner(w), fn))
        shift = 0.0 if rx.is_categorical(expr) else _width_shift(mapped, max_seq_len, budget,
                                                                 norm)
        if shift is not None:
            return rx.SelectorWidth(width.selector).annotated(
                **{**annotations, "width_map": mapped}, **({"scratch_shift": shift} if shift
                                                           else {}))
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

            folded.__name__ = f"{function_name(term.predicate)}∘map"

            return rx.Select(key, query, folded).annotated(
                **{**term.annotations, "name": term.label})
        case rx.SelectorNot():
            return rx.SelectorNot(_rewrite_term(term.inner, key, key_fn, query, query_fn))
        case rx.SelectorAnd():  # also SelectorOr
            return type(term)(_rewrite_term(term.fst, key, key_fn, query, query_fn),
                              _rewrite_term(term.snd, key, key_fn, query, query_fn))
    return term
