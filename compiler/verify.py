"""Compare a compiled model with the reference evaluator.

Categorical values must be equal; numerical values within NUMERIC_TOLERANCE.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import rasp
from compiler.model import CompiledModel

NUMERIC_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One input on which the model and the evaluator disagree."""

    input: list[Any]
    expected: list[Any]
    got: list[Any]

    def __str__(self):
        return f"input {self.input}: evaluator {self.expected}, model {self.got}"


def values_agree(expected: Any, got: Any) -> bool:
    """Equal, or both numbers within NUMERIC_TOLERANCE."""
    if isinstance(got, float) and isinstance(expected, numbers.Real):
        return abs(float(expected) - got) <= NUMERIC_TOLERANCE
    return expected == got and (expected is None) == (got is None)


def outputs_agree(expected: Sequence[Any], got: Sequence[Any]) -> bool:
    return len(expected) == len(got) and all(map(values_agree, expected, got))


def find_mismatches(model: CompiledModel, program: rasp.SOp, inputs: Iterable[Sequence[Any]],
                    batch_size: int = 256) -> tuple[int, list[Mismatch]]:
    """(number of valid inputs checked, mismatches). Inputs the evaluator rejects are skipped."""
    causal = model.config.causal
    checked, mismatches, pending = 0, [], []

    def flush():
        outputs = model.apply_batch([[model.config.bos, *xs] for xs, _ in pending])
        for (xs, expected), decoded in zip(pending, outputs):
            if not outputs_agree(expected, decoded[1:]):
                mismatches.append(Mismatch(list(xs), list(expected), decoded[1:]))
        pending.clear()

    for xs in inputs:
        try:
            expected = rasp.evaluate(program, xs, causal=causal)
        except rasp.EvaluationError:
            continue
        checked += 1
        pending.append((list(xs), expected))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return checked, mismatches
