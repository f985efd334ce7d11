"""The Python code in README.md and docs/*.md runs, and shows what it prints.

The rule, for anyone writing docs:

- Every ```python block of a file runs, in order, in one namespace per file, so a
  file's blocks must be self-contained (their own imports) and fast (seconds).
  Shell sessions and output go in ```sh or ```text blocks, which are not run.
  There are no `>>>` prompts: a block is plain Python.
- `expr  # value`: an expression statement with a comment on its (last) line
  asserts `repr(expr) == value`. If the whole comment is not the repr, the part
  before its first ": " must be, so an explanation may follow:
  `out.shape  # (5, 28): the residual after the last sublayer`.
  Every expression statement with a trailing comment is such an assertion.
- An expression statement followed directly by comment lines (no blank line)
  asserts its repr too: the lines, each stripped of "#" and surrounding spaces,
  joined by single spaces, so a long repr may wrap after ", ".
- `print(...)` or a `for` loop followed directly by comment lines asserts what
  it prints: one comment line per output line ("# " removed; trailing spaces
  ignored). `print(x)  # value` works too, for one line of output.
- Comments after any other statement (assignments, imports, ...) are prose.
"""

from __future__ import annotations

import ast
import contextlib
import io
import linecache
import re
import sys
import textwrap
import tokenize
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^[ \t]*```[ \t]*$",
                   re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the first code line, dedented code) of every ```python block."""
    return [(text.count("\n", 0, m.start("code")) + 1, textwrap.dedent(m.group("code")))
            for m in FENCE.finditer(text)]


def comments(code: str) -> dict[int, tuple[int, str]]:
    """Line number -> (column, text after "#") of every comment in `code`."""
    return {token.start[0]: (token.start[1], token.string[1:].strip())
            for token in tokenize.generate_tokens(io.StringIO(code).readline)
            if token.type == tokenize.COMMENT}


def expectations(code: str, notes: dict, statement: ast.stmt) -> tuple[str | None, list[str]]:
    """(the comment on the statement's last line, the comment lines right after it)."""
    column, text = notes.get(statement.end_lineno, (-1, None))
    trailing = text if column >= statement.end_col_offset else None
    following = []
    for line in code.splitlines()[statement.end_lineno:]:
        if not line.strip().startswith("#"):
            break
        following.append(line.strip()[1:])
    return trailing, following


def is_print(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name) and statement.value.func.id == "print")


def repr_matches(value, comment: str) -> bool:
    shown = repr(value)
    return shown == comment or (": " in comment and shown == comment.split(": ", 1)[0])


def run_statement(statement: ast.stmt, code: str, notes: dict, namespace: dict,
                  where: str) -> None:
    """Run one top-level statement and check what its comments say it gives."""
    trailing, following = expectations(code, notes, statement)
    # The block's source, for tools that read their caller's code (nnsight's trace).
    linecache.cache[where] = (len(code), None, code.splitlines(True), where)
    prints = is_print(statement) or isinstance(statement, ast.For)
    if isinstance(statement, ast.Expr) and not prints:
        value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
        if trailing is not None:
            assert repr_matches(value, trailing), f"{where}: {value!r} != {trailing}"
        elif following:
            expected = " ".join(line.strip() for line in following)
            assert repr(value) == expected, f"{where}: {value!r} != {expected}"
        return
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(ast.Module([statement], []), where, "exec"), namespace)
    if prints and (trailing is not None or following):
        expected = [trailing] if trailing is not None else [
            line[1:] if line.startswith(" ") else line for line in following]
        printed = [line.rstrip() for line in out.getvalue().splitlines()]
        expected = [line.rstrip() for line in expected]
        assert printed == expected, f"{where}: printed\n{out.getvalue()}expected\n" + \
            "\n".join(expected)


def run_blocks(blocks: list[tuple[int, str]], name: str) -> None:
    """Run (first line, code) blocks in order in one fresh module named after `name`."""
    module = types.ModuleType("docs_" + re.sub(r"\W", "_", name.lower()))
    sys.modules[module.__name__] = module  # a real module, so dataclasses and pickle work
    try:
        for first_line, code in blocks:
            notes = comments(code)
            for statement in ast.parse(code, f"{name}, block at line {first_line}").body:
                where = f"{name}:{first_line + statement.lineno - 1}"
                run_statement(statement, code, notes, module.__dict__, where)
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run_and_show_their_output(path):
    run_blocks(python_blocks(path.read_text(encoding="utf-8")), path.name)


def test_the_rules_catch_wrong_values_and_output():
    """The checker itself: a wrong value or a wrong printed line fails."""
    def check(code: str) -> None:
        run_blocks([(1, code)], "example")

    check("import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int = 1\n"
          "P()  # P(x=1)\n")
    check("x = [1, 2]\nx  # [1, 2]\nlen(x)  # 2: its length\nx\n# [1,\n#  2]\n"
          "for v in x:\n    print(v, '')\n# 1\n# 2\nprint('hi')  # hi\ny = 3\n# prose\n")
    for wrong in ("x = 1\nx  # 2\n", "x = 1\nx  # 2: no\n", "x = 1\nx\n# 2\n",
                  "for v in [1]:\n    print(v)\n# 2\n", "print(1)  # 2\n",
                  "print(1)\nprint(2)\n# 1\n"):
        with pytest.raises(AssertionError):
            check(wrong)
    assert python_blocks("a\n```python\nx = 1\n```\n  ```python\n  y = 2\n  ```\n") == [
        (3, "x = 1\n"), (6, "y = 2\n")]


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_relative_links_point_at_files_in_the_clone(path):
    """Every relative link of the README and docs names a tracked file or folder."""
    import subprocess

    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.split())
    folders = {parent.as_posix() for f in tracked for parent in Path(f).parents}
    missing = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        resolved = (path.parent / target).resolve().relative_to(ROOT).as_posix()
        if resolved not in tracked and resolved not in folders:
            missing.append(target)
    assert not missing, f"{path.name} links to files a clone lacks: {missing}"
