"""A small baseline sparse autoencoder (jax + optax, L1 penalty) on narrow residuals.

`narrow_activations(compressed, inputs, layer)` collects one residual's vectors
at token positions; `train_sae` fits ReLU codes with unit-norm decoder rows,
whose `directions` `interp.compress_truth.score_dictionary` scores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class SparseAutoencoder:
    """codes = relu((x − b_dec)·W_enc + b_enc); x̂ = codes·D + b_dec, D's rows unit-norm."""

    encoder: np.ndarray       # dim × latents
    encoder_bias: np.ndarray  # latents
    decoder: np.ndarray       # latents × dim, rows of unit norm
    decoder_bias: np.ndarray  # dim
    losses: tuple[float, ...] = ()

    @property
    def directions(self) -> np.ndarray:
        """The decoder rows: one candidate feature direction per latent."""
        return self.decoder

    def encode(self, x: np.ndarray) -> np.ndarray:
        """The sparse codes of activations x (n × dim)."""
        return np.maximum((x - self.decoder_bias) @ self.encoder + self.encoder_bias, 0.0)


def narrow_activations(compressed, inputs: Sequence[Sequence[Any]], layer: int) -> np.ndarray:
    """The narrow residual `layer` (as in `apply(...).residuals`) at every token position
    of `inputs` (without BOS), stacked: (positions, dim)."""
    from rasp_runtime.interventions import run_batch
    residual = run_batch(compressed, [[compressed.config.bos, *xs] for xs in inputs])[
        "residuals"][layer]
    return np.concatenate([residual[row, 1:len(xs) + 1] for row, xs in enumerate(inputs)])


def _unit_rows(d):
    return d / jnp.maximum(jnp.linalg.norm(d, axis=1, keepdims=True), 1e-8)


def train_sae(activations: np.ndarray, latents: int, *, l1: float = 1e-2, steps: int = 3000,
              batch_size: int = 256, learning_rate: float = 3e-3,
              seed: int = 0) -> SparseAutoencoder:
    """Fit an SAE by Adam on minibatches: loss = ‖x − x̂‖² + l1·‖codes‖₁ (means over
    the batch). Deterministic for a seed."""
    import optax

    x_all = jnp.asarray(activations, jnp.float32)
    dim = x_all.shape[1]
    k_dec, k_batches = jax.random.split(jax.random.PRNGKey(seed))
    decoder = _unit_rows(jax.random.normal(k_dec, (latents, dim)))
    params = {"encoder": decoder.T, "encoder_bias": jnp.zeros(latents),
              "decoder": decoder, "decoder_bias": x_all.mean(0)}
    optimizer = optax.adam(learning_rate)
    state = optimizer.init(params)

    def loss_fn(p, x):
        codes = jax.nn.relu((x - p["decoder_bias"]) @ p["encoder"] + p["encoder_bias"])
        recon = codes @ _unit_rows(p["decoder"]) + p["decoder_bias"]
        return ((recon - x) ** 2).sum(-1).mean() + l1 * jnp.abs(codes).sum(-1).mean()

    @jax.jit
    def step(p, state, key):
        rows = jax.random.randint(key, (batch_size,), 0, x_all.shape[0])
        loss, grad = jax.value_and_grad(loss_fn)(p, x_all[rows])
        updates, state = optimizer.update(grad, state, p)
        return optax.apply_updates(p, updates), state, loss

    losses = []
    for key in jax.random.split(k_batches, steps):
        params, state, loss = step(params, state, key)
        losses.append(float(loss))
    return SparseAutoencoder(np.asarray(params["encoder"]), np.asarray(params["encoder_bias"]),
                             np.asarray(_unit_rows(params["decoder"])),
                             np.asarray(params["decoder_bias"]), tuple(losses))
