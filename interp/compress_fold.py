"""Folding a projection W (dim × d_model) into a compiled model's parameters.

`fold(params, W)` gives ordinary haiku parameters of width dim: whatever wrote
x into the residual now writes x·Wᵀ, whatever read x now reads z·W. The same
function serves training (differentiable in W) and the final model
(`fold_numpy`), so the saved transformer is exactly the one that was trained.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from rasp_runtime.config import ModelConfig, Params

# Module leaf names (the last part of a haiku module path) by how they touch the residual.
EMBEDDINGS = ("token_embed", "pos_embed")     # rows are written into the residual
READERS = ("query", "key", "value", "linear_1", "unembed")  # w: (d_model, out)
WRITERS = ("linear", "linear_2")              # w: (in, d_model), b: (d_model,)


def fold(params: Params, projection) -> Params:
    """The parameters of the narrow model: W inserted at every residual read and write.

    jax arrays in and out; differentiable in `projection` (dim × d_model).
    """
    w = jnp.asarray(projection, jnp.float32)

    def mm(a, b):  # full float32 precision on every backend: exactness matters
        return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)

    folded: Params = {}
    for module, weights in params.items():
        leaf = module.rsplit("/", 1)[-1]
        if leaf in EMBEDDINGS:
            folded[module] = {"embeddings": mm(weights["embeddings"], w.T)}
        elif leaf in READERS:
            folded[module] = {**weights, "w": mm(w, weights["w"])}
        elif leaf in WRITERS:
            folded[module] = {"w": mm(weights["w"], w.T), "b": mm(weights["b"][None], w.T)[0]}
        else:
            raise ValueError(f"cannot fold parameter module {module!r}: it is neither an "
                             "embedding nor a known residual reader or writer")
    return folded


def fold_numpy(params: Params, projection: np.ndarray) -> Params:
    """`fold` with numpy float32 arrays out (the compressed model's parameters)."""
    folded = jax.jit(fold)(params, jnp.asarray(projection, jnp.float32))
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), folded)


def narrow_config(config: ModelConfig, dim: int) -> ModelConfig:
    """The original config with the residual width set to `dim`."""
    return dataclasses.replace(config, d_model=dim)


def narrow_labels(dim: int) -> list[str]:
    """Residual labels of the narrow stream: "narrow:0" … "narrow:{dim-1}"."""
    return [f"narrow:{i}" for i in range(dim)]


def initial_projection(key: jax.Array, dim: int, d_model: int) -> jax.Array:
    """A random W (dim × d_model) with orthonormal rows: W·Wᵀ = I, so at dim = d_model
    the folded model is exact, and below it Wᵀ·W is a random orthogonal projection."""
    gaussian = jax.random.normal(key, (d_model, d_model), jnp.float32)
    q, r = jnp.linalg.qr(gaussian)
    q = q * jnp.sign(jnp.diag(r))[None]  # the sign convention makes q Haar-distributed
    return q[:, :dim].T
