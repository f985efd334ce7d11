"""MLPs whose input is numerical: discretising maps and linear combinations.

Discretising MLP (numerical → numerical or categorical). For the sorted input
values x_0 < … < x_m it uses one threshold t_j = (x_{j-1} + x_j)/2 per gap
g_j = x_j − x_{j-1}, with a slope s_j = STEP_SLOPE / g_j of its own:

    below_j(x) = relu(s_j(t_j − x) + ½) − relu(s_j(t_j − x) − ½)

is exactly 1 for x ≤ t_j − g_j/4 and exactly 0 for x ≥ t_j + g_j/4, so every
input within g_j/4 of a value in the set decodes exactly, however the gaps vary.
The output telescopes: f(x_m) + Σ_j (f(x_{j-1}) − f(x_j))·below_j(x).

Counting "below" rather than "above" keeps the active pre-activations small:
a unit is non-zero only when x < t_j + g_j/4, where |s_j(t_j − x)| ≤ s_j·(t_j − x_0),
so float32 rounding stays far below the ½ margin (see `rounding_bound`). The
error bounds below hold for any summation order (craft.float_bounds).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from craft import float_bounds
from craft.bases import ONE, BasisDirection, VectorSpace, zeros_matrix
from craft.blocks import MLP, BlockInfo
from craft.categorical import Output
from craft.maps import LinearMap

# Slope × gap. With 2 the ramp spans the middle half of each gap, leaving a
# quarter-gap tolerance for upstream error on each side of every value.
STEP_SLOPE = 2.0
# So every input within 1/(2·STEP_SLOPE) of a gap from a value decodes exactly.
QUARTER_GAP = 1 / (2 * STEP_SLOPE)
# Output components whose error bounds are computed at once (values × components ≤ this).
BOUND_CHUNK = 1_000_000


def discretising_mlp(input_direction: BasisDirection, input_values: Sequence[float],
                     output_space: VectorSpace, output_of: Callable[[float], Output],
                     hidden_name: str, info: BlockInfo) -> MLP:
    """A numerical Map f, exact on every value of `input_values`.

    `output_of(x)` gives f(x) as components in `output_space` (one-hot for a
    categorical output, a scaled direction for a numerical one).
    Hidden width: at most 2·(number of distinct values − 1) + 1.
    """
    return gated_discretising_mlp(input_direction, input_values, VectorSpace(()), output_space,
                                  lambda x, gate: output_of(x), hidden_name, info)


def gated_discretising_mlp(input_direction: BasisDirection, input_values: Sequence[float],
                           gate_space: VectorSpace, output_space: VectorSpace,
                           output_of: Callable[[float, object], Output], hidden_name: str,
                           info: BlockInfo) -> MLP:
    """f(x, c) of a numerical x and a categorical c: one discretiser of x per value of c.

    Each copy's units get G_j·(x_c − one) added, with G_j above any pre-activation
    they can reach, so only the copy of the present value of c is active (and
    none when c is None). An empty `gate_space` means no gate: f(x, None), with
    `one` as the only copy. Thresholds where f does not change get no units, so
    the hidden width is Σ_c (1 + 2·(changes of f(·, c))) ≤ |C|·(2·(values − 1) + 1).
    """
    xs = sorted(set(map(float, input_values)))
    if not xs:
        raise ValueError("discretising_mlp needs at least one input value")
    gates = gate_space.basis or (None,)
    reads = VectorSpace((ONE, input_direction) + gate_space.basis)
    slope, threshold, strength = _thresholds(xs, gated=gate_space.dim > 0)
    copies = []  # per gate: (gate, thresholds where f changes, f at the values after them)
    for gate in gates:
        copies.append((gate, *_changes([output_of(x, None if gate is None else gate.value)
                                        for x in xs], output_space)))
    hidden = VectorSpace.from_values(hidden_name,
                                     range(sum(1 + 2 * len(c[1]) for c in copies)))
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    unit = 0
    for gate, changes, levels in copies:
        first[reads.index[gate or ONE], unit] += 1.0  # base unit: f(x_m)
        second[unit] += levels[-1]
        steps = np.asarray(changes, dtype=np.intp)  # threshold steps[k] is t_{steps[k]+1}
        step_slope = slope[steps]
        ramp = step_slope * threshold[steps]
        deltas = levels[:-1] - levels[1:]  # f(x_j) − f(x_{j+1}) at each change j
        closed = None if gate is None else strength[steps]
        end = unit + 1 + 2 * len(steps)
        for sign, offset in enumerate((0.5, -0.5)):
            units = slice(unit + 1 + sign, end, 2)  # the ± pair sits side by side
            # (subtracting is adding the negation, bit for bit; without a gate, no G_j)
            if gate is None:
                first[reads.index[ONE], units] += ramp + offset
            else:
                first[reads.index[ONE], units] += ramp + offset - closed
                first[reads.index[gate], units] += closed
            first[reads.index[input_direction], units] -= step_slope
            if sign:
                second[units] -= deltas
            else:
                second[units] += deltas
        unit = end
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output_space, second), info)


def _changes(outputs: list[Output], space: VectorSpace) -> tuple[list[int], np.ndarray]:
    """The steps j where f(x_j) ≠ f(x_{j+1}) in some component, and f as vectors in `space`
    at x_0 and after each such step (rows: f(x_0), f(x_{j+1}) per step j)."""
    # Equal outputs are equal dicts; differing dicts may still be equal as vectors ({} vs 0).
    maybe = [j for j in range(len(outputs) - 1) if outputs[j] != outputs[j + 1]]
    levels = zeros_matrix(len(maybe) + 1, space.dim)
    for row, j in enumerate([-1] + maybe):
        for target, x in outputs[j + 1].items():
            levels[row, space.index[target]] = 0.0 + x  # (its only write)
    changed = (levels[:-1] != levels[1:]).any(axis=1)
    if changed.all():
        return maybe, levels
    return [j for j, c in zip(maybe, changed) if c], levels[np.concatenate([[True], changed])]


def gate_strength(xs: Sequence[float], j: int) -> float:
    """G_j: one more than the largest pre-activation of threshold j's units on any
    input the discretiser decodes (x ≥ x_0 − g_1/4)."""
    slope = STEP_SLOPE / (xs[j] - xs[j - 1])
    lowest = xs[0] - QUARTER_GAP * (xs[1] - xs[0])  # the bottom of x_0's window
    return slope * ((xs[j - 1] + xs[j]) / 2 - lowest) + 1.5


# ---------------------------------------------------------------- float32 error bounds
#
# Hidden unit (j, ±) computes relu(a·one + b·x + G·gate) with a = s_j·t_j ± ½ − G_j,
# b = −s_j (G = 0 without a gate): a dot product of 2 (3) non-zero terms. Its error
# is bounded by craft.float_bounds.matmul_error of |a| + s_j·|x| + G, for any order.
# Inputs decode exactly within a quarter gap of a value (the window of x_i). There,
# pairs j > i are active, threshold i's "+" unit is at its kink (exactly 0 but for
# rounding), and every other unit has pre-activation ≤ −½, so it is exactly 0 while
# `rounding_bound` < ½: exact zeros add nothing and do not count towards γ_n.


def rounding_bound(input_values: Sequence[float], gated: bool = False,
                   norm: float_bounds.NormedRead | None = None) -> float:
    """Worst float32 error of one hidden unit's pre-activation, over every input the
    discretiser decodes and any summation order (the ½ margin must exceed it); with
    `norm`, read through a LayerNorm (float_bounds.NormedRead)."""
    xs = _sorted_values(input_values)
    if len(xs) < 2:
        return 0.0
    lo, hi = _windows(xs)
    slope, threshold, strength = _thresholds(xs, gated)
    spread = slope * max(abs(lo[0]), abs(hi[-1])) + strength
    bias = np.maximum(*(np.abs(slope * threshold + o - strength) for o in (0.5, -0.5)))
    terms = bias + spread
    error = float_bounds.matmul_error(terms, 2 + gated)
    if norm is not None:
        error = error + norm.unit_error(bias + slope + strength, terms, 2 + gated)
    return float(error.max())


def _thresholds(xs: Sequence[float], gated: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per threshold j = 1..m of sorted `xs`: slope s_j, threshold t_j and gate strength G_j
    (zeros without a gate); read-only arrays."""
    return _thresholds_of(tuple(xs), gated)


