"""Proofs that a categorical Aggregate selects one value per query, from value sets.

Takes a program's graph and value sets and answers `ProgramFacts.unique(aggregate)`:
True only when proven (one value; at most one key; keys that differ between any two
selectable positions, such as indices or a rank). "Not proven" is always safe.
Where a key broken by position (a SequenceMap of a key and indices) is not proven
injective, `ProgramFacts.collision` finds two positions whose keys may be equal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from compiler.graph import ProgramGraph
from compiler.lowering import selector_terms, term_sops
from compiler.values import (MAX_PREDICATE_CALLS, ValueSet, at_most_one_selected,
                             keys_holding, predicate_holds)
from rasp import expr as rx
from rasp.errors import CompileError

MAX_RECORDS = 2_000  # records compared pairwise when proving a rank injective


@dataclasses.dataclass(frozen=True)
class Collision:
    """Two positions at which a key broken by position takes one value.

    Attributes:
      key: the SequenceMap of `base` and indices that breaks ties.
      base: the SOp whose ties it breaks.
      first, second: (value of `base`, position) at the two positions.
      result: the key both positions get.
      offset: the largest amount the key moves a value of `base` by (numbers only).
      gap: the smallest gap between distinct values of `base` (numbers only).
    """

    key: rx.SequenceMap
    base: rx.SOp
    first: tuple[Any, int]
    second: tuple[Any, int]
    result: Any
    offset: float | None = None
    gap: float | None = None

    def __str__(self):
        (a, i), (b, j) = self.first, self.second
        text = (f"its key {self.key.label!r} breaks ties of {self.base.label!r} by position, "
                f"but gives {a!r} at position {i} and {b!r} at position {j} one key, "
                f"{self.result!r}")
        if self.offset is not None and self.offset >= self.gap:
            text += (f": it moves keys by up to {self.offset:g}, not below the smallest gap "
                     f"between distinct values of {self.base.label!r} ({self.gap:g})")
        elif self.offset is not None:
            text += ": two positions get the same offset"
        return text

    def fix(self) -> str:
        """The condition under which the key would be injective, as advice."""
        advice = (f"make {self.key.label!r} move each value of {self.base.label!r} by an "
                  "offset that differs between positions and stays below the smallest gap "
                  "between distinct values")
        if self.gap is not None:
            advice += (f" ({self.gap:g}; with make_sort, a min_key of at most {self.gap:g}, "
                       "as offsets reach min_key·(N−1)/N)")
        return advice


@dataclasses.dataclass
class ProgramFacts:
    """Proofs about a program's SOps and selectors, from its value sets.

    Every proof enumerates value sets and gives up (returns False) past
    MAX_PREDICATE_CALLS calls: "not proven" is always a safe answer.
    """

    graph: ProgramGraph
    sets: dict[int, ValueSet]
    n: int
    causal: bool
    _injective: dict[int, bool] = dataclasses.field(default_factory=dict)

    def values(self, sop) -> tuple[Any, ...] | None:
        """The value set of a never-None SOp, or None if it may be None or is too large."""
        values = self.sets.get(sop.unique_id)
        if values is None or values.may_be_none or values.too_large:
            return None
        return values.values

    def _value_pairs(self, select: rx.Select) -> tuple[Any, Any]:
        """(key values, query values) of a Select, or (None, None) when either may be None,
        is too large, or their pairs exceed MAX_PREDICATE_CALLS."""
        keys, queries = self.values(select.keys), self.values(select.queries)
        if keys is None or queries is None or len(keys) * len(queries) > MAX_PREDICATE_CALLS:
            return None, None
        return keys, queries

    def exact(self, sop) -> bool:
        """Whether every value in the SOp's value set occurs on some input."""
        if isinstance(sop, (rx.TokensType, rx.IndicesType, rx.LengthType, rx.Full)):
            return True
        return isinstance(sop, rx.Map) and self.exact(sop.inner)

    # ------------------------------------------------------------ aggregates
    def unique(self, aggregate: rx.Aggregate) -> bool:
        """Whether every query of a categorical Aggregate selects one value (or none)."""
        sop = self.sets.get(aggregate.sop.unique_id)
        if sop is not None and not sop.too_large and len(sop.values) + sop.may_be_none <= 1:
            return True
        if at_most_one_selected(aggregate.selector, self.sets, self.n):
            return True
        terms = selector_terms(aggregate.selector)
        for term in terms:
            if not isinstance(term, rx.Select):
                continue
            if term.predicate is rx.Comparison.EQ and term.keys is aggregate.sop:
                return True  # every selected value equals the query's
            if self._functional(term) and self._injective_among(term.keys, terms):
                return True
        return False

    def _functional(self, select: rx.Select) -> bool:
        """Whether, for each query value, at most one key value satisfies the predicate."""
        if select.predicate is rx.Comparison.EQ:
            return True
        keys, queries = self._value_pairs(select)
        if keys is None:
            return False
        return all(keys_holding(select.predicate, keys, q) <= 1 for q in queries)

    def _injective_among(self, sop, terms) -> bool:
        """Whether two keys that all of `terms` select for one query differ in `sop`."""
        if self.injective(sop):
            return True
        if not isinstance(sop, rx.SelectorWidth) or self.causal:
            return False
        classes, order = self._split(selector_terms(sop.selector))
        return (bool(order) and self._ranks(order)
                and all(any(self._same_select(c, t) for t in terms) for c in classes))

    # ------------------------------------------------------------ injectivity
    def collision(self, sop) -> Collision | None:
        """Where `sop`, a SequenceMap of some SOp and indices, may give two positions one
        key: the first such pair in (position, value) order, or None when there is none
        (or the value sets are unknown or too large to search)."""
        if not isinstance(sop, rx.SequenceMap) or self.injective(sop):
            return None
        index_first = isinstance(sop.fst, rx.IndicesType)
        base = sop.snd if index_first else sop.fst
        if not index_first and not isinstance(sop.snd, rx.IndicesType):
            return None
        values = self.values(base)
        if values is None or len(values) * self.n > MAX_PREDICATE_CALLS:
            return None
        seen: dict[Any, tuple[Any, int]] = {}
        for position in range(self.n):
            for value in values:
                try:
                    key = sop.f(position, value) if index_first else sop.f(value, position)
                    earlier = seen.setdefault(key, (value, position))
                except Exception:  # noqa: BLE001  raising or unhashable: not a collision
                    continue
                if earlier[1] != position:
                    return Collision(sop, base, (value, position), earlier, key,
                                     *self._offset_and_gap(sop, base, values, index_first))
        return None

    def _offset_and_gap(self, sop, base, values, index_first) -> tuple:
        """(largest |key − value|, smallest gap between values) where both are numbers."""
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return None, None
        try:
            offsets = [abs((sop.f(i, v) if index_first else sop.f(v, i)) - v)
                       for v in values for i in range(self.n)]
        except Exception:  # noqa: BLE001  a key that is no number (or raises)
            return None, None
        ordered = sorted(set(values))
        gaps = [b - a for a, b in zip(ordered, ordered[1:])]
        return (max(offsets), min(gaps)) if gaps else (None, None)

    def injective(self, sop) -> bool:
        """Whether `sop` is never None and differs between any two positions."""
        if sop.unique_id not in self._injective:
            self._injective[sop.unique_id] = self._prove_injective(sop)
        return self._injective[sop.unique_id]

    def _prove_injective(self, sop) -> bool:
        match sop:
            case rx.IndicesType():
                return True
            case rx.Map():
                inner = self.values(sop.inner)
                return (inner is not None and self.injective(sop.inner)
                        and _disjoint([_results(sop.f, [(x,)]) for x in inner]))
            case rx.SequenceMap():
                fst, snd = self.values(sop.fst), self.values(sop.snd)
                if fst is None or snd is None or len(fst) * len(snd) > MAX_PREDICATE_CALLS:
                    return False
                if self.injective(sop.fst) and _disjoint(
                        [_results(sop.f, [(x, y) for y in snd]) for x in fst]):
                    return True
                return self.injective(sop.snd) and _disjoint(
                    [_results(sop.f, [(x, y) for x in fst]) for y in snd])
            case rx.SelectorWidth():
                classes, order = self._split(selector_terms(sop.selector))
                return not self.causal and not classes and bool(order) and self._ranks(order)
        return False

    def _split(self, terms) -> tuple[list, list]:
        """Width terms that only group keys (EQ of one SOp with itself, or a test of the
        key alone) and the rest, which must order the keys of a group."""
        classes, order = [], []
        for term in terms:
            grouping = isinstance(term, rx.Select) and (
                (term.predicate is rx.Comparison.EQ and term.keys is term.queries)
                or self._key_only(term))
            (classes if grouping else order).append(term)
        return classes, order

    def _key_only(self, select: rx.Select) -> bool:
        keys, queries = self._value_pairs(select)
        if keys is None:
            return False
        return all(len({predicate_holds(select.predicate, k, q) for q in queries}) == 1
                   for k in keys)

    def _ranks(self, order) -> bool:
        """Whether the conjunction of `order` terms is a strict total order on the
        positions (so the width it counts, its rank, differs between positions).

        Each leaf must compare an SOp with itself; a position's record is the tuple of
        the SOps read, one of them injective. The relation must be a strict total order
        on every record the value sets allow (a superset of those that occur).
        """
        sops = {}
        for term in order:
            if not _compares_with_itself(term):
                return False
            keys, _ = term_sops(term)
            sops.update((k.unique_id, k) for k in keys)
        value_sets = [self.values(s) for s in sops.values()]
        if any(v is None for v in value_sets) or not any(map(self.injective, sops.values())):
            return False
        if len(order) == 1 and isinstance(order[0], rx.Select) and \
                order[0].predicate in (rx.Comparison.LT, rx.Comparison.GT):
            return _totally_ordered(value_sets[0])  # < on distinct values of one SOp
        sizes = [len(v) for v in value_sets]
        if np.prod(sizes) > MAX_RECORDS or sum(n * n for n in sizes) > MAX_PREDICATE_CALLS:
            return False
        # Record r holds value coords[i][r] of the i-th SOp; tables are [query, key].
        coords = [c.ravel() for c in np.meshgrid(*map(np.arange, sizes), indexing="ij")]
        position = {sop_id: i for i, sop_id in enumerate(sops)}

        def table(term) -> np.ndarray:
            match term:
                case rx.Select():
                    i = position[term.keys.unique_id]
                    values = value_sets[i]
                    leaf = np.array([[predicate_holds(term.predicate, k, q) for k in values]
                                     for q in values], bool)
                    return leaf[coords[i][:, None], coords[i][None, :]]
                case rx.SelectorNot():
                    return ~table(term.inner)
                case rx.SelectorOr():
                    return table(term.fst) | table(term.snd)
                case rx.SelectorAnd():
                    return table(term.fst) & table(term.snd)
            raise CompileError(term, "unreachable: selector trees hold only these")

        relation = np.logical_and.reduce([table(t) for t in order])
        # A tournament (exactly one of r<s, s<r for r ≠ s; never r<r) is transitive
        # exactly when its scores (here: the width at each record) all differ.
        if (relation & relation.T).any() or not (relation | relation.T
                                                  | np.eye(len(relation), dtype=bool)).all():
            return False
        scores = relation.sum(axis=1)
        return len(np.unique(scores)) == len(scores)

    def _same_select(self, a, b) -> bool:
        """Whether two Selects compare the same SOps with the same truth table."""
        if not (isinstance(a, rx.Select) and isinstance(b, rx.Select)) or \
                a.keys is not b.keys or a.queries is not b.queries:
            return False
        if a.predicate is b.predicate:
            return True
        keys, queries = self._value_pairs(a)
        if keys is None:
            return False
        return all(predicate_holds(a.predicate, k, q) == predicate_holds(b.predicate, k, q)
                   for k in keys for q in queries)


