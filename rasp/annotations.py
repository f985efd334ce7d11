"""Annotations of RASP expressions: encodings, and Tracr's default annotators.

`Annotations` is the read-only mapping `expr.annotations` returns: the keys an
expression was annotated with, then `DEFAULT_ANNOTATORS[key](expr)` for any
other key (Tracr's hook for computed defaults; `encoding` and `name` built in).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Encoding(enum.Enum):
    """How an SOp's value is laid out in the residual stream."""

    CATEGORICAL = "categorical"
    NUMERICAL = "numerical"


class Annotator(Protocol):
    """Computes a default annotation of an expression (a DEFAULT_ANNOTATORS value)."""

    def __call__(self, expr: Any) -> Any: ...


DEFAULT_ANNOTATORS: dict[str, Annotator] = {}
_MISSING = object()  # what `Annotations._default` gives for a key without a value


class Annotations(Mapping):
    """An expression's annotations: the given ones, then DEFAULT_ANNOTATORS; read-only."""

    def __init__(self, expr: Any, given: Mapping[str, Any]):
        self._expr, self._given = expr, given

    def __getitem__(self, key: str) -> Any:
        if key in self._given:
            return self._given[key]
        if key in DEFAULT_ANNOTATORS:
            return DEFAULT_ANNOTATORS[key](self._expr)
        raise KeyError(f"{self._expr.label} has no annotation {key!r}")

    # get and `in` as Mapping defines them, without raising a KeyError for every
    # missing key (the compiler asks for optional annotations many times per compile).
    def get(self, key: str, default: Any = None) -> Any:
        if key in self._given:
            return self._given[key]
        return self._default(key, default)

    def __contains__(self, key) -> bool:
        return key in self._given or self._default(key, _MISSING) is not _MISSING

    def _default(self, key: str, missing: Any) -> Any:
        if key not in DEFAULT_ANNOTATORS:
            return missing
        try:
            return DEFAULT_ANNOTATORS[key](self._expr)
        except KeyError:
            return missing

    def __iter__(self):
        return iter(self._given)

    def __len__(self):
        return len(self._given)


def default_encoding(expr: Any) -> Encoding:
    """The encoding of an SOp not annotated with one: categorical, as in Tracr."""
    from rasp.expr import SOp  # expr imports this module
    if not isinstance(expr, SOp):
        raise TypeError(f"{expr.label} is not an SOp, so it has no encoding")
    return Encoding.CATEGORICAL


def default_name(expr: Any) -> str:
    """The name of an expression not given one: its kind and id, e.g. `map_7`.

    Tracr's default name is the kind alone and its label appends the id; here
    name and label are one unique string.
    """
    return expr.label


DEFAULT_ANNOTATORS.update(encoding=default_encoding, name=default_name)
