"""One hooked forward pass in jax, shared by every circuit-discovery method.

Takes a `CompiledModel` and gives `HookedModel.run`: the forward of
compiler/forward.py, plus each writer's contribution (embeddings, each head's
result, each MLP's output) and per-slot patches. A slot is one reader input (a
head's q, k or v input, a layer's MLP input, the output); `alpha[b, w, r]` moves
slot r's copy of writer w's contribution towards its corrupted value, leaving
every other reader's view of w clean. With nothing patched, `run` reproduces
compiler/forward.py bit for bit (same operations in the same order).
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from compiler.forward import MASKED_LOGIT
from compiler.granularity import Slot, Writer, sites


@dataclasses.dataclass(frozen=True)
class Wiring:
    """Writers and slots in forward order (names as in compiler.granularity)."""

    writers: tuple[Writer, ...]
    slots: tuple[Slot, ...]

    @cached_property
    def writer_index(self) -> dict[str, int]:
        return {w.name: i for i, w in enumerate(self.writers)}

    @cached_property
    def slot_index(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.slots)}

    @cached_property
    def upstream(self) -> np.ndarray:
        """[W, R] bool: writer w runs before slot r (so the edge can exist)."""
        return np.array([[w.sublayer < s.sublayer for s in self.slots] for w in self.writers])

    def mask(self, edges) -> np.ndarray:
        """[W, R] float: 1 on the (writer, slot) pairs of `edges` (edge-graph attributes)."""
        out = np.zeros((len(self.writers), len(self.slots)), np.float32)
        for attrs in edges:
            for slot in attrs["slots"]:
                out[self.writer_index[attrs["writer"]], self.slot_index[slot]] = 1.0
        return out


class HookedModel:
    """A compiled model's forward with contributions exposed and slots patchable."""

    def __init__(self, model):
        self.model = model
        self.config = model.config
        writers, slots = sites(model.ground_truth)
        self.wiring = Wiring(tuple(writers), tuple(slots))
        self.weights = jax.tree_util.tree_map(jnp.asarray, model.params)
        self.run = jax.jit(self._run)

    def _run(self, weights, ids, valid, corrupt=None, alpha=None, slot_delta=None):
        """Forward outputs: logits [B, S, out], contributions [W, B, S, d], residuals.

        corrupt [W, B, S, d]: each writer's contribution on the corrupted input;
        alpha [B, W, R]: how far each slot's copy of each writer moves to it;
        slot_delta [R, B, S, d]: added to each slot's input (zeros, for gradients).
        """
        config = self.config
        seq = ids.shape[1]
        allowed = valid[:, None, None, :]
        if config.causal:
            allowed = allowed & jnp.tril(jnp.ones((seq, seq), bool))[None, None]
        embed = weights["token_embed"]["embeddings"][ids]
        pos = jnp.broadcast_to(weights["pos_embed"]["embeddings"][jnp.arange(seq)][None],
                               embed.shape)
        x = embed + pos
        live, residuals = [embed, pos], [x]
        patched = alpha is not None or slot_delta is not None
        next_slot = 0

        def deltas(count):
            """[count, B, S, d]: what the next `count` slots' inputs gain from their patches."""
            nonlocal next_slot
            r = slice(next_slot, next_slot + count)
            next_slot += count
            out = jnp.zeros((count,) + x.shape, x.dtype) if slot_delta is None else slot_delta[r]
            if alpha is not None:
                done = jnp.stack(live)
                out = out + jnp.einsum("bwr,wbsd->rbsd", alpha[:, :len(live), r],
                                       corrupt[:len(live)] - done)
            return out

        for i, layer in enumerate(config.layers):
            prefix = f"transformer/layer_{i}"
            if layer.num_heads:
                sides = deltas(3 * layer.num_heads) if patched else None
                out, results = _attention(weights, prefix, x, layer, allowed, sides)
                live.extend(results)
                x = x + out
            residuals.append(x)
            if layer.mlp_hidden:
                w1, w2 = weights[f"{prefix}/mlp/linear_1"], weights[f"{prefix}/mlp/linear_2"]
                pre = x @ w1["w"] + w1["b"]
                if patched:
                    pre = pre + deltas(1)[0] @ w1["w"]
                out = jax.nn.relu(pre) @ w2["w"] + w2["b"]
                live.append(out)
                x = x + out
            residuals.append(x)
        logits = x @ weights["unembed"]["w"]
        if patched:
            logits = logits + deltas(1)[0] @ weights["unembed"]["w"]
        return {"output": logits, "contributions": jnp.stack(live), "residuals": residuals}


def _attention(weights, prefix, x, layer, allowed, sides):
    """A layer's attention output (as compiler/forward.py) and each head's result."""
    batch, seq, d = x.shape
    heads, key_size, value_size = layer.num_heads, layer.key_size, layer.value_size
    projected = []
    for side, (name, size) in enumerate((("query", key_size), ("key", key_size),
                                         ("value", value_size))):
        p = weights[f"{prefix}/attn/{name}"]
        y = (x @ p["w"] + p["b"]).reshape(batch, seq, heads, size)
        if sides is not None:  # each head's own input delta through its own columns
            extra = sides[side::3]                                     # [H, B, S, d]
            w = p["w"].reshape(d, heads, size)
            y = y + jnp.einsum("hbsd,dhk->bshk", extra, w)
        projected.append(y)
    q, k, v = projected
    logits = jnp.einsum("bqhk,bshk->bhqs", q, k) / math.sqrt(key_size)
    logits = jnp.where(allowed, logits, MASKED_LOGIT)
    pattern = jax.nn.softmax(logits, axis=-1)
    z = jnp.einsum("bhqs,bshv->bqhv", pattern, v)
    o = weights[f"{prefix}/attn/linear"]
    out = z.reshape(batch, seq, heads * value_size) @ o["w"] + o["b"]
    results = jnp.einsum("bqhv,hvd->hbqd", z, o["w"].reshape(heads, value_size, d))
    return out, list(results)
