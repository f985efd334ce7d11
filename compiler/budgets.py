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
from rasp_runtime.verify import ABSOLUTE_TOLERANCE, tolerance

# Float32 error a numerical SOp may carry (any summation order) when no reader says
# what it tolerates; readers that do (discretisers, means, linear maps) set their own.
NUMERIC_BUDGET = 1e-5
# The compiler leaves half of the runtime's verification tolerance to spare: the
# output's float32 error may reach output_budget(v) (OUTPUT_BUDGET where the bound
# does not depend on the value).
OUTPUT_BUDGET = ABSOLUTE_TOLERANCE / 2
# The least one-hot error assumed of lookups of noisy one-hots and of aggregates (their
# own bound, compiler.input_errors `_one_hot_error`, where it is larger: ~2× their
# input's, ~1e-7 relative per average; a soft head leaks within half of what is left),
# and the most a numerical Map reads through a plain lookup. Lookups of exact one-hots
# (tokens, indices, lookups of those) are exact (`_exact_lookup`).
LOOKUP_NOISE = 1e-5
# Most combinations of input values a linear map's bound is checked on, one by one.
MAX_COMBINATIONS = 1_000_000


def output_budget(value):
    """The float32 error the compiler lets the program's output carry where it is v:
    half of `tolerance(v)`, i.e. max(5e-5, 2⁻¹⁸·|v|)."""
    return tolerance(value) / 2


@dataclasses.dataclass
class Budgets:
    """Per numerical SOp, the errors its readers tolerate (reader node → error)."""

    output: int
    is_numerical: Callable[[int], bool]
    label: Callable[[int], str] = str
    tolerances: dict[int, dict[int, float]] = dataclasses.field(default_factory=dict)
    # What reading `node` costs on top of its own error (a LayerNorm before every read,
    # compiler.layer_norm); its readers' tolerances pay for it first.
    read_error: Callable[[int], float] = lambda node: 0.0

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
        return min(tolerated, default=NUMERIC_BUDGET) - self.read_error(node)

    def allowed(self, node: int, values) -> np.ndarray:
        """The error `node` may carry where it takes each of `values`: its budget, and at
        the program's output also `output_budget(v)` (relative for large values), so a
        value is never charged a budget set by a larger one."""
        values = np.asarray(values, np.float64)
        if node != self.output:
            return np.full(values.shape, self.budget(node))
        readers = min(self.tolerances.get(node, {}).values(), default=np.inf)
        return np.minimum(readers, output_budget(values)) - self.read_error(node)

    def spent_by(self, node: int) -> str:
        """Who sets `node`'s budget, for a refusal: its least tolerant reader, and what
        that reader must itself stay within and for whom (never a negative tolerance:
        a reader whose own rounding used up its budget refuses itself)."""
        readers = self.tolerances.get(node, {})
        if not readers or (node == self.output and OUTPUT_BUDGET <= min(readers.values())):
            return "the program's output" if node == self.output else "the default budget"
        reader = min(readers, key=readers.get)
        text = f"its reader {self.label(reader)!r}"
        if reader in self.tolerances or reader == self.output:
            upstream = self.spent_by(reader) if reader != node else ""
            text += f" (which must itself stay within {self.budget(reader):.2g} for {upstream})"
        return text

    def linear(self, node: int, expr, terms: list[tuple[int | None, float, list[float]]],
               units: int):
        """Budgets of a linear map's inputs, or a refusal naming the rounding it cannot afford.

        `terms` are (sop, coefficient, its values); sop None for an input read exactly (a
        one-hot). The MLP (`units` hidden units) is exact but for rounding: over inputs x
        that carry errors e, error ≤ F·e + γ_{units+1}·(Σ|coeff·x| + F·e), with F the
        Σ|coeff| of the inputs that carry errors (float_bounds.matmul_error). That must
        fit the budget of the value a·x + b·y it writes (at the output `output_budget`,
        relative for large values) for every combination of input values, so no
        cancellation is ever charged a relative budget.
        """
        merged: dict = {}  # the same SOp twice is one term (a·x + b·x = (a + b)·x)
        for sop, coefficient, xs in terms:
            key = id(xs) if sop is None else sop
            merged[key] = (sop, merged.get(key, (sop, 0.0, xs))[1] + coefficient, xs)
        terms = list(merged.values())
        worst = _combinations([np.asarray(xs, np.float64) * c for _, c, xs in terms])
        if worst is None:  # too many combinations: each term at its largest, least budget
            magnitude = sum(abs(c) * max(map(abs, xs), default=0.0) for _, c, xs in terms)
            slack = self.budget(node) - float_bounds.matmul_error(magnitude, units)
        else:
            values, magnitudes = worst
            slack = float(np.min(self.allowed(node, values)
                                 - float_bounds.matmul_error(magnitudes, units)))
        if slack <= 0:
            raise CompileError(expr, "float32 rounding of its linear combination may exceed "
                               f"what {self.spent_by(node)} tolerates by {-slack:.2g}"
                               + self._after_reads(node),
                               "scale the coefficients or the values down")
        carried = sum(abs(c) for sop, c, _ in terms if sop is not None)  # the F above
        per_input_error = max(carried * (1 + float_bounds.gamma(units + 1)), 1e-300)
        for sop, _, _ in terms:
            if sop is not None:
                self.tolerate(node, sop, slack / per_input_error)

    def mean(self, node: int, expr, sop: int | None, count: int, largest: float,
             leak: float = 0.0):
        """Refuse a numerical mean over `count` keys whose float32 averaging error alone
        (plus `leak`, what a soft head's weight off its keys may add) exceeds its budget;
        otherwise record what error its numerical input `sop` may carry."""
        budget = self.budget(node)
        own = float_bounds.mean_error(count, largest) + leak
        if own > budget:
            raise CompileError(expr, f"averaging over up to {count} positions in float32 "
                               f"may err by {own:.2g}, more than {self.spent_by(node)} "
                               f"tolerates ({budget:.2g}{self._after_reads(node)})",
                               "compile for a shorter max_seq_len, or space the values "
                               "that later Maps tell apart further apart")
        if sop is not None:
            per_input_error = float_bounds.mean_error(count, 0.0, 1.0)  # linear in it
            self.tolerate(node, sop, (budget - own) / per_input_error)


    def _after_reads(self, node: int) -> str:
        cost = self.read_error(node)
        return f", after the {cost:.2g} that the LayerNorm before its readers costs" \
            if cost else ""


