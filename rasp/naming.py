"""Readable default names: what an unnamed expression computes, and how a function shows.

`derived_label("tokens > 2")` gives `tokens_gt_2`, the label an unnamed expression built
by an operator (Python's `rasp.tokens > 2` or RASP text's `tokens > 2`) takes instead of
`map_<id>`; `function_name(f)` shows a function in listings: a Comparison by its name, a
lambda as `lambda at file.py:12`, never a bare `λ` or `call`.
"""

from __future__ import annotations

import enum
import keyword
import os
import re

# Longer derived labels stop being readable; such expressions keep `<kind>_<id>`.
MAX_DERIVED_LENGTH = 32

OPERATOR_WORDS = {"**": "pow", "//": "floordiv", "<=": "le", ">=": "ge", "==": "eq",
                  "!=": "ne", "+": "plus", "-": "minus", "*": "times", "/": "div",
                  "%": "mod", "^": "pow", "&": "and", "|": "or", "<": "lt", ">": "gt",
                  "~": "not"}
_OPERATOR = re.compile("|".join(re.escape(op) for op in OPERATOR_WORDS))
_NOT_NAME = re.compile(r"[^0-9A-Za-z_]+")
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")
# Words the RASP text syntax reserves; defined here, not with the parser, so that naming
# an expression never imports lark (rasp.syntax_scope re-exports it as KEYWORDS).
RASP_KEYWORDS = frozenset({"def", "return", "for", "in", "if", "else", "and", "or", "not",
                           "select", "load"})


def derived_label(formula: str) -> str | None:
    """`formula` (operands already written as labels or literals) as an identifier:
    operators become words, everything else not a name character an underscore.
    None when the result is empty, too long, or not a valid name."""
    if any(not _NOT_NAME.sub("", "".join(quoted)) for quoted in _QUOTED.findall(formula)):
        return None  # `tokens == "("` and `tokens == ")"` must not read alike
    text = _OPERATOR.sub(lambda m: f" {OPERATOR_WORDS[m.group()]} ", formula)
    name = _NOT_NAME.sub("_", text).strip("_")
    name = re.sub("_+", "_", name)
    if not name or len(name) > MAX_DERIVED_LENGTH or not name.isidentifier() or \
            keyword.iskeyword(name) or name in RASP_KEYWORDS:
        return None
    return name


def function_name(f) -> str:
    """How a function or predicate shows in a listing: its name, `lambda at file:line`
    for a lambda, or its type for a callable object without a name."""
    if isinstance(f, enum.Enum):  # a Comparison: EQ, LT, ...
        return f.name
    name = getattr(f, "__name__", None)
    if name == "<lambda>":
        code = getattr(f, "__code__", None)
        return "lambda" if code is None else \
            f"lambda at {os.path.basename(code.co_filename)}:{code.co_firstlineno}"
    return str(name) if name else type(f).__name__
