"""MLPs whose inputs are categorical (one-hot): lookups of Maps and SequenceMaps.

Each hidden unit first cleans its one-hot input with a threshold at 1/2, so the
small errors that upstream blocks leave on off directions (below 1/4) never
accumulate. Offsets come from `one`, so all units are silent at BOS. A Map has
two forms: one unit per input value, or one per output value (`output_lookup_mlp`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from craft import float_bounds
from craft.bases import ONE, BasisDirection, VectorSpace, zeros_matrix
from craft.blocks import MLP, BlockInfo
from craft.maps import LinearMap

# Output of a lookup: components in the output space (empty dict = None).
Output = dict[BasisDirection, float]


def lookup_mlp(input_space: VectorSpace, output_space: VectorSpace,
               output_of: Callable[[BasisDirection], Output], hidden_name: str,
               info: BlockInfo) -> MLP:
    """Categorical Map: input direction d (value v) ↦ `output_of(d)`.

    Hidden unit for d: relu(2·x_d − one), which is 1 on a clean one-hot, 0 when
    x_d ≤ 1/2. Directions whose output is zero (None) get no unit. Width ≤ |V|.
    """
    outputs = [(d, output_of(d)) for d in input_space.basis]
    used = [(d, output) for d, output in outputs if any(output.values())]
    hidden = VectorSpace.from_values(hidden_name, range(len(used)))
    reads = VectorSpace((ONE,) + input_space.basis)
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    first[reads.index[ONE], :] = -1.0
    for unit, (d, output) in enumerate(used):
        first[reads.index[d], unit] = 2.0
        for target, x in output.items():
            second[unit, output_space.index[target]] = 0.0 + x  # (its only write)
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output_space, second), info)


def output_lookup_mlp(input_space: VectorSpace, output_space: VectorSpace,
                      output_of: Callable[[BasisDirection], Output], hidden_name: str,
                      info: BlockInfo) -> MLP:
    """Categorical Map with one hidden unit per distinct output: width = |outputs|.

    Unit for output o: relu(2·Σ_{d ↦ o} x_d − one), which is 1 when the set input
    maps to o and 0 otherwise (None in: every unit silent, None out). Inputs whose
    output is zero (None) belong to no unit. The unit sums the errors of all its
    inputs' directions (`output_lookup_error`), so use it on exact one-hots, or
    where that sum is within what the output's readers tolerate.
    """
    units = output_groups(input_space, output_of)
    hidden = VectorSpace.from_values(hidden_name, range(len(units)))
    reads = VectorSpace((ONE,) + input_space.basis)
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    for unit, (output, directions) in enumerate(units.items()):
        first[[reads.index[d] for d in directions], unit] = 2.0
        first[reads.index[ONE], unit] = -1.0
        for target, x in output:
            second[unit, output_space.index[target]] = 0.0 + x  # (its only write)
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output_space, second), info)


def output_groups(input_space: VectorSpace, output_of: Callable[[BasisDirection], Output]
                  ) -> dict[tuple, list[BasisDirection]]:
    """Each distinct non-zero output (as its (direction, value) items) → the input
    directions that give it, in input order: the units of `output_lookup_mlp`."""
    groups: dict[tuple, list[BasisDirection]] = {}
    for d in input_space.basis:
        output = tuple((t, x) for t, x in output_of(d).items() if x)
        if output:
            groups.setdefault(output, []).append(d)
    return groups


def output_lookup_error(preimage_size: int, max_abs_output: float, input_error: float,
                        norm: float_bounds.NormedRead | None = None) -> float:
    """Float32 error bound of each output component of `output_lookup_mlp`, any summation
    order, when every input direction errs by at most `input_error` (≤ 1/8).

    Exact one-hots (input_error = 0) give exact outputs: every term is 2·0, 2·1 or −1,
    so each partial sum is a small integer, which float32 holds exactly, and the set
    unit is exactly 1. Otherwise a unit of k = `preimage_size` inputs carries the input
    error 2kε plus the rounding of k + 1 terms of Σ|w·x| ≤ 2(1 + kε) + 1 (silent units
    stay below −1 + 2kε + rounding < 0, exactly 0); the second layer multiplies one
    unit by the output and the residual add rounds once more.
    """
    if input_error == 0.0 and norm is None:
        return 0.0
    if preimage_size * input_error > 1 / 8:
        raise ValueError("output_lookup_error needs preimage_size · input_error ≤ 1/8")
    k = preimage_size
    unit = float_bounds.matmul_error(2 * (1 + k * input_error) + 1, k + 1, 2 * k * input_error)
    if norm is not None:  # read through a LayerNorm (float_bounds.NormedRead)
        unit += norm.unit_error(2 * k + 1, 2 * (1 + k * input_error) + 1, k + 1)
    second = float_bounds.matmul_error(max_abs_output * (1 + unit), 1, max_abs_output * unit)
    if norm is not None:
        second = norm.output_error(second, max_abs_output)
    return second + float_bounds.add_error(max_abs_output + second)


def pair_lookup_mlp(fst_space: VectorSpace, snd_space: VectorSpace, output_space: VectorSpace,
                    output_of: Callable[[BasisDirection, BasisDirection], Output],
                    hidden_name: str, info: BlockInfo) -> MLP:
    """Categorical SequenceMap: the pair (a, b) ↦ `output_of(a, b)`.

    Hidden unit for (a, b): 2·relu(x_a + y_b − 1.5·one), which is 1 when both are
    set and 0 when either is below 1/4. The two inputs must be disjoint spaces
    (a SequenceMap of one SOp with itself is a Map; the compiler rewrites it).
    Pairs whose output is zero get no unit, so width ≤ |A|·|B|.
    """
    if set(fst_space.basis) & set(snd_space.basis):
        raise ValueError("pair_lookup_mlp needs two disjoint input spaces")
    outputs = [(a, b, output_of(a, b)) for a in fst_space.basis for b in snd_space.basis]
    pairs = [(a, b, output) for a, b, output in outputs if any(output.values())]
    hidden = VectorSpace.from_values(hidden_name, range(len(pairs)))
    reads = VectorSpace((ONE,) + fst_space.basis + snd_space.basis)
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    first[reads.index[ONE], :] = -3.0
    for unit, (a, b, output) in enumerate(pairs):
        first[reads.index[a], unit] = 2.0
        first[reads.index[b], unit] = 2.0
        for target, x in output.items():
            second[unit, output_space.index[target]] = 0.0 + x  # (its only write)
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output_space, second), info)


def categorical_output(space: VectorSpace) -> Callable[[Any], Output]:
    """value ↦ one-hot in `space` (None ↦ zero)."""
    by_value = {d.value: d for d in space.basis}
    return lambda value: {} if value is None else {by_value[value]: 1.0}


def numerical_output(direction: BasisDirection) -> Callable[[Any], Output]:
    """value ↦ value·direction (None ↦ zero)."""
    return lambda value: {} if value is None else {direction: float(value)}


def values_of(space: VectorSpace) -> Sequence[Any]:
    return [d.value for d in space.basis]
