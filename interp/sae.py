"""A small baseline sparse autoencoder (jax + optax, L1 penalty) on narrow residuals.

`narrow_activations(compressed, inputs, layer)` collects one residual's vectors
at token positions; `train_sae` fits ReLU codes with unit-norm decoder rows,
whose `directions` `interp.compress_truth.score_dictionary` scores.
`train_sae_lens` trains the same kind of dictionary with SAELens 6 instead: SAELens
needs TransformerLens < 4, so it runs in a venv of its own (`make sae-lens-venv`),
on the activations we cache, exported to an .npz (SAELens's own SAETrainer, fed
batches from that array: no TransformerLens model, no hub download).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from interp.extras import MissingExtraError
from rasp.errors import RaspError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAE_LENS_PYTHON = os.path.join(ROOT, ".venvs", "sae-lens", "bin", "python")
SAE_LENS_TRAINER = os.path.join(ROOT, "interp", "sae_lens_train.py")


@dataclasses.dataclass(frozen=True)
class SparseAutoencoder:
    """codes = relu((x − b_dec)·W_enc + b_enc); x̂ = codes·D + b_dec, D's rows unit-norm."""

    encoder: np.ndarray       # dim × latents
    encoder_bias: np.ndarray  # latents
    decoder: np.ndarray       # latents × dim, rows of unit norm
    decoder_bias: np.ndarray  # dim
    losses: tuple[float, ...] = ()
    top_k: int | None = None  # a TopK SAE keeps only the k largest codes per row

    @property
    def directions(self) -> np.ndarray:
        """The decoder rows: one candidate feature direction per latent."""
        return self.decoder

    def encode(self, x: np.ndarray) -> np.ndarray:
        """The sparse codes of activations x (n × dim)."""
        codes = np.maximum((x - self.decoder_bias) @ self.encoder + self.encoder_bias, 0.0)
        if self.top_k is not None and self.top_k < codes.shape[1]:
            kth = np.sort(codes, axis=1)[:, -self.top_k][:, None]
            codes = np.where(codes >= kth, codes, 0.0)
        return codes


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


def train_sae_lens(activations: np.ndarray, latents: int, *, l1: float = 1e-2,
                   k: int | None = None, steps: int = 3000, batch_size: int = 256,
                   learning_rate: float = 3e-3, seed: int = 0,
                   python: str = SAE_LENS_PYTHON) -> SparseAutoencoder:
    """Fit an SAE with SAELens 6 (its SAETrainer) on `activations` (n × dim): a ReLU SAE
    with an L1 penalty `l1`, or a TopK SAE keeping `k` codes when k is given."""
    spec = sae_lens_spec(latents, l1=l1, k=k, steps=steps, batch_size=batch_size,
                         learning_rate=learning_rate, seed=seed)
    return train_sae_lens_many(activations, [spec], python=python)[0]


def sae_lens_spec(latents: int, *, l1: float = 1e-2, k: int | None = None,
                  steps: int = 3000, batch_size: int = 256, learning_rate: float = 3e-3,
                  seed: int = 0) -> dict:
    """One run for `train_sae_lens_many` (the arguments of `train_sae_lens`)."""
    return {"latents": latents, "architecture": "topk" if k else "standard", "k": k,
            "l1": l1, "steps": steps, "batch_size": batch_size,
            "learning_rate": learning_rate, "seed": seed}


def train_sae_lens_many(activations: np.ndarray, specs: Sequence[dict], *,
                        python: str = SAE_LENS_PYTHON) -> list[SparseAutoencoder]:
    """One SAELens SAE per spec (`sae_lens_spec`) on the same activations, in one process.

    Runs interp/sae_lens_train.py in the sae-lens venv (`python`) on an .npz of the
    activations and reads the weights back from an .npz (no pickle). Decoder rows are
    rescaled to unit norm, the encoder to match (the reconstructions are unchanged).
    """
    if not os.path.exists(python):
        raise MissingExtraError(f"SAELens runs in a venv of its own, not found at {python}:"
                                " build it with `make sae-lens-venv`")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, name) for name in ("activations.npz", "specs.json",
                                                      "saes.npz")]
        np.savez(paths[0], activations=np.asarray(activations, np.float32))
        with open(paths[1], "w") as f:
            json.dump(list(specs), f)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
               "TQDM_DISABLE": "1"}
        run = subprocess.run([python, "-P", SAE_LENS_TRAINER, *paths], env=env,
                             capture_output=True, text=True)
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise RaspError(f"the SAELens trainer failed: {last}")
        with np.load(paths[2], allow_pickle=False) as weights:
            saved = {name: weights[name] for name in weights.files}
    saes = []
    for i, spec in enumerate(specs):
        w_dec, b_dec, w_enc, b_enc = (saved[f"{i}/{n}"] for n in ("W_dec", "b_dec", "W_enc",
                                                                  "b_enc"))
        norms = np.maximum(np.linalg.norm(w_dec, axis=1), 1e-8)
        saes.append(SparseAutoencoder(w_enc * norms, b_enc * norms, w_dec / norms[:, None],
                                      b_dec, top_k=spec["k"]))
    return saes
