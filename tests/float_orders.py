"""x @ W in float32 with an explicit order of summation, for order-independence tests.

A BLAS kernel picks its own order (and the one on the test machine may never show
an order effect), so tests add the float32 products themselves, one float32
rounding per step, in several orders: sequential, reversed, pairwise (a tree),
descending (largest products first, so partial sums grow before they cancel) and
a random permutation; `ordered_mlp` can also permute an MLP's hidden units.
"""

from __future__ import annotations

import numpy as np

from craft.bases import VectorSpace
from craft.blocks import MLP

ORDERS = ("sequential", "reversed", "pairwise", "descending", "permuted")
F32 = np.float32
# Products held at once (n × rows × columns) before the rows are split into chunks.
CHUNK_ELEMENTS = 2_000_000


def ordered_matmul(x: np.ndarray, w: np.ndarray, order: str, seed: int = 0) -> np.ndarray:
    """x @ w in float32, each output the float32 sum of its products taken in `order`."""
    x32, w32 = np.asarray(x, F32), np.asarray(w, F32)
    rows = x32.reshape(-1, x32.shape[-1])
    step = max(1, CHUNK_ELEMENTS // max(1, w32.size))
    out = np.concatenate([_ordered_rows(rows[i:i + step], w32, order, seed)
                          for i in range(0, len(rows), step)] or [np.zeros((0, w32.shape[1]), F32)])
    return out.reshape(x32.shape[:-1] + (w32.shape[1],))


def _ordered_rows(rows: np.ndarray, w: np.ndarray, order: str, seed: int) -> np.ndarray:
    products = rows.T[:, :, None] * w[:, None, :]  # (n, rows, columns), float32 products
    if order == "reversed":
        products = products[::-1]
    elif order == "permuted":
        products = products[np.random.default_rng(seed).permutation(len(products))]
    elif order == "descending":
        products = -np.sort(-products, axis=0)
    elif order == "pairwise":
        return _tree_sum(products)
    elif order != "sequential":
        raise ValueError(f"unknown order {order!r}")
    total = np.zeros(products.shape[1:], F32)
    for term in products:
        total = total + term  # float32 + float32: one rounding per step
    return total


def _tree_sum(terms: np.ndarray) -> np.ndarray:
    while len(terms) > 1:
        if len(terms) % 2:
            terms = np.concatenate([terms, np.zeros_like(terms[:1])])
        terms = terms[0::2] + terms[1::2]
    return terms[0] if len(terms) else np.zeros(terms.shape[1:], F32)


def ordered_mlp(mlp: MLP, residual: VectorSpace, x: np.ndarray, order: str,
                permute_hidden: bool = False, seed: int = 0) -> np.ndarray:
    """The residual after `mlp` (x + relu(x @ W1) @ W2), every matmul and add in float32,
    summed in `order`, optionally with the hidden units in a random order."""
    first = mlp.first.in_spaces(residual, mlp.hidden_space)
    second = mlp.second.in_spaces(mlp.hidden_space, residual)
    if permute_hidden:
        shuffle = np.random.default_rng(seed + 1).permutation(mlp.hidden_space.dim)
        first, second = first[:, shuffle], second[shuffle]
    hidden = np.maximum(ordered_matmul(x, first, order, seed), F32(0))
    return np.asarray(x, F32) + ordered_matmul(hidden, second, order, seed)


def every_order(mlp: MLP, residual: VectorSpace, x: np.ndarray):
    """(name, residual after the MLP) for every explicit order, hidden units kept and
    permuted, and for the BLAS kernel numpy uses here (`MLP.forward`)."""
    x32 = np.asarray(x, F32)
    yield "blas", x32 + mlp.forward(residual, x32)
    for order in ORDERS:
        yield order, ordered_mlp(mlp, residual, x32, order)
        yield f"{order}, hidden permuted", ordered_mlp(mlp, residual, x32, order, True)
