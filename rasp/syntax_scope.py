"""What a RASP program can name: scopes, functions and the built-in names.

`base_scope()` gives the primitives (tokens and its typed forms, indices, length,
True, False, full_s); `BUILTINS` the built-in functions with their arities. A
`Function` is a `def`: its parameters, body and the scope it closes over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from lark import Tree

from rasp import expr as rx
from rasp.naming import RASP_KEYWORDS
from rasp.syntax_attention import Operations
from rasp.syntax_ops import MAX_ELEMENTS, Fault, type_name

INPUT_TYPES = {"tokens_str": "str", "tokens_int": "int", "tokens_float": "float",
               "tokens_bool": "bool"}
MAX_CALL_DEPTH = 100
KEYWORDS = RASP_KEYWORDS


@dataclasses.dataclass(frozen=True)
class InputTokens:
    """What `tokens_str`, `tokens_int`, ... name: the input, read as one type."""

    rasp_type: str


@dataclasses.dataclass
class Scope:
    """Names bound in one scope; lookups fall back to the enclosing scope."""

    names: dict[str, Any]
    parent: Scope | None = None

    def lookup(self, name: str):
        """The value bound to `name` here or in an enclosing scope (KeyError if none)."""
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        raise KeyError(name)

    def visible(self) -> list[str]:
        """Every name visible from this scope (for did-you-mean hints)."""
        scope, found = self, []
        while scope is not None:
            found += list(scope.names)
            scope = scope.parent
        return found


@dataclasses.dataclass
class Function:
    """A RASP `def`: its parameters, body and the scope it closes over, and the
    source it was written in (for the location of faults in its body)."""

    name: str
    parameters: list[str]
    body: list[Tree]
    returns: Tree
    scope: Scope
    filename: str = "<rasp>"
    lines: list[str] = dataclasses.field(default_factory=list, repr=False)


def base_scope() -> Scope:
    """The names every RASP program starts with."""
    names: dict[str, Any] = {name: InputTokens(kind) for name, kind in INPUT_TYPES.items()}
    names.update({"tokens": InputTokens("str"), "indices": rx.indices, "length": rx.length,
                  "True": True, "False": False, "None": None,  # None: our extension
                  "full_s": Operations.everything().named("full_s")})
    return Scope(names)



def _builtin_aggregate(self, selector, values, default=0):
    return self.aggregate(selector, values, default)


def _builtin_range(self, *bounds):
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
        raise Fault("range takes ints", "ints")
    if len(bounds) == 3 and bounds[2] == 0:
        raise Fault("range's step cannot be 0", "a non-zero step")
    items = range(*bounds)
    count = max(0, (items.stop - items.start + items.step - (1 if items.step > 0 else -1))
                // items.step)  # len() overflows past sys.maxsize
    if count > MAX_ELEMENTS:
        raise Fault(f"range({', '.join(map(str, bounds))}) has {count:,} elements, more than "
                    f"the limit of {MAX_ELEMENTS:,}", f"at most {MAX_ELEMENTS:,} elements")
    return list(items)


def _builtin_len(self, items):
    if not isinstance(items, (list, dict, str)):
        raise Fault(f"len takes a list, got {type_name(items)}", "a list")
    return len(items)


def _builtin_zip(self, *lists):
    if not all(isinstance(items, list) for items in lists):
        raise Fault("zip takes lists", "lists")
    if len({len(items) for items in lists}) > 1:
        raise Fault("zip takes lists of one length", "lists of equal length")
    return [list(items) for items in zip(*lists)]


def _builtin_width(self, selector):
    if not isinstance(selector, rx.Selector):
        raise Fault(f"selector_width takes a selector, got {type_name(selector)}", "a selector")
    return rx.SelectorWidth(selector)


BUILTINS: dict[str, tuple[Callable, tuple[int, ...]]] = {
    "aggregate": (_builtin_aggregate, (2, 3)),
    "selector_width": (_builtin_width, (1,)),
    "round": (lambda self, v: self.round(v), (1,)),
    "indicator": (lambda self, v: self.indicator(v), (1,)),
    "numerical": (lambda self, v: self.numerical(v), (1,)),
    "categorical": (lambda self, v: self.categorical(v), (1,)),
    "range": (_builtin_range, (1, 2, 3)),
    "len": (_builtin_len, (1,)),
    "zip": (_builtin_zip, tuple(range(1, 10))),
}


def unshadowed(scope: Scope, name: str) -> bool:
    """Whether `name` still means the built-in (the program has not bound it)."""
    try:
        scope.lookup(name)
    except KeyError:
        return True
    return False


def arity_text(arities) -> str:
    """'2 or 3 arguments', for messages."""
    if len(arities) > 3:
        return "one or more arguments"
    return " or ".join(map(str, arities)) + " argument" + ("s" if arities[-1] > 1 else "")
