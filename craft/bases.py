"""Named bases: the residual stream as a direct sum of labelled directions.

A `BasisDirection` is a name plus an optional value (`tokens:a`, `indices:3`,
`one`). A `VectorSpace` is an ordered tuple of distinct directions; the order is
always the order the caller gave, never a sort. `Vector` is a vector in a space.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np

# Largest weight matrix a block may allocate: 400 MB in float64. Beyond this a
# compile would exhaust memory instead of failing with a reason.
MAX_MATRIX_ENTRIES = 50_000_000


class MatrixTooLarge(ValueError):
    """A weight matrix over MAX_MATRIX_ENTRIES; the compiler reports it as a CompileError."""

    def __init__(self, rows: int, cols: int):
        super().__init__(f"a {rows:,} × {cols:,} weight matrix (more than "
                         f"{MAX_MATRIX_ENTRIES:,} entries)")
        self.shape = (rows, cols)


def zeros_matrix(rows: int, cols: int, dtype=np.float64) -> np.ndarray:
    """np.zeros((rows, cols), dtype), refusing sizes that would exhaust memory."""
    if rows * cols > MAX_MATRIX_ENTRIES:
        raise MatrixTooLarge(rows, cols)
    return np.zeros((rows, cols), dtype)


class BasisDirection(tuple):
    """One named axis of the residual stream, optionally tagged with a value.

    The pair (name, value), immutable like a frozen dataclass. Directions are dict keys
    everywhere in the compiler, and a tuple hashes and compares in C.
    """

    __slots__ = ()

    def __new__(cls, name: str, value: Any = None):
        return tuple.__new__(cls, (name, value))

    name = property(operator.itemgetter(0), doc="The direction's name (`tokens`, `one`).")
    value = property(operator.itemgetter(1), doc="Its value, or None.")

    def __setattr__(self, attribute, _):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {attribute!r}")

    def __getnewargs__(self):
        return tuple(self)

    def __repr__(self):
        return f"BasisDirection(name={self.name!r}, value={self.value!r})"

    def __str__(self):
        name, value = self
        return name if value is None else f"{name}:{value}"


@dataclasses.dataclass(frozen=True)
class VectorSpace:
    """An ordered set of basis directions."""

    basis: tuple[BasisDirection, ...]
    # Position of each direction in this space.
    index: dict[BasisDirection, int] = dataclasses.field(init=False, repr=False, compare=False)
    # shared_positions(source) by id(source), with the source itself (so that the id stays
    # its own): a block's spaces are embedded many times, and hashing a space hashes its basis.
    _positions: dict = dataclasses.field(init=False, repr=False, compare=False)
    # The number of directions (a plain attribute: every stage asks for it many times).
    dim: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        basis = tuple(self.basis)
        index = dict(zip(basis, range(len(basis))))
        if len(index) != len(basis):
            raise ValueError(f"repeated basis directions in {[str(d) for d in basis]}")
        # frozen: set directly
        self.__dict__.update(basis=basis, index=index, _positions={}, dim=len(basis))

    @classmethod
    def from_names(cls, names: Iterable[str]) -> VectorSpace:
        return cls(tuple(BasisDirection(n) for n in names))

    @classmethod
    def from_values(cls, name: str, values: Iterable[Any]) -> VectorSpace:
        """BasisDirection(name, v) for each v (hidden units: a range, numbered from 0)."""
        if isinstance(values, range) and len(values) <= MAX_REMEMBERED_RANGE:
            return cls(_range_basis(name, values.start, values.stop, values.step))
        return cls(_basis(name, values))

    def __len__(self):
        return len(self.basis)

    def __iter__(self):
        return iter(self.basis)

    def __contains__(self, direction) -> bool:
        return direction in self.index

    def issubspace(self, other: VectorSpace) -> bool:
        return all(d in other for d in self.basis)

    def join(self, *others: VectorSpace) -> VectorSpace:
        """The union, keeping first-seen order; shared directions appear once."""
        return join_spaces(self, *others)

    def direct_sum(self, *others: VectorSpace) -> VectorSpace:
        """The concatenation; the spaces must not share a direction."""
        basis = self.basis + tuple(d for o in others for d in o.basis)
        return VectorSpace(basis)

    def project_matrix(self, target: VectorSpace) -> np.ndarray:
        """The (self.dim, target.dim) 0/1 matrix keeping the shared directions."""
        matrix = zeros_matrix(self.dim, target.dim)
        mine, theirs = self.shared_positions(target)
        matrix[mine, theirs] = 1.0
        return matrix

    def shared_positions(self, target: VectorSpace) -> tuple[np.ndarray, np.ndarray]:
        """(i, j) index arrays: direction self.basis[i] is target.basis[j], in self's order."""
        source, known = target._positions.get(id(self), (None, None))
        if source is self:
            return known
        if self.basis == target.basis:
            positions = (np.arange(self.dim),) * 2
        else:  # target's index of each direction, −1 where it has none
            theirs = list(map(target.index.get, self.basis, itertools.repeat(-1)))
            if -1 not in theirs:  # the common case: a subspace of the target
                positions = (np.arange(self.dim), np.array(theirs, dtype=np.intp))
            else:
                mine = [i for i, j in enumerate(theirs) if j >= 0]
                positions = (np.array(mine, dtype=np.intp),
                             np.array([theirs[i] for i in mine], dtype=np.intp))
        for array in positions:
            array.flags.writeable = False  # shared by every caller
        target._positions[id(self)] = (self, positions)
        return positions

    def vector(self, components: dict[BasisDirection, float] | None = None) -> Vector:
        """A vector in this space with the given components (others zero)."""
        values = np.zeros(self.dim)
        for d, x in (components or {}).items():
            values[self.index[d]] = x
        return Vector(self, values)

    def labels(self) -> list[str]:
        """Each direction's str (`name` or `name:value`), in order."""
        return list(self._labels)

    @functools.cached_property
    def _labels(self) -> tuple[str, ...]:
        return tuple(map(str, self.basis))


