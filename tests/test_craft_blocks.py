"""craft.blocks: MLP, AttentionHead, MultiHead, Series and combine_mlps forward passes.

Each block is checked against a plain numpy computation on explicitly
embedded weight matrices (built here by hand from the spaces' indices).
"""

from __future__ import annotations

import numpy as np
import pytest

from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import MLP, AttentionHead, BlockInfo, MultiHead, Series, combine_mlps
from craft.maps import BilinearForm, LinearMap

INFO = BlockInfo(("test",), "test")


def dirs(name, n):
    return tuple(BasisDirection(name, i) for i in range(n))


def embed(residual, space, matrix_cols_space, matrix):
    """Hand-embedding: a (len(space), len(cols)) matrix into (residual, residual)."""
    out = np.zeros((residual.dim, residual.dim))
    for i, d in enumerate(space.basis):
        for j, e in enumerate(matrix_cols_space.basis):
            out[residual.basis.index(d), residual.basis.index(e)] = matrix[i, j]
    return out


def cols(residual, space):
    return [residual.basis.index(d) for d in space.basis]


def random_mlp(rng, reads, hidden_name, width, writes):
    hidden = VectorSpace(dirs(hidden_name, width))
    first = LinearMap(reads, hidden, rng.normal(size=(reads.dim, width)))
    second = LinearMap(hidden, writes, rng.normal(size=(width, writes.dim)))
    return MLP(first, second, INFO)


def manual_mlp(residual, mlp, x):
    xin = x[..., cols(residual, mlp.reads)]
    h = np.maximum(0.0, xin @ mlp.first.matrix)
    y = h @ mlp.second.matrix
    out = np.zeros(x.shape)
    out[..., cols(residual, mlp.writes)] = y
    return out


def manual_head(residual, head, x, valid=None, causal=False):
    q_idx = cols(residual, head.w_qk.query_space)
    k_idx = cols(residual, head.w_qk.key_space)
    v_idx = cols(residual, head.w_ov.input_space)
    o_idx = cols(residual, head.w_ov.output_space)
    batch, seq, _ = x.shape
    out = np.zeros(x.shape)
    for b in range(batch):
        for q in range(seq):
            scores = []
            keys = []
            for k in range(seq):
                if valid is not None and not valid[b, k]:
                    continue
                if causal and k > q:
                    continue
                keys.append(k)
                scores.append(x[b, q, q_idx] @ head.w_qk.matrix @ x[b, k, k_idx])
            scores = np.array(scores)
            w = np.exp(scores - scores.max())
            w /= w.sum()
            for weight, k in zip(w, keys):
                out[b, q, o_idx] += weight * (x[b, k, v_idx] @ head.w_ov.matrix)
    return out


def random_head(rng, qs, ks, vs, os, scale=1.0):
    return AttentionHead(BilinearForm(qs, ks, scale * rng.normal(size=(qs.dim, ks.dim))),
                         LinearMap(vs, os, rng.normal(size=(vs.dim, os.dim))), INFO)


RES = VectorSpace((BasisDirection("z"), ONE, *dirs("x", 3), BOS, *dirs("y", 2),
                   BasisDirection("w"), *dirs("u", 2)))


# --------------------------------------------------------------------------- MLP


def test_mlp_hand_computed_example():
    a, b, out = BasisDirection("a"), BasisDirection("b"), BasisDirection("out")
    reads = VectorSpace((a, b))
    hidden = VectorSpace(dirs("h", 2))
    writes = VectorSpace((out,))
    mlp = MLP(LinearMap(reads, hidden, np.array([[1.0, -1.0], [2.0, 1.0]])),
              LinearMap(hidden, writes, np.array([[3.0], [5.0]])), INFO)
    residual = VectorSpace((out, BasisDirection("other"), b, a))
    x = np.array([[[0.0, 9.0, 1.0, 2.0],     # a=2, b=1: h=(4, -1)->(4, 0): out=12
                   [7.0, 0.0, -1.0, 1.0],    # a=1, b=-1: h=(-1, -2)->0: out=0
                   [0.0, 0.0, 3.0, -1.0]]])  # a=-1, b=3: h=(5, 4): out=15+20=35
    y = mlp.forward(residual, x)
    expected = np.zeros_like(x)
    expected[0, :, 0] = [12.0, 0.0, 35.0]
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    assert mlp.reads == reads and mlp.writes == writes and mlp.hidden_space == hidden


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_random_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    mlp = random_mlp(rng, VectorSpace((dirs("x", 3)[2], ONE, dirs("x", 3)[0])), "h", 7,
                     VectorSpace((dirs("u", 2)[1], BasisDirection("w"))))
    x = rng.normal(size=(3, 5, RES.dim))
    y = mlp.forward(RES, x.astype(dtype))
    assert y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(y, manual_mlp(RES, mlp, x), rtol=tol, atol=tol)


