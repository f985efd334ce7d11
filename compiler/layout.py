"""Spaces + blocks → the residual stream's layout, in a deliberate order.

Order: `one`, `bos`; token and position directions; each intermediate SOp's
subspace (and any scratch directions its block writes) in topological order;
the output subspace last. Token and position directions nothing reads are
dropped.
"""

from __future__ import annotations

from compiler.node_block import NodeBlock
from compiler.graph import ProgramGraph
from craft.bases import BOS, ONE, VectorSpace
from rasp import expr as rx


def layout_residual(graph: ProgramGraph, spaces: dict[int, VectorSpace],
                    blocks: list[NodeBlock]) -> VectorSpace:
    """The residual space of the compiled model."""
    read = {d for nb in blocks for part in nb.parts() for d in part.reads.basis}
    writes = {nb.node: [d for part in nb.parts() for d in part.writes.basis] for nb in blocks}
    inputs = dict.fromkeys((ONE, BOS))  # directions in order: a dict keeps the first place
    middle: dict = {}
    for node in graph.order:
        if node not in spaces or node == graph.output:
            continue
        space = spaces[node]
        if isinstance(graph.expr(node), (rx.TokensType, rx.IndicesType)):
            inputs.update(dict.fromkeys(d for d in space.basis if d in read))
        elif node in writes or any(d in read for d in space.basis):
            middle.update(dict.fromkeys(space.basis))
            middle.update(dict.fromkeys(writes.get(node, ())))
    output = spaces[graph.output]
    tail = [d for d in writes.get(graph.output, ()) if d not in output] + list(output.basis)
    return VectorSpace(tuple({**inputs, **middle, **dict.fromkeys(tail)}))
