"""Blocks → layers: the earliest sublayer each block can run in.

Sublayers alternate attention (even) and MLP (odd); layer i is sublayers 2i and
2i+1. A block starts at the first sublayer of its kind after all of its inputs
are written (embedded SOps are ready before sublayer 0), so the depth is the
longest path over typed sublayers. Independent blocks share a layer: heads side
by side, MLPs concatenated. O(blocks + edges).
"""

from __future__ import annotations

import dataclasses

from compiler.node_block import NodeBlock
from craft.blocks import MLP, AttentionHead

_PARITY = {"attn": 0, "mlp": 1}


@dataclasses.dataclass(frozen=True)
class Layer:
    """One transformer layer: its heads and MLPs (either may be empty)."""

    heads: tuple[AttentionHead, ...]
    mlps: tuple[MLP, ...]


@dataclasses.dataclass(frozen=True)
class Schedule:
    layers: tuple[Layer, ...]
    sublayer_of: dict[int, int]  # node id -> the sublayer that writes it (last part)


def schedule_layers(blocks: list[NodeBlock]) -> Schedule:
    """Place each block (given in topological order) at its earliest sublayer."""
    ready: dict[int, int] = {}
    placed: list[tuple[int, MLP | AttentionHead]] = []
    for nb in blocks:
        sublayer = max((ready.get(i, -1) for i in nb.inputs), default=-1) + 1
        for kind, part in zip(nb.sublayers, nb.parts()):  # each part at its next sublayer
            if sublayer % 2 != _PARITY[kind]:
                sublayer += 1
            placed.append((sublayer, part))
            sublayer += 1
        ready[nb.node] = sublayer - 1
    depth = max((s for s, _ in placed), default=-1) + 1
    layers = []
    for i in range((depth + 1) // 2):
        layers.append(Layer(tuple(p for s, p in placed if s == 2 * i),
                            tuple(p for s, p in placed if s == 2 * i + 1)))
    return Schedule(tuple(layers), ready)
