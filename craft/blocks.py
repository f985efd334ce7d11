"""Transformer blocks on named spaces, each with a numpy forward pass.

A block reads some residual directions and writes others. `forward(residual_space,
x)` takes residual vectors of shape (batch, seq, residual_space.dim) and returns
what the block adds to the residual. Every block carries a `BlockInfo`: the RASP
expressions it implements and what it reads and writes (the ground truth).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from craft.bases import VectorSpace, join_spaces
from craft.maps import BilinearForm, LinearMap

# Padded keys get this logit: exp(MASKED_LOGIT - max) is exactly 0 in float32.
MASKED_LOGIT = -1e30


@dataclasses.dataclass(frozen=True)
class BlockInfo:
    """What a block implements, for ground truth and error messages.

    Attributes:
      exprs: labels of the RASP expressions the block computes.
      op: operation kind ("aggregate", "selector_width", "map", "sequence_map", ...).
      query, key, value: for attention, the labels of the SOps feeding each side.
      predicate: for attention, a readable description of the selector.
    """

    exprs: tuple[str, ...]
    op: str
    query: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    value: tuple[str, ...] = ()
    predicate: str | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class MLP:
    """Two-layer ReLU network without biases: out = relu(x @ first) @ second.

    Constant offsets come through the `one` direction, which is 0 at BOS, so an
    MLP whose inputs are zero at BOS writes nothing there.
    """

    first: LinearMap
    second: LinearMap
    info: BlockInfo

    def __post_init__(self):
        if self.first.output_space != self.second.input_space:
            raise ValueError("MLP hidden spaces of the two layers differ")

    @property
    def reads(self) -> VectorSpace:
        return self.first.input_space

    @property
    def writes(self) -> VectorSpace:
        return self.second.output_space

    @property
    def hidden_space(self) -> VectorSpace:
        return self.first.output_space

    def forward(self, residual_space: VectorSpace, x: np.ndarray) -> np.ndarray:
        first = self.first.in_spaces(residual_space, self.hidden_space).astype(x.dtype)
        second = self.second.in_spaces(self.hidden_space, residual_space).astype(x.dtype)
        return np.maximum(0.0, x @ first) @ second


@dataclasses.dataclass(frozen=True, eq=False)
class AttentionHead:
    """softmax(query · W_QK · key) applied to W_OV(values).

    `w_qk` holds the final logits (any BOS terms included by the constructor);
    the assembler compensates haiku's 1/sqrt(key_size) scaling.
    """

    w_qk: BilinearForm
    w_ov: LinearMap
    info: BlockInfo

    @functools.cached_property  # the head is immutable; layout and records both ask
    def reads(self) -> VectorSpace:
        return join_spaces(self.w_qk.query_space, self.w_qk.key_space, self.w_ov.input_space)

    @property
    def writes(self) -> VectorSpace:
        return self.w_ov.output_space

    def logits(self, residual_space: VectorSpace, x: np.ndarray,
               valid: np.ndarray | None = None, causal: bool = False) -> np.ndarray:
        """Attention logits (batch, query, key), with padding and causal masks applied."""
        qk = self.w_qk.in_spaces(residual_space, residual_space).astype(x.dtype)
        logits = (x @ qk) @ np.swapaxes(x, 1, 2)  # O(seq·dim² + seq²·dim)
        seq = x.shape[1]
        allowed = np.ones((x.shape[0], seq, seq), dtype=bool)
        if valid is not None:
            allowed &= valid[:, None, :]
        if causal:
            allowed &= np.tril(np.ones((seq, seq), dtype=bool))[None]
        return np.where(allowed, logits, np.asarray(MASKED_LOGIT, x.dtype))

    def forward(self, residual_space: VectorSpace, x: np.ndarray,
                valid: np.ndarray | None = None, causal: bool = False) -> np.ndarray:
        logits = self.logits(residual_space, x, valid, causal)
        weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        values = x @ self.w_ov.in_spaces(residual_space, residual_space).astype(x.dtype)
        return weights @ values


@dataclasses.dataclass(frozen=True, eq=False)
class MultiHead:
    """Heads side by side in one attention sublayer: their outputs add."""

    heads: tuple[AttentionHead, ...]

    def forward(self, residual_space, x, valid=None, causal=False):
        return sum(h.forward(residual_space, x, valid, causal) for h in self.heads)


@dataclasses.dataclass(frozen=True, eq=False)
class Series:
    """Blocks applied one after another, each adding to the residual."""

    blocks: tuple[MLP | AttentionHead | MultiHead, ...]

    def forward(self, residual_space, x, valid=None, causal=False):
        out = x
        for block in self.blocks:
            if isinstance(block, MLP):
                out = out + block.forward(residual_space, out)
            else:
                out = out + block.forward(residual_space, out, valid, causal)
        return out - x


def combine_mlps(mlps: list[MLP]) -> MLP:
    """Several MLPs in one sublayer as a single MLP (hidden spaces concatenated)."""
    ins = join_spaces(*(m.reads for m in mlps))
    hidden = VectorSpace(tuple(d for m in mlps for d in m.hidden_space))
    outs = join_spaces(*(m.writes for m in mlps))
    first = np.concatenate([m.first.in_spaces(ins, m.hidden_space) for m in mlps], axis=1)
    second = np.concatenate([m.second.in_spaces(m.hidden_space, outs) for m in mlps], axis=0)
    info = BlockInfo(tuple(e for m in mlps for e in m.info.exprs), "mlp_layer")
    return MLP(LinearMap(ins, hidden, first), LinearMap(hidden, outs, second), info)
