"""Compare a compiled model with the reference evaluator.

Categorical values must be equal; numerical values within `tolerance`.
Inputs outside the program's domain (the evaluator raises) are counted by reason.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

import rasp
from rasp_runtime.generation import teacher_forced, written_value
from rasp_runtime.model import CompiledModel

NUMERIC_TOLERANCE = 1e-4
# How far a decoded number may be from the evaluator's value v: absolute for small
# values, relative (128 float32 ulps) for large ones, which float32 cannot hold to
# an absolute 1e-4 at all. Used here, by CompiledModel.apply(check=True), and by the
# compiler's budgets (compiler.budgets.output_budget leaves half of it to spare).
ABSOLUTE_TOLERANCE = NUMERIC_TOLERANCE
RELATIVE_TOLERANCE = 2.0 ** -17


def tolerance(value):
    """The largest |decoded − v| that counts as equal to the evaluator's number v:
    max(1e-4, 2⁻¹⁷·|v|). Broadcasts over numpy arrays."""
    return np.maximum(ABSOLUTE_TOLERANCE, RELATIVE_TOLERANCE * np.abs(value))


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One input on which the model and the evaluator disagree."""

    input: list[Any]
    expected: list[Any]
    got: list[Any]

    def __str__(self):
        return f"input {self.input}: evaluator {self.expected}, model {self.got}"


def values_agree(expected: Any, got: Any) -> bool:
    """Equal, or both numbers within `tolerance`(expected)."""
    if isinstance(got, float) and isinstance(expected, numbers.Real):
        return abs(float(expected) - got) <= tolerance(float(expected))
    return expected == got and (expected is None) == (got is None)


def outputs_agree(expected: Sequence[Any], got: Sequence[Any]) -> bool:
    return len(expected) == len(got) and all(map(values_agree, expected, got))


@dataclasses.dataclass
class Verification:
    """What comparing a model with the evaluator on some inputs found.

    checked: inputs inside the program's domain, compared.
    outside: for inputs outside the domain (the evaluator raises), their count by
      reason, e.g. {"'map_3' raises": 12}.
    """

    checked: int = 0
    mismatches: list[Mismatch] = dataclasses.field(default_factory=list)
    outside: Counter[str] = dataclasses.field(default_factory=Counter)

    def __iadd__(self, other: Verification) -> Verification:
        self.checked += other.checked
        self.mismatches += other.mismatches
        self.outside += other.outside
        return self


def verify_inputs(model: CompiledModel, program: rasp.SOp, inputs: Iterable[Sequence[Any]],
                  batch_size: int = 256) -> Verification:
    """Compare `model` with the evaluator on every input inside the program's domain,
    counting the others by reason. For a completion model an input is a prompt, and the
    tokens it writes (teacher-forced) are compared with the output then EOS."""
    config = model.config
    completion = config.form == "completion"
    causal = config.completion_causal if completion else config.causal
    result, pending = Verification(), []

    def flush():
        # A completion model runs prompt, SEP and the expected output teacher-forced, and
        # must write that output then EOS from SEP on (rasp_runtime.generation).
        outputs = model.apply_batch([teacher_forced(config, xs, expected) if completion
                                     else [config.bos, *xs] for xs, expected in pending])
        for (xs, expected), decoded in zip(pending, outputs):
            written = ([written_value(config, t) for t in decoded[len(xs) + 1:]]
                       if completion else decoded[1:])
            expected = [*expected, config.eos] if completion else expected
            if not outputs_agree(expected, written):
                result.mismatches.append(Mismatch(list(xs), list(expected), written))
        pending.clear()

    for xs in inputs:
        try:
            expected = rasp.evaluate(program, xs, causal=causal)
        except rasp.EvaluationError as error:
            result.outside[model.domain.reason_of(error)] += 1
            continue
        result.checked += 1
        pending.append((list(xs), expected))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    return result


def find_mismatches(model: CompiledModel, program: rasp.SOp, inputs: Iterable[Sequence[Any]],
                    batch_size: int = 256) -> tuple[int, list[Mismatch]]:
    """(number of valid inputs checked, mismatches). Inputs the evaluator rejects are skipped."""
    result = verify_inputs(model, program, inputs, batch_size)
    return result.checked, result.mismatches
