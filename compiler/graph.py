"""Program → ProgramGraph: the expression DAG, in topological order.

Nodes are expression ids, each with attributes `expr` and a unique `label`;
edges run from an expression to the expressions that use it (as a networkx
DiGraph on first use). Extraction visits every expression once: O(expressions +
edges), even when sub-expressions are shared.
"""

from __future__ import annotations

import dataclasses
import functools

import networkx as nx

from rasp import expr as rx
from rasp.errors import CompileError
from rasp.traverse import topological_order, unique_labels


@dataclasses.dataclass(frozen=True)
class ProgramGraph:
    """The program's DAG, with the output expression and a fixed topological order."""

    output: int
    order: tuple[int, ...]
    # node → its attributes (`expr`, `label`), read directly: every stage asks for exprs
    # and labels often, and a networkx node view costs a lookup chain per call.
    attributes: dict[int, dict] = dataclasses.field(repr=False, compare=False)

    @functools.cached_property
    def graph(self) -> nx.DiGraph:
        """The DAG as a networkx DiGraph, built when first asked for (no stage needs it)."""
        graph = nx.DiGraph()
        for node in self.order:
            graph.add_node(node, **self.attributes[node])
            for child in self.expr(node).children:
                graph.add_edge(child.unique_id, node)
        return graph

    def __contains__(self, node: int) -> bool:
        return node in self.attributes

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
    attributes = {expr.unique_id: {"expr": expr, "label": labels[expr.unique_id]}
                  for expr in order}
    return ProgramGraph(program.unique_id, tuple(e.unique_id for e in order), attributes)