def _compares_with_itself(selector) -> bool:
    """Whether every Select in a selector tree reads one SOp as both keys and queries."""
    match selector:
        case rx.Select():
            return selector.keys is selector.queries
        case rx.SelectorNot():
            return _compares_with_itself(selector.inner)
        case rx.SelectorAnd():  # also SelectorOr
            return _compares_with_itself(selector.fst) and _compares_with_itself(selector.snd)
    return False


def _totally_ordered(values) -> bool:
    """Whether `<` is a strict total order on `values` (one type, sortable, no NaN)."""
    if len({type(v) for v in values}) > 1 or any(v != v for v in values):
        return False
    try:
        ordered = sorted(values)
    except TypeError:
        return False
    return all(a < b for a, b in zip(ordered, ordered[1:]))


def _results(f, argument_tuples) -> set | None:
    """f's values on the arguments (those it raises on are outside the domain), or None
    if one is None or unhashable."""
    results = set()
    for args in argument_tuples:
        try:
            value = f(*args)
        except Exception:  # noqa: BLE001
            continue
        try:
            if value is None:
                return None
            results.add(value)
        except TypeError:
            return None
    return results


def _disjoint(groups: list[set | None]) -> bool:
    seen: set = set()
    for group in groups:
        if group is None or seen & group:
            return False
        seen |= group
    return True
