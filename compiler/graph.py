"""Program → ProgramGraph: the expression DAG as a networkx DiGraph.

Nodes are expression ids, each with attributes `expr` and a unique `label`;
edges run from an expression to the expressions that use it. Extraction visits
every expression once: O(expressions + edges), even when sub-expressions are
shared.
"""

from __future__ import annotations

import dataclasses

import networkx as nx

from rasp import expr as rx
from rasp.errors import CompileError
from rasp.traverse import topological_order, unique_labels


@dataclasses.dataclass(frozen=True)
class ProgramGraph:
    """The program's DAG, with the output expression and a fixed topological order."""

    graph: nx.DiGraph
    output: int
    order: tuple[int, ...]
    # node → its node attributes, read directly: every stage asks for exprs and labels
    # often, and a networkx node view costs a lookup chain per call.
    attributes: dict[int, dict] = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.attributes is None:
            object.__setattr__(self, "attributes", dict(self.graph.nodes(data=True)))

    def expr(self, node: int) -> rx.RASPExpr:
        return self.attributes[node]["expr"]

    def label(self, node: int) -> str:
        return self.attributes[node]["label"]

    def exprs(self) -> list[rx.RASPExpr]:
        return [self.expr(n) for n in self.order]


def extract_graph(program: rx.RASPExpr) -> ProgramGraph:
    """The DAG of `program`, whose output must be an SOp."""
    if not isinstance(program, rx.SOp):
        raise CompileError(program if isinstance(program, rx.RASPExpr) else repr(program),
                           "the program must be an SOp (a selector has no per-position output)",
                           "aggregate the selector, or take its SelectorWidth")
    order = topological_order(program)
    labels = unique_labels(order)
    graph = nx.DiGraph()
    for expr in order:
        graph.add_node(expr.unique_id, expr=expr, label=labels[expr.unique_id])
        for child in expr.children:
            graph.add_edge(child.unique_id, expr.unique_id)
    return ProgramGraph(graph, program.unique_id, tuple(e.unique_id for e in order))
