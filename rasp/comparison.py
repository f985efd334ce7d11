"""The built-in Select predicates, called as `predicate(key, query)` as in Tracr."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any


class Comparison(enum.Enum):
    """Built-in predicates, called as `predicate(key, query)`."""

    EQ = "EQ"
    LT = "LT"
    LEQ = "LEQ"
    GT = "GT"
    GEQ = "GEQ"
    NEQ = "NEQ"
    TRUE = "TRUE"
    FALSE = "FALSE"

    def __call__(self, key: Any, query: Any) -> bool:
        return _COMPARISONS[self](key, query)

    @property
    def function(self) -> Callable[[Any, Any], bool]:
        """The plain function (key, query) -> bool, cheaper to call in bulk."""
        return _COMPARISONS[self]


_COMPARISONS: dict[Comparison, Callable[[Any, Any], bool]] = {
    Comparison.EQ: lambda key, query: key == query,
    Comparison.LT: lambda key, query: key < query,
    Comparison.LEQ: lambda key, query: key <= query,
    Comparison.GT: lambda key, query: key > query,
    Comparison.GEQ: lambda key, query: key >= query,
    Comparison.NEQ: lambda key, query: key != query,
    Comparison.TRUE: lambda key, query: True,
    Comparison.FALSE: lambda key, query: False,
}
