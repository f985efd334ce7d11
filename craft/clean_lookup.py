"""Lookups that turn noisy one-hots back into exact outputs.

Takes one categorical space (or two) whose one-hots may err by up to
INPUT_TOLERANCE and gives an MLP writing output_of(value) as exactly as float32
allows (`error_bound`), in any summation order. Used after a discretiser, whose
one-hot classes carry float32 noise that a plain lookup would pass on (doubled).

Each (pair of) input direction(s) gets a clamp of two units with a slope of 2:
  single:  relu(2x − ½·one) − relu(2x − 1½·one)                = 1 for x ≥ ¾, 0 for x ≤ ¼
  pair:    relu(2(x + y) − 2½·one) − relu(2(x + y) − 3½·one)   = 1 for x + y ≥ 1¾, 0 for ≤ 1¼
With errors up to 1/16 on every input direction, every unit stays at least ¼ from
its kink, so the clamp is exactly 0 or 1 and unset units are exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable

from craft import float_bounds
from craft.bases import ONE, BasisDirection, VectorSpace, zeros_matrix
from craft.blocks import MLP, BlockInfo
from craft.categorical import Output
from craft.maps import LinearMap

# Largest error on any input direction that keeps every unit ¼ from its kink (see above).
INPUT_TOLERANCE = 1 / 16
_SINGLE = (2.0, (0.5, 1.5))   # input slope, the two units' offsets
_PAIR = (2.0, (2.5, 3.5))
# A single clamp's two units sum to at most this (1⅝ + ⅝ for an input within 1/16 of 1):
# what its output weight v multiplies, so a sum over clamps rounds within γ·Σ this·|v|.
CLAMP_MAGNITUDE = 2 * _SINGLE[0] * (1 + INPUT_TOLERANCE) - sum(_SINGLE[1])


def clean_lookup_mlp(input_space: VectorSpace, output_space: VectorSpace,
                     output_of: Callable[[BasisDirection], Output], hidden_name: str,
                     info: BlockInfo) -> MLP:
    """Categorical Map d ↦ output_of(d), exact for inputs within INPUT_TOLERANCE."""
    outputs = [((d,), output_of(d)) for d in input_space.basis]
    used = [(key, output) for key, output in outputs if any(output.values())]
    return _clamps(VectorSpace((ONE,) + input_space.basis), used, output_space, _SINGLE,
                   hidden_name, info)


def clean_pair_lookup_mlp(fst_space: VectorSpace, snd_space: VectorSpace,
                          output_space: VectorSpace,
                          output_of: Callable[[BasisDirection, BasisDirection], Output],
                          hidden_name: str, info: BlockInfo) -> MLP:
    """Categorical SequenceMap (a, b) ↦ output_of(a, b) of two disjoint spaces, exact for
    inputs within INPUT_TOLERANCE."""
    if set(fst_space.basis) & set(snd_space.basis):
        raise ValueError("clean_pair_lookup_mlp needs two disjoint input spaces")
    outputs = [((a, b), output_of(a, b)) for a in fst_space.basis for b in snd_space.basis]
    used = [(key, output) for key, output in outputs if any(output.values())]
    return _clamps(VectorSpace((ONE,) + fst_space.basis + snd_space.basis), used, output_space,
                   _PAIR, hidden_name, info)


def _clamps(reads, keys, output_space, shape, hidden_name, info) -> MLP:
    """One clamp per (input directions, output) of `keys`."""
    slope, offsets = shape
    hidden = VectorSpace.from_values(hidden_name, range(2 * len(keys)))
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    for unit, offset in enumerate(offsets):  # clamp k's units are 2k and 2k + 1
        first[reads.index[ONE], unit::2] = -offset
    for k, (directions, output) in enumerate(keys):
        for d in directions:
            first[reads.index[d], 2 * k:2 * k + 2] = slope
        for target, x in output.items():
            column = output_space.index[target]
            second[2 * k, column] = 0.0 + x  # (their only writes)
            second[2 * k + 1, column] = 0.0 + -1.0 * x
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output_space, second), info)


def error_bound(max_abs_output: float, pair: bool = False,
                norm: float_bounds.NormedRead | None = None) -> float:
    """Float32 error bound of every output component, for inputs within INPUT_TOLERANCE
    and any summation order; with `norm`, read through a LayerNorm.

    A pair's unit adds `one` and 2 input directions of magnitude ≤ 1 + 1/16, so its
    error is e = matmul_error(slope·Σ|x| + offset). Only the clamp of the set value
    (pair) is non-zero — every other unit sits at least ¼ below its kink, and e ≪ ¼ —
    so an output component adds 2 terms, each |value| times a unit of at most
    slope·Σ|x| − offset (+ e). A single clamp's units are exact without a LayerNorm
    (`_single_error_bound`); through one, its inputs are no longer on a float32 grid,
    so it is bounded as a pair is, with NormedRead's unit error and common scale.
    """
    if norm is None:
        return (_pair_error_bound if pair else _single_error_bound)(max_abs_output)
    slope, offsets = _PAIR if pair else _SINGLE
    inputs = 2 if pair else 1
    largest = slope * inputs * (1 + INPUT_TOLERANCE)  # |slope·Σx| at most
    unit = max(float_bounds.matmul_error(largest + offset, inputs + 1)
               + (0.0 if norm is None else
                  norm.unit_error(slope * inputs + offset, largest + offset, inputs + 1))
               for offset in offsets)
    hidden = sum(largest - offset for offset in offsets) + 2 * unit
    second = float_bounds.matmul_error(max_abs_output * hidden, 2, 2 * unit * max_abs_output)
    if norm is not None:
        second = norm.output_error(second, max_abs_output)
    return second + float_bounds.add_error(max_abs_output + second)


def normed_read(norm: float_bounds.NormedRead | None, clamp: bool = True) -> tuple[float, float]:
    """(magnitude, extra) of a linear map's term read through `norm`, per unit of
    |coefficient·value| (compiler.budgets.LinearTerm): a single clamp (or, `clamp` False,
    relu(one)), whose output is 1 + the difference of its units' errors, times the
    common scale. Without a LayerNorm: (CLAMP_MAGNITUDE or 1, 0): the units are exact."""
    plain = CLAMP_MAGNITUDE if clamp else 1.0
    if norm is None:
        return plain, 0.0
    if clamp:
        slope, offsets = _SINGLE
        largest = slope * (1 + INPUT_TOLERANCE)
        units = sum(float_bounds.matmul_error(largest + offset, 2)
                    + norm.unit_error(slope + offset, largest + offset, 2) for offset in offsets)
    else:  # relu(one): `one` and the probe row
        units = norm.unit_error(1.0, 1.0, 1)
    scale = 1 + norm.relative
    return scale * (plain + units), scale * units + norm.relative


def _pair_error_bound(max_abs_output: float) -> float:
    """`error_bound` of a pair lookup without a LayerNorm, whose units nearly are exact.

    A unit adds three exact terms, 2x, 2y (doubling is exact) and −c·one (c = 2½ or 3½,
    one exactly 1), so any order rounds twice: once a partial sum of two terms (at most
    2·(1 + 1/16)·2 = 4¼ in magnitude) and once the unit (at most 1¾ or ¾ where it is
    set). The set clamp's two units then differ by 1 within u·(4¼ + 1¾) + u·(4¼ + ¾) = 11u,
    every other unit is exactly 0 (≥ ¼ below its kink), and the second layer rounds two
    products (u·|v|·(1¾ + ¾)) and their sum (u·|v|·(1 + 11u)); the residual add once more.
    """
    u = float_bounds.UNIT_ROUNDOFF
    units = 11 * u
    second = max_abs_output * (units + u * (2.5 + 2 * units) + u * (1 + units))
    return second + float_bounds.add_error(max_abs_output + second)


def _single_error_bound(max_abs_output: float) -> float:
    """`error_bound` of a single lookup, whose units are exact.

    For x within 1/16 of 1, 2x is exact and 2x − ½ ∈ [1.375, 1.625], 2x − 1½ ∈
    [0.375, 0.625] lie on a grid at least as fine as 2x's, so each unit is the exact
    sum of its two non-zero terms, in any order (with or without FMA); for x within
    1/16 of 0 both are negative, so exactly 0. The output v·u₁ − v·u₂ (exactly v in
    reals) then rounds two products (≤ u·|v|·(1.625 + 0.625)) and their sum (≤ u·|v|
    and its own error), and the residual add rounds once more.
    """
    u = float_bounds.UNIT_ROUNDOFF
    products = u * max_abs_output * CLAMP_MAGNITUDE
    second = products + u * (max_abs_output + products) * (1 + u)
    return second + float_bounds.add_error(max_abs_output + second)
