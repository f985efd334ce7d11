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
from typing import NamedTuple

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
# A value a reader's per-value tolerance was recorded at matches a value its writer
# checks within this (relative): the same number, computed in another order.
SAME_VALUE = 1e-9


def output_budget(value):
    """The float32 error the compiler lets the program's output carry where it is v:
    half of `tolerance(v)`, i.e. max(5e-5, 2⁻¹⁸·|v|)."""
    return tolerance(value) / 2


class LinearTerm(NamedTuple):
    """One input of a linear map: numerical `sop` (None: a one-hot, read without error),
    its coefficient and values, the Σ|hidden unit × weight| it adds per unit of
    |coefficient·value| (1 for relu(x) − relu(−x) or a one-hot; a clamp adds more,
    clean_lookup.CLAMP_MAGNITUDE), and the error its read adds per unit of
    |coefficient·value| besides that rounding (a clamp or `one` read through a LayerNorm,
    clean_lookup.normed_read; a numerical input's read is paid by its budget)."""

    sop: int | None
    coefficient: float
    values: list[float]
    magnitude: float = 1.0
    extra: float = 0.0


@dataclasses.dataclass
class Budgets:
    """Per numerical SOp, the errors its readers tolerate (reader node → error)."""

    output: int
    is_numerical: Callable[[int], bool]
    label: Callable[[int], str] = str
    tolerances: dict[int, dict[int, float]] = dataclasses.field(default_factory=dict)
    # Where a reader tolerates more at some values of the SOp than at others (a linear
    # map whose budget is relative for large values): SOp → reader → (sorted values,
    # error tolerated at each). `tolerances` keeps the least, for any other value.
    at_values: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = \
        dataclasses.field(default_factory=dict)
    # What reading `node` costs on top of its own error (a LayerNorm before every read,
    # compiler.layer_norm); its readers' tolerances pay for it first.
    read_error: Callable[[int], float] = lambda node: 0.0

    def tolerate(self, reader: int, sop: int, error: float, values=None, errors=None):
        """Record that `reader` stays exact while numerical `sop` errs by at most `error`,
        or, where `sop` is one of `values`, by the matching entry of `errors` (≥ `error`)."""
        self.tolerances.setdefault(sop, {})[reader] = error
        if values is not None:
            order = np.argsort(values)
            self.at_values.setdefault(sop, {})[reader] = (
                np.asarray(values, np.float64)[order], np.asarray(errors, np.float64)[order])

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
        """The error `node` may carry where it takes each of `values`: what each reader
        tolerates there (its least where it did not say per value), and at the program's
        output also `output_budget(v)` (relative for large values), so a value is never
        charged a budget set by a larger one. Never less than `budget`."""
        values = np.asarray(values, np.float64)
        readers = self.tolerances.get(node, {})
        unread = NUMERIC_BUDGET if not readers and node != self.output else np.inf
        limit = np.full(values.shape, unread)
        for reader, least in readers.items():
            limit = np.minimum(limit, self._tolerated_at(node, reader, values, least))
        if node == self.output:
            limit = np.minimum(limit, output_budget(values))
        return limit - self.read_error(node)

    def within(self, node: int, values, errors) -> bool:
        """Whether `node`'s writer, erring by `errors` where it writes `values` (arrays of
        one shape), stays within what `allowed` lets it carry at each value."""
        values = np.asarray(values, np.float64)
        return bool(np.all(np.asarray(errors) <= self.allowed(node, values.ravel())
                           .reshape(values.shape)))

    def most(self, node: int, values) -> float:
        """The largest error `node` may carry where it takes any of `values` (all it takes):
        what its writer was checked against, for bounds on what the residual holds."""
        return max(self.budget(node), float(np.max(self.allowed(node, values), initial=0.0)))

    def _tolerated_at(self, sop: int, reader: int, values: np.ndarray, least: float):
        """What `reader` tolerates of `sop` at each of `values`: its per-value entry where
        exactly one recorded value matches (SAME_VALUE), else its least."""
        known, errors = self.at_values.get(sop, {}).get(reader, (None, None))
        if known is None or not len(known):
            return np.full(values.shape, least)
        near = SAME_VALUE * np.maximum(1.0, np.abs(values))
        first = np.searchsorted(known, values - near, "left")
        last = np.searchsorted(known, values + near, "right")
        return np.where(last - first == 1, errors[np.minimum(first, len(known) - 1)], least)

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

    def linear(self, node: int, expr, terms: list[tuple], units: int):
        """Budgets of a linear map's inputs, or a refusal naming the rounding it cannot afford.

        `terms` are `LinearTerm`s (or tuples of their fields); sop None for an input read
        without error (a one-hot). The MLP (`units` hidden units) is exact but for
        rounding: over inputs x that carry errors e, error ≤ F·e + γ_{units+1}·(Σ m·|c·x|
        + F·e), with F the Σ|c| of the inputs that carry errors and m each term's
        `magnitude` (float_bounds.matmul_error). That must fit the budget of the value
        Σ coeff·x it writes (at the output `output_budget`, relative for large values) for
        every combination of input values, so no cancellation is ever charged a relative
        budget. Each input may then err, at each of its values x, by what the least
        tolerant combination holding x leaves over F (so Σ|coeff|·e fits every one).
        """
        merged: dict = {}  # the same SOp twice is one term (a·x + b·x = (a + b)·x)
        for term in (LinearTerm(*t) for t in terms):
            key = id(term.values) if term.sop is None else term.sop
            before = merged.get(key, term._replace(coefficient=0.0))
            merged[key] = term._replace(coefficient=before.coefficient + term.coefficient)
        terms = list(merged.values())
        worst = _combinations([(np.asarray(t.values, np.float64) * t.coefficient, t.magnitude,
                                t.extra) for t in terms])
        if worst is None:  # too many combinations: each term at its largest, least budget
            largest = [abs(t.coefficient) * max(map(abs, t.values), default=0.0) for t in terms]
            magnitude = sum(t.magnitude * x for t, x in zip(terms, largest))
            extra = sum(t.extra * x for t, x in zip(terms, largest))
            slacks = None
            slack = self.budget(node) - float_bounds.matmul_error(magnitude, units) - extra
        else:
            values, magnitudes, extras = worst
            slacks = (self.allowed(node, values) - float_bounds.matmul_error(magnitudes, units)
                      - extras).reshape([max(len(t.values), 1) for t in terms])
            slack = float(np.min(slacks))
        if slack <= 0:
            raise CompileError(expr, "float32 rounding of its linear combination may exceed "
                               f"what {self.spent_by(node)} tolerates by {-slack:.2g}"
                               + self._after_reads(node),
                               "scale the coefficients or the values down")
        carried = sum(abs(t.coefficient) for t in terms if t.sop is not None)  # the F above
        per_input_error = max(carried * (1 + float_bounds.gamma(units + 1)), 1e-300)
        for axis, term in enumerate(terms):
            if term.sop is None:
                continue
            if slacks is None or not len(term.values):
                self.tolerate(node, term.sop, slack / per_input_error)
                continue
            others = tuple(a for a in range(slacks.ndim) if a != axis)
            self.tolerate(node, term.sop, slack / per_input_error, term.values,
                          np.min(slacks, axis=others) / per_input_error)

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


