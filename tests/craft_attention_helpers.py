"""Residual builders, selections and checks shared by the craft attention tests."""

from __future__ import annotations

import numpy as np

from craft.attention import numerical_ov, predicate_form
from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import BlockInfo


INFO = BlockInfo(("agg",), "aggregate")
SIZES = [5, 16, 64, 256]
INDEX_SIZES = [5, 16, 64]
F32 = np.float32
EPS32 = 2.0 ** -24

VOCAB = ["a", "b", "c", "d", "e"]
TOKENS = VectorSpace.from_values("tokens", VOCAB)
AGG = VectorSpace.from_values("agg", list(reversed(VOCAB)) + ["dflt"])   # own order on purpose
VAL = BasisDirection("val")
MEAN = BasisDirection("mean")
MASS = BasisDirection("agg.selected")
JUNK = BasisDirection("junk")
NUMTOK_VALUES = [-2.5, 0.0, 1.0, 4.0, 10.0]
NUMTOK = VectorSpace.from_values("numtok", NUMTOK_VALUES)

# Class selector: key classes 0 (one key), 1 (two keys), 2 (the rest), None (some keys).
KC = VectorSpace.from_values("kc", [2, 0, 1])
QC_VALUES = ["one", "two", "all", "nothing", "rest", "nones"]
QC = VectorSpace.from_values("qc", QC_VALUES)
QUERY_CYCLE = QC_VALUES + [None]


def class_pred(k, q):
    """selected(key class, query class); None is a value on both sides."""
    return {"one": k == 0, "two": k == 1, "all": True, "nothing": False, "rest": k == 2,
            "nones": k is None, None: k in (1, None)}[q]


def key_classes(n):
    out = []
    for j in range(n):
        if j == 1:
            out.append(0)
        elif j in (0, 3):
            out.append(1)
        elif j % 5 == 4:
            out.append(None)
        else:
            out.append(2)
    return out


def query_classes(n):
    return [QUERY_CYCLE[i % len(QUERY_CYCLE)] for i in range(n)]


def class_selection():
    return predicate_form(QC, KC, class_pred)


def indices_space(n):
    return VectorSpace.from_values("indices", range(n))


def residual_space(n, with_indices):
    base = VectorSpace((JUNK, VAL, ONE)).join(TOKENS, AGG, KC, QC, NUMTOK,
                                              VectorSpace((MEAN, BOS, MASS)))
    return indices_space(n).join(base) if with_indices else base


# --------------------------------------------------------------------------- helpers


def fill(residual, n, tokens=None, vals=None, numtoks=None, classes=False, pads=0,
         dtype=F32, pad_garbage=None):
    """Residual (1, 1 + n + pads, dim): BOS, n real positions, pads. Lists are per real position."""
    x = np.zeros((1, 1 + n + pads, residual.dim), dtype=dtype)
    x[0, 0, residual.index[BOS]] = 1.0
    x[0, :, residual.index[JUNK]] = 7.0   # an unrelated direction everywhere
    kcs, qcs = key_classes(n), query_classes(n)
    for i in range(n):
        p = i + 1
        x[0, p, residual.index[ONE]] = 1.0
        index_dir = BasisDirection("indices", i)
        if index_dir in residual:
            x[0, p, residual.index[index_dir]] = 1.0
        if classes:
            if kcs[i] is not None:
                x[0, p, residual.index[BasisDirection("kc", kcs[i])]] = 1.0
            if qcs[i] is not None:
                x[0, p, residual.index[BasisDirection("qc", qcs[i])]] = 1.0
        if tokens is not None and tokens[i] is not None:
            x[0, p, residual.index[BasisDirection("tokens", tokens[i])]] = 1.0
        if vals is not None:
            x[0, p, residual.index[VAL]] = vals[i]
        if numtoks is not None and numtoks[i] is not None:
            x[0, p, residual.index[BasisDirection("numtok", numtoks[i])]] = 1.0
    if pads and pad_garbage is not None:
        x[0, 1 + n:] = pad_garbage
    return x


def col(residual, y, direction, b=0):
    return y[b, :, residual.index[direction]].astype(np.float64)


def cols(residual, y, space, b=0):
    return y[b][:, [residual.index[d] for d in space.basis]].astype(np.float64)


def onehot(space, value):
    out = np.zeros(space.dim)
    if value is not None:
        out[[d.value for d in space.basis].index(value)] = 1.0
    return out


def tol(w, scale=1.0):
    return 1e-6 + 2 * w * EPS32 * scale


def selected_keys(query_vals, key_vals, pred):
    """For each real query i, the real keys j with pred(key_val[j], query_val[i])."""
    return [[j for j, k in enumerate(key_vals) if pred(k, q)] for q in query_vals]


def idx_pred(fn):
    """A predicate on index values that tolerates None (indices are never None here)."""
    return lambda k, q: k is not None and q is not None and fn(k, q)


PREDICATES = {
    "eq": idx_pred(lambda k, q: k == q),                     # 1 key
    "pair": idx_pred(lambda k, q: k // 2 == q // 2),         # 2 keys (1 for a lone last one)
    "all": lambda k, q: True,                                # N keys
    "none": lambda k, q: False,                              # nothing
    "leq": idx_pred(lambda k, q: k <= q),                    # 1..N keys
    "lt": idx_pred(lambda k, q: k < q),                      # 0..N-1 keys
    "next": idx_pred(lambda k, q: k == q + 1),               # 1 key, none for the last
}


def index_selection(n, name):
    space = indices_space(n)
    return predicate_form(space, space, PREDICATES[name])


def index_selected(n, name):
    return selected_keys(range(n), range(n), PREDICATES[name])


def class_selected(n):
    return selected_keys(query_classes(n), key_classes(n), class_pred)


def mean_ov():
    return numerical_ov(VectorSpace((VAL,)), MEAN, lambda d: 1.0)


def random_vals(n, seed, scale=10.0):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(-scale, scale, size=n), 2).astype(F32)


def check_only_writes(residual, y, allowed):
    keep = [i for i, d in enumerate(residual.basis) if d not in allowed]
    assert np.all(y[..., keep] == 0.0)


def check_means(got, vals, sel, default=0.0, label=""):
    """got[1 + i] == mean of vals over sel[i] (default when empty); got[0] (BOS) ≈ 0."""
    v64 = np.asarray(vals, dtype=np.float64)
    assert abs(got[0]) < 1e-6, f"{label}: BOS position wrote {got[0]}"
    scale = float(np.abs(v64).max())
    for i, keys in enumerate(sel):
        expected = float(v64[keys].mean()) if keys else default
        assert abs(got[i + 1] - expected) <= tol(len(keys), scale), (
            f"{label}: query {i} with {len(keys)} selected: got {got[i + 1]}, expected {expected}")


def check_onehots(got, expected_values, counts, label=""):
    assert np.all(np.abs(got[0]) < 1e-6), f"{label}: BOS position wrote {got[0]}"
    for i, (value, w) in enumerate(zip(expected_values, counts)):
        np.testing.assert_allclose(got[i + 1], onehot(AGG, value), atol=tol(w), rtol=0,
                                   err_msg=f"{label}: query {i}, {w} selected")
