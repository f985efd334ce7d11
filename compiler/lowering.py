"""Rewrite a program into the forms the block library compiles directly.

Takes an SOp and gives an equivalent SOp (same value at every position) in
which:
  - a ConstantSelector is a Select of indices against indices;
  - every selector is a conjunction of terms, each term reading one key SOp
    and one query SOp (composites over several SOps read tuple-valued SOps
    built by a pair-lookup MLP);
  - keys and queries are categorical, and so is at least one SequenceMap input
    (a numerical one is discretised by an identity Map first), but for a numerical
    LinearSequenceMap with a numerical input;
  - a SequenceMap of one SOp with itself is a Map;
  - a linear combination of two numerical means over the same selector is one
    mean of the linear combination (exact, one layer less, and a value set of
    j/n instead of every difference of two fractions).
Rebuilt expressions keep the label of the expression they replace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import rasp
from rasp import expr as rx
from rasp.errors import CompileError


def lower_program(program: rx.SOp,
                  may_be_none: Callable[[rx.SOp], bool] = lambda sop: True) -> rx.SOp:
    """The rewritten program (the input is not modified).

    `may_be_none(sop)` says whether an SOp of `program` can be None; a product
    selector reads such an SOp through a never-None copy (see `_Lowered.part`).
    """
    lowered = _Lowered({rx.indices.unique_id: rx.indices}, may_be_none)  # for ConstantSelector
    for expr in rasp.topological_order(program):
        lowered.done[expr.unique_id] = _lower(expr, lowered)
    return lowered(program)


@dataclasses.dataclass
class _Lowered:
    """The lowered form of each expression by id, and never-None copies of SOps."""

    done: dict[int, rx.RASPExpr]
    may_be_none: Callable[[rx.SOp], bool]
    copies: dict[int, rx.SOp] = dataclasses.field(default_factory=dict)

    def __call__(self, expr: rx.RASPExpr) -> rx.RASPExpr:
        return self.done[expr.unique_id]

    def part(self, sop: rx.SOp) -> tuple[rx.SOp, bool]:
        """The categorical SOp a product tuple holds for `sop`, and whether it is wrapped.

        A tuple is None when any part is, which loses which part was None. So an
        SOp that may be None is read as 1-tuples `(v,)`, with `()` where it is
        None: it aggregates itself at its own position (one head; at most one key).
        """
        part = as_categorical(self(sop))
        if isinstance(sop, (rx.TokensType, rx.IndicesType, rx.LengthType)) or \
                not self.may_be_none(sop):
            return part, False
        if sop.unique_id not in self.copies:
            here = (rx.Select(rx.indices, rx.indices, rx.Comparison.EQ)
                    & rx.Select(part, part, rx.Comparison.TRUE))
            # `selects_no_none`: the value sets may drop None (`here` never selects it)
            self.copies[sop.unique_id] = rx.Aggregate(
                here, rx.Map(lambda v: (v,), part), default=()).annotated(
                    name=f"{sop.label}.or_none", selects_no_none=True)
        return self.copies[sop.unique_id], True


def _lower(expr, lowered: Callable[[rx.RASPExpr], rx.RASPExpr]):
    match expr:
        case rx.Aggregate() if _mean_may_be_none(expr, lowered):
            return _mean_or_none(expr, _selector(expr.selector, lowered), lowered(expr.sop))
        case rx.Map() if rx.is_numerical(expr) and _number_of_none(expr, lowered):
            return _categorical(expr, rx.Map(expr.f, lowered(expr.inner)))
        case rx.Aggregate():
            sop = lowered(expr.sop)
            if rx.is_categorical(expr) and rx.is_numerical(sop):
                sop = as_categorical(sop)
            return rebuilt(expr, rx.Aggregate(_selector(expr.selector, lowered), sop,
                                               expr.default))
        case rx.SelectorWidth():
            return rebuilt(expr, rx.SelectorWidth(_selector(expr.selector, lowered)))
        case rx.LinearSequenceMap():
            fst, snd = lowered(expr.fst), lowered(expr.snd)
            if _same_mean(fst, snd) and rx.is_numerical(expr):
                return _mean_of_combination(expr, fst, snd)
            if (rx.is_numerical(fst) or rx.is_numerical(snd)) and rx.is_numerical(expr):
                # a categorical input too: the builder reads its one-hot linearly
                return rebuilt(expr, rx.LinearSequenceMap(fst, snd, expr.fst_fac, expr.snd_fac))
            return _sequence_map(expr, expr.f, fst, snd)
        case rx.SequenceMap():
            return _sequence_map(expr, expr.f, lowered(expr.fst), lowered(expr.snd))
        case rx.Map():
            return rebuilt(expr, rx.Map(expr.f, lowered(expr.inner)))
        case rx.Selector():
            return expr  # selectors are lowered where they are used
    return expr


def _mean_may_be_none(expr, lowered) -> bool:
    """A numerical mean with no default (None) that may select nothing."""
    return rx.is_numerical(expr) and expr.default is None and \
        isinstance(lowered, _Lowered) and lowered.may_be_none(expr)


def _mean_or_none(expr, selector, sop):
    """A numerical mean that is None where it selects nothing (as the evaluator gives it),
    as a categorical SOp, since one direction holding a number cannot be None: the mean
    with default 0, gated by a categorical Aggregate that is None where nothing is
    selected (RASP's None rule makes the gate's None the result's)."""
    label = expr.label
    mean = rx.numerical(rx.Aggregate(selector, sop, default=0)).named(f"{label}.mean")
    anything = rx.categorical(rx.Aggregate(selector, rx.Full(True))).named(f"{label}.selects")
    return _categorical(expr, rx.SequenceMap(_first, mean, anything))


def _first(value, _):
    return value


def _number_of_none(expr, lowered) -> bool:
    """A numerical Map that may be None, of an SOp lowered to a categorical one (such as
    `_mean_or_none`): a lookup gives its None exactly, a direction could not."""
    return isinstance(lowered, _Lowered) and rx.is_categorical(lowered(expr.inner)) and \
        rx.is_numerical(expr.inner) and lowered.may_be_none(expr)


def _categorical(original, new):
    """`new`, categorical, with `original`'s other annotations and label."""
    return new.annotated(**{**original.annotations, "name": original.label,
                            "encoding": rx.Encoding.CATEGORICAL})


def _sequence_map(expr, f, fst, snd):
    """At most one numerical input (the block builder gates a discretiser of it by the
    other); of two numerical inputs the shallower is discretised on its own."""
    if fst is snd:
        return rebuilt(expr, rx.Map(lambda x: f(x, x), fst))
    if rx.is_numerical(fst) and rx.is_numerical(snd):
        if _depth(fst) <= _depth(snd):
            fst = as_categorical(fst)
        else:
            snd = as_categorical(snd)
    return rebuilt(expr, rx.SequenceMap(f, fst, snd))


def _depth(expr) -> int:
    """Longest path to a primitive, counted in expressions (a proxy for readiness)."""
    depths: dict[int, int] = {}
    for node in rasp.topological_order(expr):
        depths[node.unique_id] = 1 + max((depths[c.unique_id] for c in node.children), default=0)
    return depths[expr.unique_id]


def _same_mean(fst, snd) -> bool:
    return (isinstance(fst, rx.Aggregate) and isinstance(snd, rx.Aggregate)
            and rx.is_numerical(fst) and rx.is_numerical(snd)
            and isinstance(fst.default, (int, float)) and isinstance(snd.default, (int, float))
            and same_selector(fst.selector, snd.selector))


def _mean_of_combination(expr, fst, snd):
    a, b = expr.fst_fac, expr.snd_fac
    if rx.is_numerical(fst.sop) and rx.is_numerical(snd.sop):
        combined = rx.LinearSequenceMap(fst.sop, snd.sop, a, b)
    else:
        combined = rx.SequenceMap(lambda x, y: a * x + b * y,
                                  as_categorical(fst.sop), as_categorical(snd.sop))
    combined = rx.numerical(combined).named(f"{expr.label}.summand")
    mean = rx.Aggregate(fst.selector, combined, a * fst.default + b * snd.default)
    return mean.annotated(**{**expr.annotations, "name": expr.label})


def same_selector(s: rx.Selector, t: rx.Selector) -> bool:
    """Whether two selectors select the same pairs by construction."""
    if s is t:
        return True
    if type(s) is not type(t):
        return False
    match s:
        case rx.Select():
            return s.keys is t.keys and s.queries is t.queries and s.predicate is t.predicate
        case rx.SelectorNot():
            return same_selector(s.inner, t.inner)
        case rx.SelectorAnd():
            return same_selector(s.fst, t.fst) and same_selector(s.snd, t.snd)
    return False


def rebuilt(original: rx.RASPExpr, new: rx.RASPExpr) -> rx.RASPExpr:
    """`new` with `original`'s annotations and label; `original` itself if unchanged."""
    if _same_fields(original, new):
        return original
    return new.annotated(**{**original.annotations, "name": original.label})


def _same_fields(a, b) -> bool:
    if type(a) is not type(b):
        return False
    fields = set(a.__dict__) - {"unique_id", "_annotations"}
    return all(a.__dict__[k] is b.__dict__[k] for k in fields)


def as_categorical(sop: rx.SOp) -> rx.SOp:
    """`sop` itself if categorical, else a discretising identity Map of it."""
    if rx.is_categorical(sop):
        return sop
    return rx.categorical(rx.Map(lambda x: x, sop)).named(f"{sop.label}.categorical")


# ---------------------------------------------------------------- selectors


def selector_terms(selector: rx.Selector) -> list[rx.Selector]:
    """The conjuncts of a selector whose And-nodes have been flattened."""
    if isinstance(selector, rx.SelectorAnd) and not isinstance(selector, rx.SelectorOr):
        return selector_terms(selector.fst) + selector_terms(selector.snd)
    return [selector]


def term_sops(term: rx.Selector) -> tuple[list[rx.SOp], list[rx.SOp]]:
    """Distinct key SOps and query SOps read by a selector tree, in first-seen order."""
    keys: dict[int, rx.SOp] = {}
    queries: dict[int, rx.SOp] = {}
    for leaf in _leaves(term):
        keys.setdefault(leaf.keys.unique_id, leaf.keys)
        queries.setdefault(leaf.queries.unique_id, leaf.queries)
    return list(keys.values()), list(queries.values())


def evaluate_term(term: rx.Selector, key_values: dict[int, object],
                  query_values: dict[int, object]) -> bool:
    """Whether `term` selects, given each key SOp's and query SOp's value by id."""
    match term:
        case rx.Select():
            key, query = key_values[term.keys.unique_id], query_values[term.queries.unique_id]
            return key is not None and query is not None and bool(term.predicate(key, query))
        case rx.SelectorNot():
            return not evaluate_term(term.inner, key_values, query_values)
        case rx.SelectorOr():
            return (evaluate_term(term.fst, key_values, query_values)
                    or evaluate_term(term.snd, key_values, query_values))
        case rx.SelectorAnd():
            return (evaluate_term(term.fst, key_values, query_values)
                    and evaluate_term(term.snd, key_values, query_values))
    raise CompileError(term, f"cannot compile a {type(term).__name__}",
                       "build the selector from Select, &, | and ~")


def _leaves(term):
    match term:
        case rx.Select():
            return [term]
        case rx.SelectorNot():
            return _leaves(term.inner)
        case rx.SelectorAnd():  # also SelectorOr
            return _leaves(term.fst) + _leaves(term.snd)
    raise CompileError(term, f"cannot compile a {type(term).__name__}",
                       "build the selector from Select, &, | and ~ over SOps")


def _selector(selector, lowered):
    """A selector whose terms each read one categorical key SOp and one query SOp."""
    terms = []
    for term in selector_terms(_constants_as_selects(selector)):
        keys, queries = term_sops(term)
        if len(keys) == 1 and len(queries) == 1:
            terms.append(_with_sops(term, {keys[0].unique_id: as_categorical(lowered(keys[0]))},
                                    {queries[0].unique_id: as_categorical(lowered(queries[0]))}))
        else:
            terms.append(_product_select(term, keys, queries, lowered))
    result = terms[0]
    for term in terms[1:]:
        result = rx.SelectorAnd(result, term)
    return result


def _constants_as_selects(selector):
    """The selector tree with each ConstantSelector replaced by a Select on indices
    whose predicate reads the matrix (outside the matrix: not selected, as in
    the evaluator)."""
    match selector:
        case rx.ConstantSelector():
            matrix = selector.value

            def in_constant_matrix(key, query):
                return query < len(matrix) and key < len(matrix[query]) and matrix[query][key]

            return rx.Select(rx.indices, rx.indices, in_constant_matrix).annotated(
                name=selector.label)
        case rx.SelectorNot():
            return rebuilt(selector, rx.SelectorNot(_constants_as_selects(selector.inner)))
        case rx.SelectorAnd():  # also SelectorOr
            return rebuilt(selector, type(selector)(_constants_as_selects(selector.fst),
                                                    _constants_as_selects(selector.snd)))
    return selector


def _with_sops(term, key_map, query_map):
    """The same selector tree reading replaced key and query SOps."""
    match term:
        case rx.Select():
            keys = key_map.get(term.keys.unique_id, term.keys)
            queries = query_map.get(term.queries.unique_id, term.queries)
            if keys is term.keys and queries is term.queries:
                return term
            return rx.Select(keys, queries, term.predicate).annotated(**term.annotations)
        case rx.SelectorNot():
            return rx.SelectorNot(_with_sops(term.inner, key_map, query_map))
        case rx.SelectorAnd():
            return type(term)(_with_sops(term.fst, key_map, query_map),
                              _with_sops(term.snd, key_map, query_map))
    return term


def _product_select(term, keys, queries, lowered: _Lowered):
    """One Select over tuple-valued key and query SOps, equivalent to `term`."""
    key_ids = [k.unique_id for k in keys]
    query_ids = [q.unique_id for q in queries]
    key_sops, key_wrapped = zip(*map(lowered.part, keys))
    query_sops, query_wrapped = zip(*map(lowered.part, queries))
    key_tuple = _tuple_sop(key_sops, f"{term.label}.keys")
    # Keys and queries read the same SOps (e.g. tokens and indices): one tuple SOp, so
    # one pair-lookup MLP, and the selector visibly compares a position with itself.
    same = query_wrapped == key_wrapped and len(query_sops) == len(key_sops) and \
        all(q is k for q, k in zip(query_sops, key_sops))
    query_tuple = key_tuple if same else _tuple_sop(query_sops, f"{term.label}.queries")

    def predicate(key, query):
        return evaluate_term(term, dict(zip(key_ids, _parts(key, key_wrapped))),
                             dict(zip(query_ids, _parts(query, query_wrapped))))

    # A part that is not wrapped must never be None: the block builder checks it
    # (annotation `product`, the labels of the parts) against the value sets.
    parts = tuple(dict.fromkeys(sop.label for sop in keys + queries))
    return rx.Select(key_tuple, query_tuple, predicate).annotated(name=term.label, product=parts)


def _tuple_sop(sops, label):
    """Nested pairs ((a, b), c) ... of several categorical SOps; one SOp is left alone."""
    result = sops[0]
    for sop in sops[1:]:
        result = rx.SequenceMap(lambda a, b: (a, b), result, sop).named(label)
    return result


def _parts(value, wrapped: tuple[bool, ...]) -> list:
    """The part values of a tuple, unwrapping 1-tuples (`()` is None)."""
    parts = _flatten(value, len(wrapped))
    return [(p[0] if p else None) if w else p for p, w in zip(parts, wrapped)]


def _flatten(value, count):
    parts = []
    for _ in range(count - 1):
        value, last = value
        parts.append(last)
    parts.append(value)
    return list(reversed(parts))
