"""Linear maps and bilinear forms between named spaces.

`LinearMap` is a matrix whose rows are named by its input space and columns by
its output space (row-vector convention, as the residual stream is used).
`BilinearForm` is the W_QK of an attention head: score = query · M · key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from craft.bases import BasisDirection, Vector, VectorSpace, join_spaces


@dataclasses.dataclass(frozen=True, eq=False)
class LinearMap:
    """x ↦ x @ matrix, from `input_space` to `output_space`."""

    input_space: VectorSpace
    output_space: VectorSpace
    matrix: np.ndarray

    def __post_init__(self):
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.shape != (self.input_space.dim, self.output_space.dim):
            raise ValueError(f"matrix shape {matrix.shape} does not match spaces "
                             f"({self.input_space.dim}, {self.output_space.dim})")
        object.__setattr__(self, "matrix", matrix)

    @classmethod
    def from_action(cls, input_space: VectorSpace, output_space: VectorSpace,
                    action: Callable[[BasisDirection], dict[BasisDirection, float]]) -> LinearMap:
        """The map sending each input direction d to the components `action(d)`."""
        matrix = np.zeros((input_space.dim, output_space.dim))
        for i, direction in enumerate(input_space.basis):
            for target, x in action(direction).items():
                matrix[i, output_space.index[target]] += x
        return cls(input_space, output_space, matrix)

    def __call__(self, vector: Vector) -> Vector:
        return Vector(self.output_space, vector.project(self.input_space).values @ self.matrix)

    def in_spaces(self, input_space: VectorSpace, output_space: VectorSpace) -> np.ndarray:
        """This map's matrix embedded in larger input and output spaces."""
        return (input_space.project_matrix(self.input_space) @ self.matrix
                @ self.output_space.project_matrix(output_space))

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
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.shape != (self.query_space.dim, self.key_space.dim):
            raise ValueError(f"matrix shape {matrix.shape} does not match spaces "
                             f"({self.query_space.dim}, {self.key_space.dim})")
        object.__setattr__(self, "matrix", matrix)

    def in_spaces(self, query_space: VectorSpace, key_space: VectorSpace) -> np.ndarray:
        """This form's matrix embedded in larger query and key spaces."""
        return (query_space.project_matrix(self.query_space) @ self.matrix
                @ self.key_space.project_matrix(key_space))

    def __add__(self, other: BilinearForm) -> BilinearForm:
        qs = join_spaces(self.query_space, other.query_space)
        ks = join_spaces(self.key_space, other.key_space)
        return BilinearForm(qs, ks, self.in_spaces(qs, ks) + other.in_spaces(qs, ks))

    def __mul__(self, scalar: float) -> BilinearForm:
        return BilinearForm(self.query_space, self.key_space, self.matrix * scalar)

    __rmul__ = __mul__
