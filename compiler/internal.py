"""Expression types that only the compiler creates (never the user or the evaluator)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasp import expr as rx


class WidthWith(rx.SOp):
    """f(SelectorWidth(selector), side) computed by the width's own MLP.

    The MLP discretises the width once per value of the categorical `side`
    (craft.numerical.gated_discretising_mlp), so a SequenceMap of a width and an
    embedded SOp costs no extra layer.
    """

    default_name = "width_with"

    def __init__(self, selector: rx.Selector, side: rx.SOp, f: Callable[[int, Any], Any]):
        super().__init__()
        object.__setattr__(self, "selector", selector)
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "f", f)

    @property
    def children(self):
        return (self.selector, self.side)