def _basis(name: str, values: Iterable[Any]) -> tuple[BasisDirection, ...]:
    # built in C: hidden spaces run to thousands
    pairs = zip(itertools.repeat(name), values)
    return tuple(map(tuple.__new__, itertools.repeat(BasisDirection), pairs))


# Longest range `from_values` remembers: hidden spaces of a few units to a few hundred recur
# in every compile of a program; wider ones are rare and would hold memory.
MAX_REMEMBERED_RANGE = 1024


@functools.lru_cache(maxsize=128)
def _range_basis(name: str, start: int, stop: int, step: int) -> tuple[BasisDirection, ...]:
    """`_basis` of a range: a pure function of a str and ints, memoised (immutable)."""
    return _basis(name, range(start, stop, step))


def join_spaces(*spaces: VectorSpace) -> VectorSpace:
    """The union of several spaces, in first-seen order."""
    basis: dict[BasisDirection, None] = {}
    for space in spaces:
        basis.update(dict.fromkeys(space.basis))
    return VectorSpace(tuple(basis))


@dataclasses.dataclass(frozen=True, eq=False)
class Vector:
    """A vector with named components."""

    space: VectorSpace
    values: np.ndarray

    def __post_init__(self):
        values = np.asarray(self.values, dtype=np.float64)
        if values.shape != (self.space.dim,):
            raise ValueError(f"vector of shape {values.shape} in a space of dim {self.space.dim}")
        object.__setattr__(self, "values", values)

    def __add__(self, other: Vector) -> Vector:
        space = join_spaces(self.space, other.space)
        return Vector(space, self.project(space).values + other.project(space).values)

    def __mul__(self, scalar: float) -> Vector:
        return Vector(self.space, self.values * scalar)

    __rmul__ = __mul__

    def __eq__(self, other):
        return (isinstance(other, Vector) and self.space == other.space
                and np.array_equal(self.values, other.values))

    def project(self, space: VectorSpace) -> Vector:
        """The components along `space` (directions not in self are zero)."""
        return Vector(space, self.values @ self.space.project_matrix(space))

    def __getitem__(self, direction: BasisDirection) -> float:
        return float(self.values[self.space.index[direction]])



# Special directions. `one` is 1 at every real (non-BOS, non-PAD) position and 0
# elsewhere: it carries every constant offset, so blocks stay silent at BOS.
ONE = BasisDirection("one")
# `bos` is 1 at the BOS position only; attention falls back to it.
BOS = BasisDirection("bos")