def _combinations(scaled: list[tuple[np.ndarray, float, float]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(Σ sᵢ, Σ mᵢ·|sᵢ|, Σ eᵢ·|sᵢ|) over every choice of one entry sᵢ from each array (with
    its magnitude factor mᵢ and extra error eᵢ), flattened in C order (the first array's
    axis outermost); None where there are more than MAX_COMBINATIONS."""
    if np.prod([max(len(s), 1) for s, _, _ in scaled], dtype=np.float64) > MAX_COMBINATIONS:
        return None
    values, magnitudes, extras = np.zeros(1), np.zeros(1), np.zeros(1)
    for s, factor, extra in scaled:
        s = s if len(s) else np.zeros(1)
        values = np.add.outer(values, s).ravel()
        magnitudes = np.add.outer(magnitudes, factor * np.abs(s)).ravel()
        extras = np.add.outer(extras, extra * np.abs(s)).ravel()
    return values, magnitudes, extras


def check_scratch(expr, block: Series, max_seq_len: int, hardness: float, shift: float = 0.0,
                  layer_norm=None) -> float:
    """Refuse a width whose head (logit gap `hardness`, scratch `shift`) could, in
    float32, move its scratch out of its window; with `layer_norm` (compiler.layer_norm.
    LayerNormReads), what a LayerNorm before the head adds to its logits too. Returns
    the scratch's relative error bound."""
    extra = 0.0 if layer_norm is None else layer_norm.logit_error(block.blocks[0].w_qk)
    error = scratch_error(block.blocks[0], max_seq_len, hardness, shift, extra)
    if layer_norm is not None:
        error += layer_norm.scratch_error(max_seq_len, shift)
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
