"""The program's domain: where the reference evaluator gives a value at all.

Takes a RASP program with its vocabulary and length bound and gives a `Domain`,
the list of conditions under which evaluation raises and a compiled model's output
means nothing: a Map or SequenceMap whose function raises on a value it can
receive, and a categorical Aggregate not proven to select one value per query.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from compiler.graph import extract_graph
from compiler.lowering import lower_program
from compiler.selection import describe
from compiler.uniqueness import ProgramFacts
from compiler.values import Failure, infer_value_sets
import rasp
from rasp import expr as rx
from rasp.errors import CompileError, EvaluationError, ValueRangeError

RAISES = "raises"          # a Map or SequenceMap whose function raises
AMBIGUOUS = "ambiguous"    # a categorical Aggregate that may select differing values
LENGTH = "length"          # a constant (check_length=True) that fixes the input length
MAX_EXAMPLES = 3


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
                 causal: bool, value_sets: dict | None = None) -> Domain:
    """The domain of `program`, analysed on its lowered form `lowered` (same values at
    every position, same labels, and value sets cheap to enumerate).

    `value_sets`, if given, receives the lowered program's value sets (see
    compiler.values.infer_value_sets' `known`), so that the compile reuses them."""
    graph = extract_graph(lowered)
    failures: list[Failure] = []
    try:
        sets = infer_value_sets(graph, vocab, max_seq_len, failures, known=value_sets)
    except ValueRangeError:
        raise  # a value no model can hold: no compile, whatever the domain
    except CompileError as error:
        return Domain(unknown=error.reason)
    facts = ProgramFacts(graph, sets, max_seq_len, causal)
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


def _raising(expr, failures: list[Failure], facts: ProgramFacts) -> DomainCondition:
    error = failures[0].error
    examples = tuple(f.args[0] if len(f.args) == 1 else f.args for f in failures[:MAX_EXAMPLES])
    certain = isinstance(expr, rx.Map) and facts.exact(expr.inner)
    return DomainCondition(expr.label, RAISES, f"{type(error).__name__}: {error}", examples,
                           certain)


def _ambiguity(expr, facts: ProgramFacts, selectors: dict) -> DomainCondition | None:
    if not isinstance(expr, rx.Aggregate) or rx.is_numerical(expr) or facts.unique(expr):
        return None
    selector = selectors.get(expr.label, expr.selector)
    return DomainCondition(expr.label, AMBIGUOUS, f"{selector.label!r} = {describe(selector)}")