def test_mlp_rejects_mismatched_hidden_spaces():
    a, b = BasisDirection("a"), BasisDirection("b")
    with pytest.raises(ValueError):
        MLP(LinearMap(VectorSpace((a,)), VectorSpace(dirs("h", 2)), np.ones((1, 2))),
            LinearMap(VectorSpace(dirs("g", 2)), VectorSpace((b,)), np.ones((2, 1))), INFO)


def test_mlp_writes_only_its_outputs():
    rng = np.random.default_rng(1)
    writes = VectorSpace((BasisDirection("w"),))
    mlp = random_mlp(rng, VectorSpace(dirs("x", 3)), "h", 4, writes)
    x = rng.normal(size=(2, 4, RES.dim))
    y = mlp.forward(RES, x)
    other = [i for i in range(RES.dim) if RES.basis[i] != BasisDirection("w")]
    assert np.all(y[..., other] == 0.0)


# --------------------------------------------------------------------------- AttentionHead


def test_attention_head_hand_computed_example():
    """Two keys with logits 0 and log 3: weights 1/4 and 3/4."""
    k, v, o = BasisDirection("k"), BasisDirection("v"), BasisDirection("o")
    residual = VectorSpace((ONE, k, v, o))
    head = AttentionHead(BilinearForm(VectorSpace((ONE,)), VectorSpace((k,)), np.array([[np.log(3)]])),
                         LinearMap(VectorSpace((v,)), VectorSpace((o,)), np.array([[2.0]])), INFO)
    x = np.array([[[1.0, 0.0, 10.0, 0.0],
                   [1.0, 1.0, 20.0, 0.0]]])
    y = head.forward(residual, x)
    expected = np.zeros_like(x)
    expected[0, :, 3] = 2.0 * (0.25 * 10.0 + 0.75 * 20.0)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # causal: query 0 sees only key 0
    yc = head.forward(residual, x, causal=True)
    np.testing.assert_allclose(yc[0, :, 3], [20.0, 35.0], rtol=1e-12)
    # valid mask: key 1 hidden
    yv = head.forward(residual, x, valid=np.array([[True, False]]))
    np.testing.assert_allclose(yv[0, :, 3], [20.0, 20.0], rtol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("use_valid", [False, True])
def test_attention_head_random_matches_numpy(causal, use_valid):
    rng = np.random.default_rng(2)
    qs = VectorSpace((ONE, dirs("x", 3)[1]))
    ks = VectorSpace((dirs("x", 3)[0], BOS, ONE))
    vs = VectorSpace((dirs("y", 2)[0], dirs("x", 3)[2]))
    os = VectorSpace((dirs("u", 2)[0], BasisDirection("w"), dirs("u", 2)[1]))
    head = random_head(rng, qs, ks, vs, os, scale=2.0)
    x = rng.normal(size=(3, 6, RES.dim))
    valid = None
    if use_valid:
        valid = np.ones((3, 6), dtype=bool)
        valid[1, 4:] = False
        valid[2, 2] = False
    y = head.forward(RES, x, valid, causal)
    np.testing.assert_allclose(y, manual_head(RES, head, x, valid, causal), rtol=1e-10, atol=1e-10)
    assert head.reads == VectorSpace((ONE, dirs("x", 3)[1], dirs("x", 3)[0], BOS,
                                      dirs("y", 2)[0], dirs("x", 3)[2]))
    assert head.writes == os


def test_attention_logits_masks():
    rng = np.random.default_rng(3)
    head = random_head(rng, VectorSpace((ONE,)), VectorSpace(dirs("x", 3)),
                       VectorSpace((ONE,)), VectorSpace((BasisDirection("w"),)))
    x = rng.normal(size=(1, 4, RES.dim)).astype(np.float32)
    valid = np.array([[True, True, False, True]])
    logits = head.logits(RES, x, valid, causal=True)
    assert logits.dtype == np.float32
    for q in range(4):
        for k in range(4):
            if k > q or k == 2:
                assert logits[0, q, k] <= -1e29
            else:
                assert logits[0, q, k] > -1e3
    # masked keys get exactly zero weight in float32
    y = head.forward(RES, x, valid, causal=True)
    y_manual = manual_head(RES, head, x.astype(np.float64), valid, causal=True)
    np.testing.assert_allclose(y, y_manual, rtol=1e-4, atol=1e-5)


def test_attention_float32_stays_float32():
    rng = np.random.default_rng(4)
    head = random_head(rng, VectorSpace((ONE,)), VectorSpace((ONE,)),
                       VectorSpace((ONE,)), VectorSpace((BasisDirection("w"),)))
    x = rng.normal(size=(1, 3, RES.dim)).astype(np.float32)
    assert head.forward(RES, x).dtype == np.float32


# --------------------------------------------------------------------------- MultiHead


def test_multihead_sums_heads():
    rng = np.random.default_rng(5)
    h1 = random_head(rng, VectorSpace((ONE, dirs("x", 3)[0])), VectorSpace((dirs("x", 3)[1],)),
                     VectorSpace((dirs("y", 2)[0],)), VectorSpace((BasisDirection("w"),)))
    h2 = random_head(rng, VectorSpace((dirs("x", 3)[2],)), VectorSpace((ONE, BOS)),
                     VectorSpace((dirs("x", 3)[0], ONE)),
                     VectorSpace((BasisDirection("w"), dirs("u", 2)[1])))
    x = rng.normal(size=(2, 5, RES.dim))
    valid = np.ones((2, 5), dtype=bool)
    valid[0, 3:] = False
    for causal in (False, True):
        y = MultiHead((h1, h2)).forward(RES, x, valid, causal)
        expected = manual_head(RES, h1, x, valid, causal) + manual_head(RES, h2, x, valid, causal)
        np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- Series


def test_series_applies_blocks_with_residual():
    """A head then an MLP reading the head's output, then an MLP reading both."""
    rng = np.random.default_rng(6)
    w, u0, u1 = BasisDirection("w"), dirs("u", 2)[0], dirs("u", 2)[1]
    head = random_head(rng, VectorSpace((ONE, dirs("x", 3)[0])), VectorSpace((dirs("x", 3)[1],)),
                       VectorSpace((dirs("y", 2)[0],)), VectorSpace((w,)))
    mlp1 = random_mlp(rng, VectorSpace((w, ONE)), "h1", 5, VectorSpace((u0, w)))
    mlp2 = random_mlp(rng, VectorSpace((u0, w)), "h2", 4, VectorSpace((u1,)))
    x = rng.normal(size=(2, 5, RES.dim))
    valid = np.ones((2, 5), dtype=bool)
    valid[1, 4] = False
    for causal in (False, True):
        r1 = x + manual_head(RES, head, x, valid, causal)
        r2 = r1 + manual_mlp(RES, mlp1, r1)
        r3 = r2 + manual_mlp(RES, mlp2, r2)
        y = Series((head, mlp1, mlp2)).forward(RES, x, valid, causal)
        np.testing.assert_allclose(y, r3 - x, rtol=1e-9, atol=1e-9)
    # without residual threading the result would differ (mlp2 reads mlp1's write)
    separate = (manual_head(RES, head, x) + manual_mlp(RES, mlp1, x) + manual_mlp(RES, mlp2, x))
    assert not np.allclose(Series((head, mlp1, mlp2)).forward(RES, x), separate)


def test_series_with_multihead_and_empty():
    rng = np.random.default_rng(7)
    h1 = random_head(rng, VectorSpace((ONE,)), VectorSpace(dirs("x", 3)),
                     VectorSpace((dirs("y", 2)[1],)), VectorSpace((BasisDirection("z"),)))
    h2 = random_head(rng, VectorSpace((BOS,)), VectorSpace((ONE,)),
                     VectorSpace((dirs("x", 3)[0],)), VectorSpace((BasisDirection("z"),)))
    mlp = random_mlp(rng, VectorSpace((BasisDirection("z"),)), "h", 3, VectorSpace((BasisDirection("w"),)))
    x = rng.normal(size=(1, 4, RES.dim))
    r1 = x + manual_head(RES, h1, x) + manual_head(RES, h2, x)
    r2 = r1 + manual_mlp(RES, mlp, r1)
    np.testing.assert_allclose(Series((MultiHead((h1, h2)), mlp)).forward(RES, x), r2 - x,
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(Series(()).forward(RES, x), np.zeros_like(x))


# --------------------------------------------------------------------------- combine_mlps


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_combine_mlps_equals_sum(dtype):
    rng = np.random.default_rng(8)
    x0, x1, x2 = dirs("x", 3)
    w, u0, u1 = BasisDirection("w"), *dirs("u", 2)
    m1 = random_mlp(rng, VectorSpace((x0, ONE)), "h1", 3, VectorSpace((w, u0)))
    m2 = random_mlp(rng, VectorSpace((x1, x0)), "h2", 4, VectorSpace((u1, w)))   # shares x0 and w
    m3 = random_mlp(rng, VectorSpace((x2,)), "h3", 2, VectorSpace((u0,)))
    combined = combine_mlps([m1, m2, m3])
    assert combined.hidden_space.dim == 3 + 4 + 2
    assert combined.info.exprs == ("test", "test", "test")
    x = rng.normal(size=(2, 6, RES.dim)).astype(dtype)
    expected = manual_mlp(RES, m1, x) + manual_mlp(RES, m2, x) + manual_mlp(RES, m3, x)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(combined.forward(RES, x), expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(combined.forward(RES, x),
                               sum(m.forward(RES, x) for m in (m1, m2, m3)), rtol=tol, atol=tol)


def test_combine_single_mlp():
    rng = np.random.default_rng(9)
    m = random_mlp(rng, VectorSpace(dirs("x", 3)), "h", 3, VectorSpace((BasisDirection("w"),)))
    x = rng.normal(size=(1, 3, RES.dim))
    np.testing.assert_allclose(combine_mlps([m]).forward(RES, x), manual_mlp(RES, m, x),
                               rtol=1e-12, atol=1e-12)
