"""MLPs whose inputs are categorical (one-hot): lookups of Maps and SequenceMaps.

Each hidden unit first cleans its one-hot input with a threshold at 1/2, so the
small errors that upstream blocks leave on off directions (below 1/4) never
accumulate. Offsets come from `one`, so all units are silent at BOS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
    used = [d for d in input_space.basis if any(output_of(d).values())]
    hidden = VectorSpace.from_values(hidden_name, range(len(used)))
    reads = VectorSpace((ONE,) + input_space.basis)
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    for unit, d in enumerate(used):
        first[reads.index[d], unit] = 2.0
        first[reads.index[ONE], unit] = -1.0
        for target, x in output_of(d).items():
            second[unit, output_space.index[target]] += x
    return MLP(LinearMap(reads, hidden, first), LinearMap(hidden, output_space, second), info)


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
    pairs = [(a, b) for a in fst_space.basis for b in snd_space.basis
             if any(output_of(a, b).values())]
    hidden = VectorSpace.from_values(hidden_name, range(len(pairs)))
    reads = VectorSpace((ONE,) + fst_space.basis + snd_space.basis)
    first = zeros_matrix(reads.dim, hidden.dim)
    second = zeros_matrix(hidden.dim, output_space.dim)
    for unit, (a, b) in enumerate(pairs):
        first[reads.index[a], unit] = 2.0
        first[reads.index[b], unit] = 2.0
        first[reads.index[ONE], unit] = -3.0
        for target, x in output_of(a, b).items():
            second[unit, output_space.index[target]] += x
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
