"""The program's domain: where the reference evaluator gives a value at all.

Takes a RASP program with its vocabulary and length bound and gives a `Domain`,
the list of conditions under which evaluation raises and a compiled model's output
means nothing: a Map or SequenceMap whose function raises on a value it can
receive, and a categorical Aggregate not proven to select one value per query.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from compiler.graph import ProgramGraph, extract_graph
from compiler.lowering import lower_program, selector_terms, term_sops
from compiler.selection import describe
from compiler.values import (MAX_PREDICATE_CALLS, Failure, ValueSet, at_most_one_selected,
                             infer_value_sets, predicate_holds)
import rasp
from rasp import expr as rx
from rasp.errors import CompileError, EvaluationError

RAISES = "raises"          # a Map or SequenceMap whose function raises
AMBIGUOUS = "ambiguous"    # a categorical Aggregate that may select differing values
LENGTH = "length"          # a constant (check_length=True) that fixes the input length
MAX_EXAMPLES = 3
MAX_RECORDS = 2_000  # records compared pairwise when proving a rank injective


@dataclasses.dataclass(frozen=True)
class DomainCondition:
    """One way an input can fall outside the program's domain.

    Attributes:
      label: the expression that fails on such inputs.
      kind: RAISES, AMBIGUOUS or LENGTH.
      detail: the exception raised (RAISES), the selector, described (AMBIGUOUS), or the
        one input length the constant allows (LENGTH).
      examples: input values of the function on which it raised (RAISES only).
      certain: True when some input of allowed length is known to reach it (a function
        raising on a value its input surely takes); False when it is possible, not proven.
    """

    label: str
    kind: str
    detail: str
    examples: tuple[Any, ...] = ()
    certain: bool = False

    def __str__(self):
        if self.kind == RAISES:
            shown = ", ".join(map(repr, self.examples))
            return f"{self.label!r} raises {self.detail} on {shown}"
        if self.kind == LENGTH:
            return f"{self.label!r} is a constant that only inputs of length {self.detail} fit"
        return (f"{self.label!r} is a categorical Aggregate whose selector {self.detail} may "
                "select several keys with differing values")

    @property
    def reason(self) -> str:
        """The condition in a few words, for counts by reason."""
        verb = {RAISES: "raises", LENGTH: "fixes the length"}.get(self.kind,
                                                                  "selects differing values")
        return f"{self.label!r} {verb}"


@dataclasses.dataclass(frozen=True)
class Domain:
    """Every recorded condition; the domain is total when there are none.

    `unknown` says why the analysis could not run (the domain is then not known).
    """

    conditions: tuple[DomainCondition, ...] = ()
    unknown: str | None = None

    @property
    def total(self) -> bool:
        """True when every input of allowed length and vocabulary has a value."""
        return not self.conditions and self.unknown is None

    def lines(self) -> list[str]:
        """One sentence per condition."""
        if self.unknown:
            return [f"the program's domain could not be analysed: {self.unknown}"]
        return [str(c) for c in self.conditions]

    def message(self) -> str:
        """The text of the CompileWarning for a domain that is not total."""
        return ("the program is partial: on some inputs the reference evaluator raises and "
                "the compiled model's output means nothing (model.apply(tokens, check=True) "
                "tells such inputs apart):\n" + "\n".join(f"  - {l}" for l in self.lines()))

    def hint(self) -> str:
        """What to change so that the domain becomes total."""
        kinds = {c.kind for c in self.conditions}
        fixes = (["make each function accept every value its input can take (guard it, "
                  "or map the bad values to a value of their own)"] * (RAISES in kinds)
                 + ["make each selector pick one key per query or keys of one value (e.g. "
                    "break ties by position, as make_sort does)"] * (AMBIGUOUS in kinds))
        return "; ".join(fixes or ["give its SOps smaller value sets"]) + \
            "; or compile without strict=True and check inputs with apply(tokens, check=True)"

    def reason_of(self, error: EvaluationError) -> str:
        """Which condition an evaluator error on some input falls under, in a few words."""
        text = str(error)
        for condition in self.conditions:
            if text.startswith(f"{condition.label}:"):
                return condition.reason
        label, _, rest = text.partition(":")
        if "constant has length" in rest:
            return f"{label!r} fixes the length"
        if "differing values" in rest:
            return f"{label!r} selects differing values"
        return f"{label!r} raises" if "raised" in rest else f"{label!r} fails"


def infer_domain(program: rx.SOp, lowered: rx.SOp, vocab, max_seq_len: int,
                 causal: bool) -> Domain:
    """The domain of `program`, analysed on its lowered form `lowered` (same values at
    every position, same labels, and value sets cheap to enumerate)."""
    graph = extract_graph(lowered)
    failures: list[Failure] = []
    try:
        sets = infer_value_sets(graph, vocab, max_seq_len, failures)
    except CompileError as error:
        return Domain(unknown=error.reason)
    facts = _Facts(graph, sets, max_seq_len, causal)
    written = rasp.topological_order(program)
    # Lowering rebuilds selectors; a condition names the selector as written.
    selectors = {e.label: e.selector for e in written if isinstance(e, rx.Aggregate)}
    conditions = [_raising(expr, group, facts) for expr, group in _by_expr(failures)]
    conditions += [c for node in graph.order
                   if (c := _ambiguity(graph.expr(node), facts, selectors)) is not None]
    conditions += [DomainCondition(e.label, LENGTH, str(len(e.value)), certain=True)
                   for e in written  # lowering drops ConstantSelector
                   if isinstance(e, (rx.ConstantSOp, rx.ConstantSelector)) and e.check_length
                   and not max_seq_len == len(e.value) == 1]
    return Domain(tuple(conditions))


def program_domain(program: rx.SOp, vocab, max_seq_len: int, causal: bool = False) -> Domain:
    """The domain of `program` on its own, without compiling it."""
    return infer_domain(program, lower_program(program), vocab, max_seq_len, causal)


def _by_expr(failures: list[Failure]):
    groups: dict[int, list[Failure]] = {}
    for failure in failures:
        groups.setdefault(failure.expr.unique_id, []).append(failure)
    return [(group[0].expr, group) for group in groups.values()]


def _raising(expr, failures: list[Failure], facts: _Facts) -> DomainCondition:
    error = failures[0].error
    examples = tuple(f.args[0] if len(f.args) == 1 else f.args for f in failures[:MAX_EXAMPLES])
    certain = isinstance(expr, rx.Map) and facts.exact(expr.inner)
    return DomainCondition(expr.label, RAISES, f"{type(error).__name__}: {error}", examples,
                           certain)


def _ambiguity(expr, facts: _Facts, selectors: dict) -> DomainCondition | None:
    if not isinstance(expr, rx.Aggregate) or rx.is_numerical(expr) or facts.unique(expr):
        return None
    selector = selectors.get(expr.label, expr.selector)
    return DomainCondition(expr.label, AMBIGUOUS, f"{selector.label!r} = {describe(selector)}")


@dataclasses.dataclass
class _Facts:
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
        keys, queries = self.values(select.keys), self.values(select.queries)
        if keys is None or queries is None or len(keys) * len(queries) > MAX_PREDICATE_CALLS:
            return False
        return all(sum(predicate_holds(select.predicate, k, q) for k in keys) <= 1
                   for q in queries)

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
        keys, queries = self.values(select.keys), self.values(select.queries)
        if keys is None or queries is None or len(keys) * len(queries) > MAX_PREDICATE_CALLS:
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
        keys, queries = self.values(a.keys), self.values(a.queries)
        if keys is None or queries is None or len(keys) * len(queries) > MAX_PREDICATE_CALLS:
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
