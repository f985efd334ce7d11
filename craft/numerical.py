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
so float32 rounding stays far below the ½ margin (see `rounding_bound`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from craft.bases import ONE, BasisDirection, VectorSpace, zeros_matrix
from craft.blocks import MLP, BlockInfo
from craft.categorical import Output
from craft.maps import LinearMap

# Slope × gap. With 2 the ramp spans the middle half of each gap, leaving a
# quarter-gap tolerance for upstream error on each side of every value.
STEP_SLOPE = 2.0
FLOAT32_EPS = float(np.finfo(np.float32).eps)


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
    xs = sorted(set(float(x) for x in input_values))
    if not xs:
        raise ValueError("discretising_mlp needs at least one input value")
    gates = gate_space.basis or (None,)
    reads = VectorSpace((ONE, input_direction) + gate_space.basis)
    columns: list[dict] = []   # first-layer weights, one per hidden unit
    rows: list[Output] = []    # second-layer outputs, one per hidden unit

    def unit(weights: dict[BasisDirection, float], output: Output, scale: float):
        columns.append(weights)
        rows.append({k: scale * v for k, v in output.items()})

    for gate in gates:
        value = None if gate is None else gate.value
        unit({gate or ONE: 1.0}, output_of(xs[-1], value), 1.0)  # base unit: f(x_m)
        for j in range(1, len(xs)):
            delta = _difference(output_of(xs[j - 1], value), output_of(xs[j], value))
            if not any(delta.values()):
                continue  # f does not change here: no step needed
            threshold, slope = (xs[j - 1] + xs[j]) / 2, STEP_SLOPE / (xs[j] - xs[j - 1])
            closed = 0.0 if gate is None else gate_strength(xs, j)
            for offset, scale in ((0.5, 1.0), (-0.5, -1.0)):
                weights = {ONE: slope * threshold + offset - closed, input_direction: -slope}
                if gate is not None:
                    weights[gate] = closed
                unit(weights, delta, scale)
    hidden = VectorSpace.from_values(hidden_name, range(len(columns)))
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    for i, (weights, output) in enumerate(zip(columns, rows)):
        for direction, w in weights.items():
            first[reads.index[direction], i] += w
        for target, x in output.items():
            second[i, output_space.index[target]] += x
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output_space, second), info)


def gate_strength(xs: Sequence[float], j: int) -> float:
    """G_j: one more than the largest pre-activation of threshold j's units on x ≥ x_0."""
    slope = STEP_SLOPE / (xs[j] - xs[j - 1])
    return slope * ((xs[j - 1] + xs[j]) / 2 - xs[0]) + 1.5


def rounding_bound(input_values: Sequence[float]) -> float:
    """Worst float32 error of one `below_j` unit pair over the value set.

    Active units have pre-activation magnitude ≤ s_j·(t_j − x_0) + ½; a float32
    matmul of two terms errs by a few ulps of the larger term.
    """
    xs = sorted(set(float(x) for x in input_values))
    worst = 0.0
    for j in range(1, len(xs)):
        slope = STEP_SLOPE / (xs[j] - xs[j - 1])
        threshold = (xs[j - 1] + xs[j]) / 2
        magnitude = slope * max(abs(threshold), abs(xs[0]), abs(xs[-1])) + 1
        worst = max(worst, 4 * FLOAT32_EPS * magnitude)
    return worst


def output_error_bound(input_values: Sequence[float], outputs: Sequence[float]) -> float:
    """Float32 error bound of a numerical output f(x): the second layer adds up
    Δf_j·(upper_j − lower_j) over active pairs whose units are as large as
    s_j·(t_j − x_0) + ½, so it errs by about ε·Σ_j |Δf_j|·(2·that + 1)."""
    pairs = sorted(zip((float(x) for x in input_values), outputs))
    total = 0.0
    for (x_prev, f_prev), (x, f) in zip(pairs, pairs[1:]):
        slope = STEP_SLOPE / (x - x_prev)
        magnitude = slope * ((x_prev + x) / 2 - pairs[0][0]) + 0.5
        total += abs(f - f_prev) * (2 * magnitude + 1)
    return FLOAT32_EPS * total


def linear_mlp(terms: Sequence[tuple[BasisDirection, float]], output_direction: BasisDirection,
               hidden_name: str, info: BlockInfo) -> MLP:
    """out = Σ coeff·x over numerical inputs, via relu(x) − relu(−x). Exact."""
    coefficients: dict[BasisDirection, float] = {}
    for direction, coeff in terms:
        coefficients[direction] = coefficients.get(direction, 0.0) + coeff
    reads = VectorSpace(tuple(coefficients))
    hidden = VectorSpace.from_values(hidden_name, range(2 * reads.dim))
    output = VectorSpace((output_direction,))
    first = zeros_matrix(reads.dim, hidden.dim)
    second = np.zeros((hidden.dim, 1))
    for i, coeff in enumerate(coefficients.values()):
        first[i, 2 * i], first[i, 2 * i + 1] = 1.0, -1.0
        second[2 * i, 0], second[2 * i + 1, 0] = coeff, -coeff
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output, second), info)


def _difference(a: Output, b: Output) -> Output:
    keys = list(dict.fromkeys([*a, *b]))
    return {k: a.get(k, 0.0) - b.get(k, 0.0) for k in keys}