@functools.lru_cache(maxsize=32)  # a width's 1/(w+1) values recur in every compile
def _thresholds_of(xs: tuple[float, ...], gated: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_thresholds` of a tuple of floats: a pure function, memoised (shared arrays are
    made read-only)."""
    x = np.asarray(xs, dtype=np.float64)
    slope = STEP_SLOPE / np.diff(x)
    arrays = (slope, (x[:-1] + x[1:]) / 2, _strengths(xs) if gated else np.zeros_like(slope))
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _strengths(xs: Sequence[float]) -> np.ndarray:
    """`gate_strength` of every threshold j = 1..m, as one array."""
    x = np.asarray(xs)
    if len(x) < 2:
        return np.zeros(0)
    lowest = x[0] - QUARTER_GAP * (x[1] - x[0])
    return STEP_SLOPE / np.diff(x) * ((x[:-1] + x[1:]) / 2 - lowest) + 1.5


def discretiser_error_bounds(input_values: Sequence[float], outputs, gated: bool = False,
                             norm: float_bounds.NormedRead | None = None) -> np.ndarray:
    """Float32 error bound of every output component, for inputs near each value.

    `outputs[i]` is f(input_values[i]) as a vector (a number for one component).
    Gives an array (values in sorted order × components): for any input within a
    quarter gap of x_i and any summation order, the computed component k differs
    from f(x_i)_k by at most entry [i, k]. The second layer sums, per component,
    Δf_jk·(h⁺_j − h⁻_j) over active pairs and the base unit f(x_m)·one:

        error ≤ Σ|Δf_jk|·e_unit + γ_{n+1}·Σ|Δf_jk|·(h + e_unit)   (float_bounds.matmul_error)

    plus the rounding of the residual add. Infinite when `rounding_bound` ≥ ½. With
    `norm`, the MLP reads through a LayerNorm: each unit errs by NormedRead.unit_error
    more, and the output takes its common scale (NormedRead.output_error).
    """
    xs, f = _by_value(input_values, outputs)
    if rounding_bound(xs, gated, norm) >= 0.5:
        return np.full(f.shape, np.inf)
    lo, hi = _windows(xs)
    largest = np.maximum(np.abs(lo), np.abs(hi))[:, None]  # |x| over each window
    slope, threshold, strength = _thresholds(xs, gated)
    offsets = [np.abs(slope * threshold + o - strength) + strength for o in (0.5, -0.5)]
    unit_gamma = float_bounds.gamma(3 + gated)  # matmul_error's factor for 2 (3) terms

    def after(i_terms):  # Σ over pairs j > i, for every window i (zero for i = m)
        suffix_sums = np.cumsum(i_terms[::-1], axis=0)[::-1]
        return np.concatenate([suffix_sums, np.zeros((1,) + i_terms.shape[1:])])

    def bounds(f):  # one block of output components
        delta = np.abs(np.diff(f, axis=0))  # |Δf_j|, rows j = 1..m
        pair_error = after(delta * ((offsets[0] + offsets[1]))[:, None]) \
            + largest * after(delta * 2 * slope[:, None])
        kink = np.zeros_like(f)  # threshold i's "+" unit, at its kink in window i
        kink[1:] = delta * (offsets[0][:, None] + slope[:, None] * largest[1:])
        unit_error = unit_gamma * (pair_error + kink)
        if norm is not None:  # per unit A·Σ|w| (its one, gate and x weights), γ's step
            weights = after(delta * (offsets[0] + offsets[1] + 2 * slope)[:, None])
            weights[1:] += delta * (offsets[0] + slope)[:, None]
            base = np.abs(f[-1])  # the base unit reads `one` (or the gate) with weight 1
            unit_error = unit_error + norm.absolute * (weights + base) + (
                float_bounds.gamma(4 + gated) - unit_gamma) * (pair_error + kink + base)
        hidden = 2 * (after(delta * (slope * threshold)[:, None])
                      - lo[:, None] * after(delta * slope[:, None])) + np.abs(f[-1])
        count = 2 * after((delta > 0).astype(float)) + (np.abs(f[-1]) > 0)
        count[1:] += delta > 0
        second = float_bounds.matmul_error(hidden, count, unit_error)
        if norm is not None:
            second = norm.output_error(second, np.abs(f))
        return second + float_bounds.add_error(np.abs(f) + second)

    step = max(1, BOUND_CHUNK // len(xs))  # bounded temporaries for wide one-hots
    return np.concatenate([bounds(f[:, c:c + step]) for c in range(0, f.shape[1], step)]
                          or [np.zeros(f.shape)], axis=1)


def _by_value(input_values, outputs) -> tuple[list[float], np.ndarray]:
    """The distinct input values in increasing order (the last output kept for a repeated
    one), and their outputs as rows of a (values × components) array."""
    x = np.asarray(input_values, np.float64)
    if x.ndim == 1 and len(x) > 1 and np.all(x[1:] > x[:-1]):  # sorted and distinct already
        return x.tolist(), np.asarray(outputs, np.float64).reshape(len(x), -1)
    pairs = sorted({float(x): np.atleast_1d(np.asarray(y, np.float64))
                    for x, y in zip(input_values, outputs)}.items())
    return [x for x, _ in pairs], np.array([y for _, y in pairs])


def output_error_bound(input_values: Sequence[float], outputs: Sequence[float],
                       gated: bool = False, norm: float_bounds.NormedRead | None = None
                       ) -> float:
    """Float32 error bound of a numerical output f(x), for any input the discretiser
    decodes and any summation order (see `discretiser_error_bounds`)."""
    return float(discretiser_error_bounds(input_values, outputs, gated, norm).max(initial=0.0))


def one_hot_error_bound(input_values: Sequence[float], rows, gated: bool = False,
                        norm: float_bounds.NormedRead | None = None) -> float:
    """Float32 error bound of every component of a categorical output (rows: f(x)'s
    one-hot vectors), for any input the discretiser decodes and any summation order."""
    return float(discretiser_error_bounds(input_values, rows, gated, norm).max(initial=0.0))


def input_tolerance(input_values: Sequence[float]) -> float:
    """An input error under which a discretiser of these values stays exact: half its
    quarter-gap windows (the other half covers values merged as indistinguishable)."""
    xs = _sorted_values(input_values)
    return QUARTER_GAP * min(np.diff(xs)) / 2 if len(xs) > 1 else np.inf


def _sorted_values(input_values) -> list[float]:
    return sorted(set(float(x) for x in input_values))


def _windows(xs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the inputs around each sorted value that decode to it exactly,
    a quarter of the gap on each side (the outer values mirror their inner gap)."""
    x = np.asarray(xs, np.float64)
    gaps = np.diff(x)
    if not len(gaps):
        return x.copy(), x.copy()
    margin = np.concatenate([gaps[:1], gaps, gaps[-1:]]) * QUARTER_GAP
    return x - margin[:-1], x + margin[1:]


def linear_mlp(terms: Sequence[tuple[BasisDirection, float]], output_direction: BasisDirection,
               hidden_name: str, info: BlockInfo,
               nonnegative: frozenset[BasisDirection] = frozenset()) -> MLP:
    """out = Σ coeff·x over input directions, via relu(x) − relu(−x), or relu(x) alone
    for a direction in `nonnegative` (a one-hot: a numerical Map of an exact categorical
    SOp is Σ_v f(v)·[c = v], linear in c's one-hot). Only float32 rounding errs."""
    coefficients: dict[BasisDirection, float] = {}
    for direction, coeff in terms:
        coefficients[direction] = coefficients.get(direction, 0.0) + coeff
    coefficients = {d: c for d, c in coefficients.items() if c or d not in nonnegative}
    reads = VectorSpace(tuple(coefficients))
    signs = [(1.0,) if d in nonnegative else (1.0, -1.0) for d in coefficients]
    hidden = VectorSpace.from_values(hidden_name, range(sum(map(len, signs))))
    output = VectorSpace((output_direction,))
    first = zeros_matrix(reads.dim, hidden.dim)
    second = np.zeros((hidden.dim, 1))
    unit = 0
    for i, (coeff, unit_signs) in enumerate(zip(coefficients.values(), signs)):
        for sign in unit_signs:
            first[i, unit], second[unit, 0] = sign, sign * coeff
            unit += 1
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output, second), info)
