"""Schedule → components: which head or MLP implements which RASP expression.

This is the raw ground truth: every attention head and MLP block, its layer,
the expressions it computes, and the residual directions it reads and writes.
"""

from __future__ import annotations

from compiler.model import Component
from compiler.schedule import Schedule
from craft.bases import VectorSpace


def record_components(schedule: Schedule, residual: VectorSpace) -> list[Component]:
    """One Component per head and per MLP block, in layer order."""
    components = []
    for layer_index, layer in enumerate(schedule.layers):
        for head_index, head in enumerate(layer.heads):
            components.append(Component(layer_index, "attn", head_index, head.info,
                                        _labels(head.reads, residual), _labels(head.writes, residual)))
        for mlp in layer.mlps:
            components.append(Component(layer_index, "mlp", None, mlp.info,
                                        _labels(mlp.reads, residual), _labels(mlp.writes, residual)))
    return components


def _labels(space: VectorSpace, residual: VectorSpace) -> tuple[str, ...]:
    return tuple(str(d) for d in space.basis if d in residual)
