"""Schedule → components: which head or MLP implements which RASP expression.

This is the raw ground truth: every attention head and MLP block, its layer,
the expressions it computes, and the residual directions it reads and writes;
and for every SOp, the residual directions holding its value.
"""

from __future__ import annotations

from compiler.graph import ProgramGraph
from compiler.schedule import Schedule
from craft.bases import VectorSpace
from rasp import expr as rx
from rasp_runtime.model import Component, ValueRecord


def record_components(schedule: Schedule, residual: VectorSpace) -> list[Component]:
    """One Component per head and per MLP block with hidden units, in layer order."""
    components = []
    labels = dict(zip(residual.basis, residual.labels()))  # each direction's str, once
    for layer_index, layer in enumerate(schedule.layers):
        for head_index, head in enumerate(layer.heads):
            components.append(Component(layer_index, "attn", head_index, head.info,
                                        _labels(head.reads, labels), _labels(head.writes, labels)))
        start = 0  # MLPs of a layer are concatenated in this order (craft.blocks.combine_mlps)
        for mlp in layer.mlps:
            stop = start + mlp.hidden_space.dim
            if stop == start:  # no units, so no weights (compiler.assemble): nothing runs
                continue
            components.append(Component(layer_index, "mlp", None, mlp.info,
                                        _labels(mlp.reads, labels), _labels(mlp.writes, labels),
                                        (start, stop)))
            start = stop
    return components


def _labels(space: VectorSpace, residual_labels: dict) -> tuple[str, ...]:
    # labels are non-empty strs, so filtering out falsy drops exactly the missing directions
    return tuple(filter(None, map(residual_labels.get, space.basis)))


def record_values(graph: ProgramGraph, spaces: dict[int, VectorSpace], residual: VectorSpace,
                  schedule: Schedule) -> list[ValueRecord]:
    """One ValueRecord per SOp whose directions are in the residual, in topological order."""
    records = []
    for node in graph.order:
        space = spaces.get(node)
        positions = () if space is None else tuple(map(residual.index.get, space.basis))
        if space is None or None in positions:
            continue
        numerical = rx.is_numerical(graph.expr(node))
        records.append(ValueRecord(graph.label(node), numerical,
                                   () if numerical else tuple(d.value for d in space.basis),
                                   positions, schedule.sublayer_of.get(node, -1)))
    return records
