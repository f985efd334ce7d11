"""Linear maps and bilinear forms between named spaces.

`LinearMap` is a matrix whose rows are named by its input space and columns by
its output space (row-vector convention, as the residual stream is used).
`BilinearForm` is the W_QK of an attention head: score = query · M · key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from craft.bases import BasisDirection, Vector, VectorSpace, join_spaces, zeros_matrix


@dataclasses.dataclass(frozen=True, eq=False)
class LinearMap:
    """x ↦ x @ matrix, from `input_space` to `output_space`."""

    input_space: VectorSpace
    output_space: VectorSpace
    matrix: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "matrix", _checked(self.matrix, self.input_space, self.output_space))

    @classmethod
    def from_action(cls, input_space: VectorSpace, output_space: VectorSpace,
                    action: Callable[[BasisDirection], dict[BasisDirection, float]]) -> LinearMap:
        """The map sending each input direction d to the components `action(d)`."""
        matrix = zeros_matrix(input_space.dim, output_space.dim)
        for i, direction in enumerate(input_space.basis):
            for target, x in action(direction).items():
                matrix[i, output_space.index[target]] = 0.0 + x  # (its only write)
        return cls(input_space, output_space, matrix)

    def __call__(self, vector: Vector) -> Vector:
        return Vector(self.output_space, vector.project(self.input_space).values @ self.matrix)

    def in_spaces(self, input_space: VectorSpace, output_space: VectorSpace,
                  dtype=np.float64) -> np.ndarray:
        """This map's matrix embedded in larger input and output spaces (entries rounded
        to `dtype`, as `astype` would)."""
        return embed_matrix(self.matrix, self.input_space, self.output_space,
                            input_space, output_space, dtype)

    def __add__(self, other: LinearMap) -> LinearMap:
        ins = join_spaces(self.input_space, other.input_space)
        outs = join_spaces(self.output_space, other.output_space)
        return LinearMap(ins, outs, self.in_spaces(ins, outs) + other.in_spaces(ins, outs))


@dataclasses.dataclass(frozen=True, eq=False)
class BilinearForm:
    """(query, key) ↦ query @ matrix @ key."""

    query_space: VectorSpace
    key_space: VectorSpace
    matrix: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "matrix", _checked(self.matrix, self.query_space, self.key_space))

    def in_spaces(self, query_space: VectorSpace, key_space: VectorSpace) -> np.ndarray:
        """This form's matrix embedded in larger query and key spaces."""
        return embed_matrix(self.matrix, self.query_space, self.key_space, query_space, key_space)

    def __add__(self, other: BilinearForm) -> BilinearForm:
        qs = join_spaces(self.query_space, other.query_space)
        ks = join_spaces(self.key_space, other.key_space)
        return BilinearForm(qs, ks, self.in_spaces(qs, ks) + other.in_spaces(qs, ks))

    def __mul__(self, scalar: float) -> BilinearForm:
        return BilinearForm(self.query_space, self.key_space, self.matrix * scalar)

    __rmul__ = __mul__


def _checked(matrix, rows: VectorSpace, cols: VectorSpace) -> np.ndarray:
    """`matrix` as float64, after checking it is rows × cols."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (rows.dim, cols.dim):
        raise ValueError(f"matrix shape {matrix.shape} does not match spaces "
                         f"({rows.dim}, {cols.dim})")
    return matrix


def embed_matrix(matrix: np.ndarray, rows: VectorSpace, cols: VectorSpace,
                 new_rows: VectorSpace, new_cols: VectorSpace, dtype=np.float64) -> np.ndarray:
    """`matrix` (indexed by rows × cols) re-indexed by new_rows × new_cols, as `dtype`.

    Directions missing from the new spaces are dropped; new ones get zeros.
    Equivalent to projecting on both sides, in O(size) instead of a matmul.
    Assigning rounds each entry to `dtype` as `astype` would, without a second copy.
    """
    out = zeros_matrix(new_rows.dim, new_cols.dim, dtype)
    old_r, new_r = rows.shared_positions(new_rows)
    kept = matrix if len(old_r) == rows.dim else matrix[old_r]  # (all rows: no copy)
    if cols.basis == new_cols.basis:  # the common case: only the rows move
        out[new_r] = kept
        return out
    old_c, new_c = cols.shared_positions(new_cols)
    if len(old_c) != cols.dim:
        kept = kept[:, old_c]
    if rows.basis == new_rows.basis:
        out[:, new_c] = kept
    elif len(new_r) and len(new_c):
        out[new_r[:, None], new_c] = kept
    return out
