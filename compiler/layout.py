"""Spaces + blocks → the residual stream's layout, in a deliberate order.

Order: `one`, `bos`; token and position directions; each intermediate SOp's
subspace (and any scratch directions its block writes) in topological order;
the output subspace last. Token and position directions nothing reads are
dropped.
"""

from __future__ import annotations

from compiler.node_block import NodeBlock
from compiler.graph import ProgramGraph
from craft.bases import BOS, ONE, VectorSpace, join_spaces
from rasp import expr as rx


def layout_residual(graph: ProgramGraph, spaces: dict[int, VectorSpace],
                    blocks: list[NodeBlock]) -> VectorSpace:
    """The residual space of the compiled model."""
    read = join_spaces(*(part.reads for nb in blocks for part in nb.parts()))
    writes = {nb.node: join_spaces(*(part.writes for part in nb.parts())) for nb in blocks}
    inputs, middle = [], []
    for node in graph.order:
        if node not in spaces or node == graph.output:
            continue
        space = spaces[node]
        if isinstance(graph.expr(node), (rx.TokensType, rx.IndicesType)):
            inputs.append(VectorSpace(tuple(d for d in space.basis if d in read)))
        elif node in writes or any(d in read for d in space.basis):
            middle.append(join_spaces(space, writes.get(node, VectorSpace(()))))
    output = spaces[graph.output]
    scratch = writes.get(graph.output, VectorSpace(()))
    tail = VectorSpace(tuple(d for d in scratch.basis if d not in output)).direct_sum(output)
    return join_spaces(VectorSpace((ONE, BOS)), *inputs, *middle, tail)
