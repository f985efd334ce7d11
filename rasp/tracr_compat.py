"""The rest of Tracr's `rasp` module: type aliases, protocols, selector helpers, evaluators.

Nothing here is needed to write or compile a program; it is here so that code
written against `from tracr.rasp import rasp` (type hints such as
`Sequence[rasp.Value]`, `rasp.selector_and(...)`, `rasp.DefaultRASPEvaluator()`)
runs after `import rasp`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, Union

from rasp import expr as rx
from rasp.evaluate import evaluate

Value = Union[None, int, float, str, bool]  # a token or an SOp's value at one position
NumericValue = Union[int, float]
SelectorValue = list[list[bool]]  # a selector's value, indexed [query][key]
VT = TypeVar("VT", bound=Value)
T = TypeVar("T")
RASPExprT = TypeVar("RASPExprT", bound=rx.RASPExpr)
SOpT = TypeVar("SOpT", bound=rx.SOp)


class Predicate(Protocol):
    """A Select predicate: called as `predicate(key, query)`."""

    def __call__(self, key: Value, query: Value) -> bool: ...


def sop_not(sop: rx.SOp) -> rx.SOp:
    """The elementwise `not` of `sop` (the same as `~sop`)."""
    return ~sop


# Tracr's helpers may merge two Selects over the same keys and queries into one
# Select (`simplify`). Here the composite is always kept: it compiles to the
# same single head, evaluates the same, and keeps each predicate readable in
# the ground truth. `simplify` is accepted so that Tracr calls run unchanged.
def selector_and(fst: rx.Selector, snd: rx.Selector, simplify: bool = True) -> rx.Selector:
    """Selected where both select (`fst & snd`)."""
    return rx.SelectorAnd(fst, snd)


def selector_or(fst: rx.Selector, snd: rx.Selector, simplify: bool = True) -> rx.Selector:
    """Selected where either selects (`fst | snd`)."""
    return rx.SelectorOr(fst, snd)


def selector_not(inner: rx.Selector, simplify: bool = True) -> rx.Selector:
    """Selected where `inner` does not select (`~inner`)."""
    return rx.SelectorNot(inner)


class RASPEvaluator(abc.ABC):
    """Something that evaluates RASP expressions (Tracr's evaluator interface)."""

    @abc.abstractmethod
    def evaluate(self, expr: rx.RASPExpr, xs: Sequence[Value]) -> Any:
        """The value of `expr` on the input `xs`: a list, or a selection matrix."""


class DefaultRASPEvaluator(RASPEvaluator):
    """The reference evaluator, `rasp.evaluate`, as an object."""

    def __init__(self, causal: bool = False):
        self.causal = causal

    def evaluate(self, expr: rx.RASPExpr, xs: Sequence[Value]) -> Any:
        """`rasp.evaluate(expr, xs, causal=self.causal)`."""
        return evaluate(expr, xs, causal=self.causal)
