"""Every exception the project raises on purpose, in one place.

`RaspError` is the root. `EvaluationError` comes from the reference evaluator,
`CompileError` from the compiler, and `InputError` from running a compiled model
on bad input (`DomainError` for an input outside the program's domain), `ForkError`
from running a model in a forked child of a process where jax ran.
`ModelFileError` from saving or loading a model file (missing, corrupt, changed
after it was saved, or inconsistent). `CompileWarning` flags a program that
compiles but is partial.
"""

from __future__ import annotations


class RaspError(Exception):
    """Base class of all rasp-compiler errors."""


class EvaluationError(RaspError):
    """The reference evaluator cannot give a value (names the expression and position)."""


class CompileError(RaspError):
    """The compiler refuses an expression it cannot turn into exact weights.

    Attributes:
      label: the label of the offending expression (or None for program-wide problems).
      reason: why it cannot be compiled exactly.
      hint: a rewrite that would compile, when one is known.
    """

    def __init__(self, expr, reason: str, hint: str | None = None):
        self.label = _label_of(expr)
        self.reason = reason
        self.hint = hint
        message = f"cannot compile {self.label!r}: {reason}" if self.label else reason
        if hint:
            message += f"\n  hint: {hint}"
        super().__init__(message)


class ValueRangeError(CompileError):
    """An SOp can take a value no model can hold: NaN, or for a numerical SOp a number
    beyond float32's finite range (rasp_runtime.representable)."""


class InputError(RaspError, ValueError):
    """Input to a compiled model is invalid (unknown token, too long, no BOS, ...)."""


class DomainError(InputError):
    """An input is outside the program's domain: the reference evaluator raises on it
    (a function raised, or a categorical Aggregate selected differing values), so the
    compiled model's output for it means nothing. Names the expression."""


class ForkError(RaspError):
    """A compiled model was run in a process forked after jax had run in its parent,
    where jax can hang (rasp_runtime.fork_safety); worker processes must be spawned."""


class CompileWarning(UserWarning):
    """A program compiles, but its domain is not total (see `CompiledModel.domain`)."""


class ModelFileError(RaspError, ValueError):
    """A model cannot be saved or loaded: a missing, corrupt or unsupported file or value,
    a file changed after it was saved (its checksum differs), or parts that disagree."""


class KnobError(RaspError, ValueError):
    """A realism knob (interp.realism) cannot keep this model exact, or its truth failed
    the path-patching re-check."""


class ModelMismatchError(RaspError):
    """A compiled model disagreed with the evaluator (raised by `apply(check=True)`)."""


def _label_of(expr) -> str | None:
    if expr is None or isinstance(expr, str):
        return expr
    return getattr(expr, "label", repr(expr))


class RaspSyntaxError(RaspError):
    """RASP source text that cannot be parsed or given a meaning.

    Attributes:
      file, line, column: where the fault is (line and column count from 1).
      source_line: that line of the source; the message shows a caret under the column.
      expected: what would have been accepted there, when known.
    """

    def __init__(self, message: str, file: str = "<rasp>", line: int = 1, column: int = 1,
                 source_line: str = "", expected: str | None = None):
        self.reason, self.file, self.line, self.column = message, file, line, column
        self.source_line, self.expected = source_line, expected
        text = f"{file}:{line}:{column}: {message}"
        if expected:
            text += f"; expected {expected}"
        if source_line:  # tabs expanded alike in the line and under it, so the caret lines up
            offset = len(source_line[:column - 1].expandtabs(4))
            text += f"\n    {source_line.expandtabs(4)}\n    {' ' * offset}^"
        super().__init__(text)