def _combinations(scaled: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(Σ sᵢ, Σ|sᵢ|) over every choice of one entry sᵢ from each array, flattened; None
    where there are more than MAX_COMBINATIONS."""
    if np.prod([max(len(s), 1) for s in scaled], dtype=np.float64) > MAX_COMBINATIONS:
        return None
    values, magnitudes = np.zeros(1), np.zeros(1)
    for s in scaled:
        s = s if len(s) else np.zeros(1)
        values = np.add.outer(values, s).ravel()
        magnitudes = np.add.outer(magnitudes, np.abs(s)).ravel()
    return values, magnitudes


def check_scratch(expr, block: Series, max_seq_len: int, hardness: float, shift: float = 0.0,
                  layer_norm=None) -> float:
    """Refuse a width whose head (logit gap `hardness`, scratch `shift`) could, in
    float32, move its scratch out of its window; with `layer_norm` (compiler.layer_norm.
    LayerNormReads), what a LayerNorm before the head adds to its logits too. Returns
    the scratch's relative error bound."""
    extra = 0.0 if layer_norm is None else layer_norm.logit_error(block.blocks[0].w_qk)
    error = scratch_error(block.blocks[0], max_seq_len, hardness, shift, extra)
    tolerance = scratch_tolerance(max_seq_len)
    if error > tolerance:
        raise CompileError(expr, f"its head may count up to {max_seq_len} keys with a float32 "
                           f"error of {error:.2g} (relative), more than the {tolerance:.2g} "
                           "that tells w from w + 1", "compile for a shorter max_seq_len or "
                           "split the selector into simpler ones")
    return error


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
