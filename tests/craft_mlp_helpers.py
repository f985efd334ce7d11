"""Residual builders shared by the craft MLP tests.

Position 0 of every batch is BOS (`bos` = 1, everything else 0); other positions
have `one` = 1. A categorical value v of label L is the one-hot BasisDirection(L, v).
"""

from __future__ import annotations

import numpy as np

from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import BlockInfo

INFO = BlockInfo(("f",), "map")
DTYPES = [np.float64, np.float32]
# Exactness tolerance for lookups (pure 0/1 arithmetic on small integers).
EXACT = {np.float64: 1e-12, np.float32: 1e-6}


def build(residual: VectorSpace, rows: list[dict[BasisDirection, float]], dtype) -> np.ndarray:
    """Residual of shape (1, 1 + len(rows), dim): BOS first, then one row per dict."""
    x = np.zeros((1, 1 + len(rows), residual.dim), dtype=dtype)
    x[0, 0, residual.index[BOS]] = 1.0
    for p, row in enumerate(rows, start=1):
        x[0, p, residual.index[ONE]] = 1.0
        for d, v in row.items():
            x[0, p, residual.index[d]] += v
    return x


def read(residual: VectorSpace, y: np.ndarray, space: VectorSpace) -> np.ndarray:
    return y[0][:, [residual.index[d] for d in space.basis]].astype(np.float64)


def onehot(space: VectorSpace, value) -> np.ndarray:
    out = np.zeros(space.dim)
    if value is not None:
        out[[d.value for d in space.basis].index(value)] = 1.0
    return out


def others_zero(residual, y, allowed: VectorSpace):
    keep = [i for i, d in enumerate(residual.basis) if d not in allowed]
    return np.all(y[..., keep] == 0.0)
