"""Parse the RASP paper's language into RASP expressions.

`parse(source)` gives every top-level name bound to an SOp or a selector; the
grammar is `rasp/rasp.lark`, the meaning `rasp.syntax_build`. Faults of any
kind raise `RaspSyntaxError` with the file, line, column and a caret.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from rasp.errors import RaspSyntaxError
from rasp.expr import IndicesType, LengthType, RASPExpr, TokensType

_PRIMITIVES = (TokensType, IndicesType, LengthType)

# Readable names of the grammar's terminals, for "expected ..." in messages.
_TERMINAL_NAMES = {"NAME": "a name", "INT": "a number", "FLOAT": "a number",
                   "STRING": "a string", "$END": "the end of the input"}


class Definitions(dict):
    """Name → SOp or selector, as bound by a RASP source; also records the input type.

    Attributes:
      input_type: what the program reads its tokens as ("str", "int", "float" or
        "bool"; "str" unless it reads tokens_int, tokens_float or tokens_bool).
    """

    input_type: str = "str"


@functools.cache
def _parser():
    import lark

    grammar = resources.files("rasp").joinpath("rasp.lark").read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True)


def parse_tree(source: str, filename: str = "<rasp>"):
    """The lark tree of `source`, or a RaspSyntaxError at the first fault."""
    import lark

    try:
        return _parser().parse(source)
    except lark.exceptions.UnexpectedInput as error:
        raise _syntax_error(error, source, filename) from None


def parse(source: str, filename: str = "<rasp>", search_path=()) -> dict[str, RASPExpr]:
    """Every top-level name `source` binds to an SOp or a selector, by name.

    `load "lib";` reads lib.rasp beside `filename` (the current directory for text),
    and only files under that directory or under a directory in `search_path`.

    Raises:
      RaspSyntaxError: for a syntax error, an unknown name, a wrong number of
        arguments, a type error, an unsupported construct, a load outside those
        directories or in a cycle, or a value beyond the limits of
        `rasp.syntax_ops` (MAX_INT, MAX_ELEMENTS).
    """
    from rasp.syntax_build import Interpreter

    tree = parse_tree(source, filename)
    interpreter = Interpreter(source, filename, search_path=search_path)
    interpreter.run(tree.children)
    found = Definitions()
    for name in dict.fromkeys(interpreter.assigned):
        value = interpreter.top.names[name]
        if isinstance(value, RASPExpr) and not _rebinds_itself(name, value):
            found[name] = value
    found.input_type = interpreter.input_type or "str"
    return found


def _rebinds_itself(name: str, value: RASPExpr) -> bool:
    """`tokens = tokens_int;` names no new s-op; `x = tokens;` defines x (an alias)."""
    return isinstance(value, _PRIMITIVES) and name == value.label


def parse_file(path, search_path=()) -> dict[str, RASPExpr]:
    """`parse` of a .rasp file (errors name the file); its loads read under its
    directory and `search_path`."""
    path = Path(path)
    try:
        source = path.read_text()
    except OSError as error:
        raise RaspSyntaxError(f"cannot read {path}: {error.strerror}", str(path)) from None
    return parse(source, str(path), search_path)


def _syntax_error(error, source: str, filename: str) -> RaspSyntaxError:
    import lark

    lines = source.splitlines()
    line, column = error.line, error.column
    if isinstance(error, lark.exceptions.UnexpectedEOF) or line is None or line < 1:
        line = max(len(lines), 1)
        column = len(lines[-1]) + 1 if lines else 1
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        found = f"unexpected character {source[error.pos_in_stream]!r}"
        expected = _expected(error.allowed)
    elif isinstance(error, lark.exceptions.UnexpectedToken) and error.token.type != "$END":
        found = f"unexpected {error.token.value!r}"
        expected = _expected(error.expected)
    else:
        found = "unexpected end of input"
        expected = _expected(getattr(error, "expected", ()))
    return RaspSyntaxError(f"syntax error: {found}", filename, line, column, text, expected)


def _expected(terminals) -> str | None:
    names = {t.name: t for t in _parser().terminals}
    shown = set()
    for terminal in terminals or ():
        if terminal in _TERMINAL_NAMES:
            shown.add(_TERMINAL_NAMES[terminal])
        elif terminal in names and names[terminal].pattern.type == "str":
            shown.add(repr(names[terminal].pattern.value))
    if not shown:
        return None
    ordered = sorted(shown, key=lambda s: (not s[0].isalpha(), s))
    return ", ".join(ordered[:-1]) + (" or " if len(ordered) > 1 else "") + ordered[-1]
