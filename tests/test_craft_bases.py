"""craft.bases and craft.maps: named directions, spaces, vectors, maps and forms.

Every expected value below is written out by hand (or by plain numpy on
explicitly built matrices), never computed with the code under test.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from craft.bases import (
    BOS, MAX_MATRIX_ENTRIES, ONE, BasisDirection, MatrixTooLarge, Vector, VectorSpace, join_spaces,
    zeros_matrix,
)
from craft.maps import BilinearForm, LinearMap

A, B, C, D = (BasisDirection(n) for n in "abcd")


# --------------------------------------------------------------------------- BasisDirection


def test_basis_direction_fields_and_str():
    d = BasisDirection("tokens", "x")
    assert d.name == "tokens" and d.value == "x"
    assert str(d) == "tokens:x"
    assert str(BasisDirection("one")) == "one"
    assert BasisDirection("one").value is None
    assert str(BasisDirection("indices", 3)) == "indices:3"


def test_basis_direction_equality_and_hash():
    assert BasisDirection("a", 1) == BasisDirection("a", 1)
    assert BasisDirection("a", 1) != BasisDirection("a", 2)
    assert BasisDirection("a", 1) != BasisDirection("b", 1)
    assert BasisDirection("a") == BasisDirection("a", None)
    assert BasisDirection("a") != BasisDirection("a", 0)
    table = {BasisDirection("a", 1): "x"}
    assert table[BasisDirection("a", 1)] == "x"
    assert len({BasisDirection("a", 1), BasisDirection("a", 1), BasisDirection("a", 2)}) == 2


def test_basis_direction_is_immutable():
    d = BasisDirection("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.name = "b"
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.value = 2


def test_special_directions():
    assert ONE == BasisDirection("one")
    assert BOS == BasisDirection("bos")
    assert ONE != BOS


# --------------------------------------------------------------------------- VectorSpace


def test_space_keeps_given_order_not_sorted():
    basis = (BasisDirection("z"), BasisDirection("a"), BasisDirection("m", 3),
             BasisDirection("m", 1), BasisDirection("b"))
    space = VectorSpace(basis)
    assert space.basis == basis
    assert list(space) == list(basis)
    assert space.dim == 5 and len(space) == 5
    assert space.labels() == ["z", "a", "m:3", "m:1", "b"]
    assert [space.index[d] for d in basis] == [0, 1, 2, 3, 4]


def test_space_accepts_list_and_stores_tuple():
    space = VectorSpace([A, B])
    assert isinstance(space.basis, tuple)
    assert space.basis == (A, B)


def test_space_from_names_and_values_keep_order():
    names = VectorSpace.from_names(["q", "b", "k"])
    assert names.basis == (BasisDirection("q"), BasisDirection("b"), BasisDirection("k"))
    values = VectorSpace.from_values("tok", [3, 1, "x", None, 2])
    assert values.basis == tuple(BasisDirection("tok", v) for v in [3, 1, "x", None, 2])
    # from_values accepts any iterable (e.g. a generator)
    gen = VectorSpace.from_values("i", (i * i for i in range(4)))
    assert [d.value for d in gen] == [0, 1, 4, 9]


@pytest.mark.parametrize("basis", [
    (BasisDirection("a"), BasisDirection("a")),
    (BasisDirection("a", 1), BasisDirection("b"), BasisDirection("a", 1)),
])
def test_space_rejects_repeated_directions(basis):
    with pytest.raises(ValueError):
        VectorSpace(basis)


def test_from_values_and_from_names_reject_repeats():
    with pytest.raises(ValueError):
        VectorSpace.from_values("x", [1, 2, 1])
    with pytest.raises(ValueError):
        VectorSpace.from_names(["a", "b", "a"])


def test_space_contains_and_issubspace():
    space = VectorSpace((A, B, C))
    assert A in space and C in space and D not in space
    assert BasisDirection("a", 0) not in space
    assert VectorSpace((C, A)).issubspace(space)
    assert VectorSpace(()).issubspace(space)
    assert not VectorSpace((A, D)).issubspace(space)
    assert space.issubspace(space)


def test_empty_space():
    empty = VectorSpace(())
    assert empty.dim == 0 and list(empty) == []
    assert empty.join(VectorSpace((A,))).basis == (A,)


def test_join_keeps_first_seen_order():
    s1 = VectorSpace((C, A))
    s2 = VectorSpace((B, A, D))
    s3 = VectorSpace((D, C, BOS))
    assert s1.join(s2).basis == (C, A, B, D)
    assert s2.join(s1).basis == (B, A, D, C)
    assert s1.join(s2, s3).basis == (C, A, B, D, BOS)
    assert join_spaces(s3, s1, s2).basis == (D, C, BOS, A, B)
    assert join_spaces(s1).basis == (C, A)
    assert s1.join(s1).basis == (C, A)


def test_direct_sum_concatenates_and_rejects_overlap():
    s1 = VectorSpace((C, A))
    s2 = VectorSpace((B, D))
    assert s1.direct_sum(s2).basis == (C, A, B, D)
    assert s2.direct_sum(s1, VectorSpace((ONE,))).basis == (B, D, C, A, ONE)
    with pytest.raises(ValueError):
        s1.direct_sum(VectorSpace((A,)))
    with pytest.raises(ValueError):
        s1.direct_sum(s2, VectorSpace((D, ONE)))


def test_project_matrix():
    src = VectorSpace((A, B, C))
    dst = VectorSpace((D, C, A))
    expected = np.array([
        [0, 0, 1],  # a -> a (column 2)
        [0, 0, 0],  # b not in dst
        [0, 1, 0],  # c -> c (column 1)
    ], dtype=float)
    np.testing.assert_array_equal(src.project_matrix(dst), expected)
    np.testing.assert_array_equal(dst.project_matrix(src), expected.T)
    np.testing.assert_array_equal(src.project_matrix(src), np.eye(3))
    assert src.project_matrix(VectorSpace(())).shape == (3, 0)


def test_space_hashable_and_equality():
    s1 = VectorSpace((A, B))
    s2 = VectorSpace((A, B))
    s3 = VectorSpace((B, A))
    assert s1 == s2 and hash(s1) == hash(s2)
    assert s1 != s3  # order matters
    table = {s1: 1}
    assert table[s2] == 1
    _ = s1.index  # populating the cached index must not break hashing or equality
    assert hash(s1) == hash(s2) and s1 == s2


def test_space_is_immutable():
    s = VectorSpace((A, B))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.basis = (A,)


def test_space_vector_components():
    space = VectorSpace((A, B, C))
    v = space.vector({C: 2.5, A: -1.0})
    np.testing.assert_array_equal(v.values, [-1.0, 0.0, 2.5])
    assert v[C] == 2.5 and v[B] == 0.0
    np.testing.assert_array_equal(space.vector().values, [0, 0, 0])
    with pytest.raises(KeyError):
        space.vector({D: 1.0})


# --------------------------------------------------------------------------- Vector


def test_vector_shape_checked_and_float64():
    with pytest.raises(ValueError):
        Vector(VectorSpace((A, B)), np.zeros(3))
    v = Vector(VectorSpace((A, B)), [1, 2])
    assert v.values.dtype == np.float64


def test_vector_add_same_space():
    s = VectorSpace((A, B))
    v = Vector(s, [1.0, 2.0]) + Vector(s, [10.0, -5.0])
    assert v.space == s
    np.testing.assert_array_equal(v.values, [11.0, -3.0])


def test_vector_add_across_spaces():
    v = Vector(VectorSpace((B, A)), [1.0, 2.0])
    w = Vector(VectorSpace((C, A)), [3.0, 4.0])
    total = v + w
    assert total.space.basis == (B, A, C)
    np.testing.assert_array_equal(total.values, [1.0, 6.0, 3.0])
    total2 = w + v
    assert total2.space.basis == (C, A, B)
    np.testing.assert_array_equal(total2.values, [3.0, 6.0, 1.0])


def test_vector_scalar_mul():
    v = Vector(VectorSpace((A, B)), [1.5, -2.0])
    np.testing.assert_array_equal((v * 2).values, [3.0, -4.0])
    np.testing.assert_array_equal((-0.5 * v).values, [-0.75, 1.0])
    assert (v * 3).space == v.space
    np.testing.assert_array_equal(v.values, [1.5, -2.0])  # unchanged


def test_vector_project():
    v = Vector(VectorSpace((A, B, C)), [1.0, 2.0, 3.0])
    p = v.project(VectorSpace((D, C, A)))
    assert p.space.basis == (D, C, A)
    np.testing.assert_array_equal(p.values, [0.0, 3.0, 1.0])
    np.testing.assert_array_equal(v.project(VectorSpace(())).values, np.zeros(0))


def test_vector_equality():
    s = VectorSpace((A, B))
    assert Vector(s, [1, 2]) == Vector(s, [1.0, 2.0])
    assert Vector(s, [1, 2]) != Vector(s, [1, 3])
    assert Vector(s, [1, 2]) != Vector(VectorSpace((B, A)), [1, 2])
    assert Vector(s, [1, 2]) != "not a vector"


def test_vector_immutable():
    v = Vector(VectorSpace((A,)), [1.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.values = np.zeros(1)


# --------------------------------------------------------------------------- LinearMap


def test_linear_map_shape_checked():
    with pytest.raises(ValueError):
        LinearMap(VectorSpace((A, B)), VectorSpace((C,)), np.zeros((1, 2)))


def test_linear_map_from_action():
    ins = VectorSpace((A, B))
    outs = VectorSpace((C, D))
    action = {A: {D: 2.0}, B: {C: -1.0, D: 0.5}}
    m = LinearMap.from_action(ins, outs, lambda d: action[d])
    np.testing.assert_array_equal(m.matrix, [[0.0, 2.0], [-1.0, 0.5]])
    assert m.input_space == ins and m.output_space == outs


def test_linear_map_from_action_empty_output_is_zero_row():
    m = LinearMap.from_action(VectorSpace((A, B)), VectorSpace((C,)),
                              lambda d: {C: 1.0} if d == A else {})
    np.testing.assert_array_equal(m.matrix, [[1.0], [0.0]])


def test_linear_map_call_projects_input():
    m = LinearMap(VectorSpace((A, B)), VectorSpace((C, D)), np.array([[1.0, 2.0], [3.0, 4.0]]))
    # input lives in a different space: only a and b count, d is ignored
    v = Vector(VectorSpace((D, B, A)), [100.0, 1.0, 2.0])
    out = m(v)
    assert out.space == VectorSpace((C, D))
    # (a, b) = (2, 1): c = 2*1 + 1*3 = 5, d = 2*2 + 1*4 = 8
    np.testing.assert_array_equal(out.values, [5.0, 8.0])


def test_linear_map_in_spaces():
    m = LinearMap(VectorSpace((A, B)), VectorSpace((C,)), np.array([[2.0], [3.0]]))
    big_in = VectorSpace((D, B, ONE, A))
    big_out = VectorSpace((A, C, BOS))
    expected = np.zeros((4, 3))
    expected[3, 1] = 2.0  # a -> c
    expected[1, 1] = 3.0  # b -> c
    np.testing.assert_array_equal(m.in_spaces(big_in, big_out), expected)
    # an input space that misses b drops that row
    np.testing.assert_array_equal(m.in_spaces(VectorSpace((A,)), VectorSpace((C,))), [[2.0]])


def test_linear_map_add():
    m1 = LinearMap(VectorSpace((A, B)), VectorSpace((C,)), np.array([[1.0], [2.0]]))
    m2 = LinearMap(VectorSpace((B, D)), VectorSpace((C, A)), np.array([[10.0, 20.0], [30.0, 40.0]]))
    total = m1 + m2
    assert total.input_space.basis == (A, B, D)
    assert total.output_space.basis == (C, A)
    expected = np.array([
        [1.0, 0.0],
        [12.0, 20.0],
        [30.0, 40.0],
    ])
    np.testing.assert_array_equal(total.matrix, expected)
    # acting on a vector equals the sum of actions
    v = Vector(VectorSpace((A, B, D)), [1.0, -2.0, 0.5])
    np.testing.assert_allclose(total(v).values,
                               (m1(v) + m2(v)).project(total.output_space).values)


# --------------------------------------------------------------------------- BilinearForm


def test_bilinear_form_shape_checked():
    with pytest.raises(ValueError):
        BilinearForm(VectorSpace((A,)), VectorSpace((B, C)), np.zeros((2, 1)))


def test_bilinear_form_in_spaces():
    f = BilinearForm(VectorSpace((A, B)), VectorSpace((C,)), np.array([[2.0], [5.0]]))
    qs = VectorSpace((B, D, A))
    ks = VectorSpace((C, A))
    expected = np.zeros((3, 2))
    expected[2, 0] = 2.0
    expected[0, 0] = 5.0
    np.testing.assert_array_equal(f.in_spaces(qs, ks), expected)
    # query · M · key in the big spaces
    q = np.array([1.0, 7.0, 3.0])   # b=1, d=7, a=3
    k = np.array([4.0, 9.0])        # c=4, a=9
    assert q @ f.in_spaces(qs, ks) @ k == pytest.approx(3 * 2 * 4 + 1 * 5 * 4)


def test_bilinear_form_add_and_mul():
    f1 = BilinearForm(VectorSpace((A,)), VectorSpace((B,)), np.array([[1.0]]))
    f2 = BilinearForm(VectorSpace((C, A)), VectorSpace((B, D)), np.array([[2.0, 3.0], [4.0, 5.0]]))
    total = f1 + f2
    assert total.query_space.basis == (A, C)
    assert total.key_space.basis == (B, D)
    np.testing.assert_array_equal(total.matrix, [[5.0, 5.0], [2.0, 3.0]])
    scaled = total * 10
    np.testing.assert_array_equal(scaled.matrix, [[50.0, 50.0], [20.0, 30.0]])
    assert scaled.query_space == total.query_space and scaled.key_space == total.key_space
    np.testing.assert_array_equal((0.5 * total).matrix, [[2.5, 2.5], [1.0, 1.5]])
    np.testing.assert_array_equal(total.matrix, [[5.0, 5.0], [2.0, 3.0]])  # unchanged


def test_zeros_matrix_refuses_sizes_that_would_exhaust_memory():
    assert zeros_matrix(3, 4).shape == (3, 4) and not zeros_matrix(3, 4).any()
    with pytest.raises(MatrixTooLarge, match="weight matrix") as caught:
        zeros_matrix(MAX_MATRIX_ENTRIES // 1000 + 1, 1000)
    assert caught.value.shape == (MAX_MATRIX_ENTRIES // 1000 + 1, 1000)
