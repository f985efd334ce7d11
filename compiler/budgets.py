"""Float32 error budgets of numerical SOps, set by the blocks that read them.

Takes the blocks as they are built (readers before the SOps they read) and gives
each numerical SOp the largest error it may carry: the least any reader tolerates.
What each reader's own rounding costs comes from craft.float_bounds, so every
budget holds for any summation order.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable

import numpy as np

from craft import float_bounds
from craft.bases import zeros_matrix
from craft.blocks import Series
from craft.selector_width import scratch_error, scratch_tolerance
from rasp.errors import CompileError

# Float32 error a numerical SOp may carry (any summation order) when no reader says
# what it tolerates; readers that do (discretisers, means, linear maps) set their own.
NUMERIC_BUDGET = 1e-5
# ... and for the program's output: half of rasp_runtime.verify's NUMERIC_TOLERANCE (1e-4).
OUTPUT_BUDGET = 5e-5


@dataclasses.dataclass
class Budgets:
    """Per numerical SOp, the errors its readers tolerate (reader node → error)."""

    output: int
    is_numerical: Callable[[int], bool]
    tolerances: dict[int, dict[int, float]] = dataclasses.field(default_factory=dict)

    def tolerate(self, reader: int, sop: int, error: float):
        """Record that `reader` stays exact while numerical `sop` errs by at most `error`."""
        self.tolerances.setdefault(sop, {})[reader] = error

    def tolerate_by_default(self, reader: int, inputs: Iterable[int]):
        """NUMERIC_BUDGET for each numerical input `reader` has not stated a tolerance for."""
        for sop in inputs:
            if self.is_numerical(sop):
                self.tolerances.setdefault(sop, {}).setdefault(reader, NUMERIC_BUDGET)

    def budget(self, node: int) -> float:
        """The float32 error numerical SOp `node` may carry: the least any reader tolerates."""
        tolerated = list(self.tolerances.get(node, {}).values())
        if node == self.output:
            tolerated.append(OUTPUT_BUDGET)
        return min(tolerated, default=NUMERIC_BUDGET)

    def linear(self, node: int, terms: list[tuple[int, float, float]]):
        """Budgets of a LinearSequenceMap's inputs: `terms` are (sop, coefficient, largest |value|).

        relu(±x) is exact; the second layer adds 4 terms, Σ|coeff|·|x| in all, so
        error ≤ F·e + γ_5·(Σ|coeff|·|x| + F·e) with F = Σ|coeff| (float_bounds.matmul_error).
        """
        factors = sum(abs(c) for _, c, _ in terms)
        rounding = float_bounds.matmul_error(sum(abs(c) * x for _, c, x in terms), 4)
        per_input_error = max(factors * (1 + float_bounds.gamma(5)), 1e-300)
        for sop, _, _ in terms:
            self.tolerate(node, sop, (self.budget(node) - rounding) / per_input_error)

    def mean(self, node: int, expr, sop: int | None, count: int, largest: float):
        """Refuse a numerical mean over `count` keys whose float32 averaging error alone
        exceeds its budget; otherwise record what error its numerical input `sop` may carry."""
        budget = self.budget(node)
        own = float_bounds.mean_error(count, largest)
        if own > budget:
            raise CompileError(expr, f"averaging over up to {count} positions in float32 "
                               f"may err by {own:.2g}, more than what reads it tolerates "
                               f"({budget:.2g})", "compile for a shorter max_seq_len, or "
                               "space the values that later Maps tell apart further apart")
        if sop is not None:
            per_input_error = float_bounds.mean_error(count, 0.0, 1.0)  # linear in it
            self.tolerate(node, sop, (budget - own) / per_input_error)


def check_scratch(expr, block: Series, max_seq_len: int, hardness: float, shift: float = 0.0):
    """Refuse a width whose head (logit gap `hardness`, scratch `shift`) could, in
    float32, move its scratch out of its window."""
    error = scratch_error(block.blocks[0], max_seq_len, hardness, shift)
    tolerance = scratch_tolerance(max_seq_len)
    if error > tolerance:
        raise CompileError(expr, f"its head may count up to {max_seq_len} keys with a float32 "
                           f"error of {error:.2g} (relative), more than the {tolerance:.2g} "
                           "that tells w from w + 1", "compile for a shorter max_seq_len or "
                           "split the selector into simpler ones")


def class_indices(rows: list, runs: bool) -> list[int]:
    """Class index of each sorted value: one class per distinct row, or with `runs`, per
    run of equal consecutive rows (so each class toggles at two thresholds at most)."""
    if runs:
        return list(itertools.accumulate((int(a != b) for a, b in zip(rows, rows[1:])),
                                         initial=0))
    index = {row: i for i, row in enumerate(dict.fromkeys(rows))}
    return [index[row] for row in rows]


def one_hots(class_of: list[int]) -> np.ndarray:
    """The one-hot rows of `class_of` (values × classes)."""
    rows = zeros_matrix(len(class_of), max(class_of) + 1)  # refuses sizes beyond memory
    rows[np.arange(len(class_of)), class_of] = 1.0
    return rows
