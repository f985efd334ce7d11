"""Circuit-discovery patches as hooks on the model's one forward (rasp_runtime.forward).

Takes a `CompiledModel` and gives `HookedModel.run`: the model's forward with hooks
that read each writer's contribution (embeddings, each head's result, each MLP's
output) and patch reader slots. A slot is one reader input (a head's q, k or v
input, a layer's MLP input, the output); `alpha[b, w, r]` moves slot r's copy of
writer w's contribution towards its corrupted value, leaving every other reader's
view of w clean. A slot's input delta is added through that reader's own weights at
its projection (`attn.hook_q/k/v`, `mlp.hook_pre`, `unembed.hook_out`): linear, so the
same as patching the input, and it leaves the clean computation's floats untouched.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

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
    """A compiled model's forward with contributions read and slots patched by hooks."""

    def __init__(self, model):
        self.model = model
        self.config = model.config
        self.truth = model.ground_truth
        writers, slots = sites(self.truth)
        self.wiring = Wiring(tuple(writers), tuple(slots))
        self.weights = jax.tree_util.tree_map(jnp.asarray, model.params)
        self.run = jax.jit(self._run)

    def _run(self, weights, ids, valid, corrupt=None, alpha=None, slot_delta=None):
        """Forward outputs: logits [B, S, out], contributions [W, B, S, d], residuals.

        corrupt [W, B, S, d]: each writer's contribution on the corrupted input;
        alpha [B, W, R]: how far each slot's copy of each writer moves to it;
        slot_delta [R, B, S, d]: added to each slot's input (zeros, for gradients).
        """
        patches = _Patches(weights, self.config, corrupt, alpha, slot_delta)
        out = self.model.forward.apply(weights, ids, valid, patches.hooks())
        return {"output": out["output"], "contributions": jnp.stack(patches.live),
                "residuals": out["residuals"]}


class _Patches:
    """The hooks of one traced run: they collect the writers' contributions in forward
    order and add each slot's delta (from `alpha` and `slot_delta`) where it is read."""

    def __init__(self, weights, config, corrupt, alpha, slot_delta):
        self.weights, self.config = weights, config
        self.corrupt, self.alpha, self.slot_delta = corrupt, alpha, slot_delta
        self.live: list = []     # contributions so far, in writer order
        self.next_slot = 0
        self.sides = None        # this layer's q/k/v input deltas [3H, B, S, d]

    def hooks(self) -> dict:
        """Hook name -> function, for every layer of the model."""
        patched = self.alpha is not None or self.slot_delta is not None
        hooks = {"hook_embed": self._read, "hook_pos_embed": self._read}
        for i, layer in enumerate(self.config.layers):
            prefix = f"transformer/layer_{i}"
            if layer.num_heads:
                hooks[f"blocks.{i}.attn.hook_result"] = self._read_heads
                if patched:
                    for side, name in enumerate(("q", "k", "v")):
                        hooks[f"blocks.{i}.attn.hook_{name}"] = self._head_input(
                            prefix, layer.num_heads, side)
            if layer.mlp_hidden:
                hooks[f"blocks.{i}.hook_mlp_out"] = self._read
                if patched:
                    hooks[f"blocks.{i}.mlp.hook_pre"] = self._through(f"{prefix}/mlp/linear_1")
        if patched:
            hooks["unembed.hook_out"] = self._through("unembed")
        return hooks

    def _read(self, x):
        self.live.append(x)
        return x

    def _read_heads(self, result):
        self.live.extend(jnp.moveaxis(result, 2, 0))  # [B, S, H, d] -> H × [B, S, d]
        return result

    def _deltas(self, count: int):
        """[count, B, S, d]: what the next `count` slots' inputs gain from their patches."""
        r = slice(self.next_slot, self.next_slot + count)
        self.next_slot += count
        shape = (count,) + self.live[0].shape
        out = jnp.zeros(shape, self.live[0].dtype) if self.slot_delta is None \
            else self.slot_delta[r]
        if self.alpha is not None:
            done = jnp.stack(self.live)
            out = out + jnp.einsum("bwr,wbsd->rbsd", self.alpha[:, :len(self.live), r],
                                   self.corrupt[:len(self.live)] - done)
        return out

    def _head_input(self, prefix: str, heads: int, side: int):
        """Adds each head's own q/k/v input delta through its own columns."""
        name = ("query", "key", "value")[side]

        def hook(y):
            if side == 0:  # one delta computation per layer, for its 3H slots
                self.sides = self._deltas(3 * heads)
            w = self.weights[f"{prefix}/attn/{name}"]["w"]
            w = w.reshape(w.shape[0], heads, y.shape[-1])
            return y + jnp.einsum("hbsd,dhk->bshk", self.sides[side::3], w)
        return hook

    def _through(self, module: str):
        """Adds the next slot's input delta through `module`'s weights."""
        return lambda y: y + self._deltas(1)[0] @ self.weights[module]["w"]
