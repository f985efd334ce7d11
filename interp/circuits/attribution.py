"""Gradient methods on the hooked forward: edge attribution patching (EAP) and EAP-IG.

Takes a `Dataset` and gives `{(upstream, downstream): float}`. An edge w -> r
is scored by (corrupt_w − clean_w) · ∂objective/∂input_r, summed over its
slots and positions, absolute value per pair, mean over pairs. EAP takes the
gradient on the clean run (one backward pass); EAP-IG averages it over runs
whose embeddings are interpolated from clean to corrupt.

The objective is the clean answer's log-probability summed over positions
(numerical output: the output value). KL and MSE against the clean run, the
patching metrics, have zero gradient on the clean run, so a first-order method
would score every edge 0 with them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from interp.circuits.patching import scorable_edges

IG_STEPS = 8


def objective(model, clean_logits, logits, scored) -> jnp.ndarray:
    """Per pair: Σ over scored positions of log p(clean answer) (or the numerical value)."""
    scored = jnp.asarray(scored, logits.dtype)
    if model.config.output_numerical:
        return jnp.sum(logits[..., 0] * scored, axis=-1)
    if logits.shape[-1] == 0:
        return jnp.zeros(logits.shape[0])
    answer = jnp.argmax(clean_logits, axis=-1)
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), answer[..., None], -1)
    return jnp.sum(log_p[..., 0] * scored, axis=-1)


def slot_gradients(dataset, t: float) -> jnp.ndarray:
    """[R, P, S, d]: ∂objective/∂(slot input) with embeddings at clean + t·(corrupt − clean)."""
    hooked, a = dataset.hooked, dataset.arrays
    wiring = hooked.wiring
    if not hasattr(hooked, "_slot_grad"):
        embeds = np.zeros((len(wiring.writers), len(wiring.slots)), np.float32)
        embeds[[i for i, w in enumerate(wiring.writers) if w.sublayer < 0]] = 1.0
        embeds *= wiring.upstream

        def total(delta, weights, ids, valid, corrupt, clean_logits, scored, t):
            alpha = jnp.broadcast_to(t * embeds, (ids.shape[0],) + embeds.shape)
            out = hooked._run(weights, ids, valid, corrupt=corrupt, alpha=alpha,
                              slot_delta=delta)["output"]
            return jnp.sum(objective(hooked.model, clean_logits, out, scored))

        hooked._slot_grad = jax.jit(jax.grad(total))
    clean = dataset.clean_run
    zeros = jnp.zeros((len(wiring.slots),) + clean["contributions"].shape[1:])
    return hooked._slot_grad(zeros, hooked.weights, a["clean"], a["valid"],
                             dataset.corrupt_run["contributions"], clean["output"],
                             a["scored"], jnp.float32(t))


def _edge_scores(dataset, granularity, gradient) -> dict[tuple[str, str], float]:
    wiring = dataset.hooked.wiring
    difference = dataset.corrupt_run["contributions"] - dataset.clean_run["contributions"]
    per_pair = np.asarray(jnp.einsum("wpsd,rpsd->pwr", difference, gradient))  # [P, W, R]
    scores = {}
    for u, v, attrs in scorable_edges(dataset.hooked.model.ground_truth, granularity):
        w = wiring.writer_index[attrs["writer"]]
        slots = [wiring.slot_index[s] for s in attrs["slots"]]
        scores[(u, v)] = float(np.mean(np.abs(per_pair[:, w, slots].sum(axis=-1))))
    return scores


def eap(dataset, granularity: str = "component") -> dict[tuple[str, str], float]:
    """Edge attribution patching: one backward pass on the clean inputs."""
    return _edge_scores(dataset, granularity, slot_gradients(dataset, 0.0))


def eap_ig(dataset, granularity: str = "component",
           steps: int = IG_STEPS) -> dict[tuple[str, str], float]:
    """EAP with integrated gradients: the gradient averaged at t = 1/steps, ..., 1."""
    gradient = sum(slot_gradients(dataset, k / steps) for k in range(1, steps + 1)) / steps
    return _edge_scores(dataset, granularity, gradient)
