"""A compiled program's domain, as the model carries it: the conditions under which
the reference evaluator raises, so the model's output means nothing there.

compiler.domain finds the conditions; this module only holds and describes them (a
loaded model has them from its file).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rasp.errors import EvaluationError

RAISES = "raises"          # a Map or SequenceMap whose function raises
AMBIGUOUS = "ambiguous"    # a categorical Aggregate that may select differing values
LENGTH = "length"          # a constant (check_length=True) that fixes the input length
WITNESS = "; where "  # separates an AMBIGUOUS condition's selector from a colliding pair


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
      fix: what to change so that the condition goes away, where known (not saved).
    """

    label: str
    kind: str
    detail: str
    examples: tuple[Any, ...] = ()
    certain: bool = False
    fix: str = dataclasses.field(default="", compare=False)

    def __str__(self):
        if self.kind == RAISES:
            shown = ", ".join(map(repr, self.examples))
            return f"{self.label!r} raises {self.detail} on {shown}"
        if self.kind == LENGTH:
            return f"{self.label!r} is a constant that only inputs of length {self.detail} fit"
        selector, found, collision = self.detail.partition(WITNESS)
        return (f"{self.label!r} is a categorical Aggregate whose selector {selector} may "
                "select several keys with differing values" + f": {collision}" * bool(found))

    @property
    def reason(self) -> str:
        """The condition in a few words, for counts by reason."""
        verb = {RAISES: "raises", LENGTH: "fixes the length"}.get(self.kind,
                                                                  "selects differing values")
        return f"{self.label!r} {verb}"


@dataclasses.dataclass(frozen=True)
class Domain:
    """Every recorded condition; the domain is total when there are none.

    `unknown` says why the analysis could not run (the domain is then not known);
    `empty`, why no input of allowed length is valid, where that is proven.
    """

    conditions: tuple[DomainCondition, ...] = ()
    unknown: str | None = None
    empty: tuple[str, ...] = ()

    @property
    def total(self) -> bool:
        """True when every input of allowed length and vocabulary has a value."""
        return not self.conditions and self.unknown is None

    def lines(self, fixes: bool = False) -> list[str]:
        """One sentence per condition (with `fixes`, an ambiguity's known fix too)."""
        if self.unknown:
            return [f"the program's domain could not be analysed: {self.unknown}"]
        return [f"{c}" + f" (to fix: {c.fix})" * (fixes and bool(c.fix) and c.kind == AMBIGUOUS)
                for c in self.conditions]

    def message(self) -> str:
        """The text of the CompileWarning for a domain that is not total."""
        return ("the program is partial: on some inputs the reference evaluator raises and "
                "the compiled model's output means nothing (model.apply(tokens, check=True) "
                "tells such inputs apart):\n" + "\n".join(f"  - {l}" for l in self.lines(True)))

    def hint(self) -> str:
        """What to change so that the domain becomes total."""
        kinds = {c.kind for c in self.conditions if not c.fix}
        fixes = (["make each function accept every value its input can take (guard it, "
                  "or map the bad values to a value of their own)"] * (RAISES in kinds)
                 + ["make each selector pick one key per query or keys of one value (e.g. "
                    "break ties by position, as make_sort does)"] * (AMBIGUOUS in kinds)
                 + list(dict.fromkeys(c.fix for c in self.conditions if c.fix)))
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
