"""Graph figures: the RASP program's DAG and the model's ground-truth circuit.

`plot_program` takes a program (and optionally its compiled model) and
`plot_circuit` a compiled model; each gives a matplotlib Figure laid out in
levels, inputs at the bottom. `describe_expr` is the one-line RASP form of an
expression the program plot and the report's listing share.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

import networkx as nx

from interp.plots_base import FONT_SIZE, KIND_COLORS, PlotError, new_figure, sublayer_title, \
    summarize_directions
from interp.plots_labels import EdgeLabel, place_edge_labels
from rasp import expr as rx
from rasp.naming import function_name
from rasp.traverse import topological_order, unique_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from compiler import CompiledModel

NODE_WIDTH = 2.3   # inches per node in the widest level
LEVEL_HEIGHT = 1.0  # inches per level
# Directions that are constant over inputs (one; bos marks position 0): nearly every
# block reads them, so edges carrying only these are drawn faint and unlabelled.
CONSTANT_DIRECTIONS = frozenset({"one", "bos"})
STAGGER = {"attn": -0.3, "mlp": 0.3}  # x offsets in the circuit plot
EDGE_FONT_SIZE = FONT_SIZE  # points: 9.3 px on the report's page
STRETCH, MAX_STRETCHES = 1.3, 3  # taller figures until every edge label finds room
_KINDS = ((rx.TokensType, "input"), (rx.IndicesType, "input"), (rx.LengthType, "input"),
          (rx.Full, "constant"), (rx.ConstantSOp, "constant"), (rx.ConstantSelector, "constant"),
          (rx.Map, "map"), (rx.SequenceMap, "sequence_map"), (rx.Selector, "select"),
          (rx.Aggregate, "aggregate"), (rx.SelectorWidth, "selector_width"))


def expr_kind(expr: rx.RASPExpr) -> str:
    """The op kind that colours a program node: input, map, select, aggregate, ..."""
    return next(kind for cls, kind in _KINDS if isinstance(expr, cls))


def describe_expr(expr: rx.RASPExpr, labels: dict[int, str]) -> str:
    """The expression as one RASP call over its children's labels: `Select(indices, k, EQ)`."""
    args = [labels[c.unique_id] for c in expr.children]
    source = expr.annotations.get("rasp_source")
    if source:  # written in RASP text: show it as written
        return source.format(*[labels.get(a.unique_id, a.label) if isinstance(a, rx.RASPExpr)
                               else a for a in expr.annotations["rasp_args"]])
    match expr:
        case rx.TokensType() | rx.IndicesType() | rx.LengthType():
            return "input"
        case rx.Full():
            return f"Full({expr.fill!r})"
        case rx.ConstantSOp() | rx.ConstantSelector():
            return f"{type(expr).__name__}({list(expr.value)!r})"
        case rx.LinearSequenceMap():
            return f"LinearSequenceMap({args[0]}, {args[1]}, {expr.fst_fac}, {expr.snd_fac})"
        case rx.Map() | rx.SequenceMap():
            return f"{type(expr).__name__}({function_name(expr.f)}, {', '.join(args)})"
        case rx.Select():
            return f"Select({args[0]}, {args[1]}, {function_name(expr.predicate)})"
        case rx.Aggregate() if expr.default is not None:
            return f"Aggregate({args[0]}, {args[1]}, default={expr.default!r})"
    return f"{type(expr).__name__}({', '.join(args)})"


def _layered_positions(levels: dict[Hashable, int], graph: nx.DiGraph):
    """x, y per node: y is its level; within a level, nodes sit near their inputs."""
    pos: dict[Hashable, tuple[float, float]] = {}
    for level in sorted(set(levels.values())):
        nodes = [n for n in graph if levels[n] == level]  # graph order: deterministic

        def near_inputs(node, rank):
            xs = [pos[p][0] for p in graph.predecessors(node) if p in pos]
            return (sum(xs) / len(xs) if xs else rank, rank)

        nodes = [n for _, n in sorted((near_inputs(n, r), n) for r, n in enumerate(nodes))]
        for rank, node in enumerate(nodes):
            pos[node] = (rank - (len(nodes) - 1) / 2, level)
    return pos


def _draw(ax, graph: nx.DiGraph, pos, texts, kinds, dashed=frozenset(), edge_labels=None,
          faint=frozenset()) -> tuple[list, list[EdgeLabel]]:
    """Arrows and a rounded box of text per node; returns the node texts and the edge
    labels, to place once the figure's layout is fixed (`_place_labels`).

    An edge that skips levels curves, more the more it skips, alternating sides
    so that parallel long edges stay apart; `faint` edges are dotted.
    """
    edge_labels = edge_labels or {}
    labels = []
    for index, (u, v) in enumerate(graph.edges):
        skip = abs(pos[u][1] - pos[v][1])
        # arc3's bulge is rad × the edge's length: about 0.3 + 0.1·skip inches, capped.
        bend = 0.0 if skip <= 1 else min(1.4, 0.3 + 0.1 * skip) / skip * (-1) ** index
        nx.draw_networkx_edges(graph, pos, edgelist=[(u, v)], ax=ax, arrows=True,
                               arrowstyle="-|>", arrowsize=9, node_size=1800,
                               edge_color="#bbbbbb" if (u, v) in faint else "#777777",
                               style=":" if (u, v) in faint else "-", width=0.8,
                               connectionstyle=f"arc3,rad={bend:.2f}")
        if (u, v) in edge_labels:
            labels.append(EdgeLabel(pos[u], pos[v], round(bend, 2), edge_labels[u, v]))
    nodes = [ax.text(x, y, texts[node], ha="center", va="center", fontsize=FONT_SIZE, zorder=3,
                     bbox=dict(boxstyle="round,pad=0.35", facecolor=KIND_COLORS[kinds[node]],
                               edgecolor="#444444", linestyle="--" if node in dashed else "-"))
             for node, (x, y) in pos.items()]
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    ax.set_xlim(min(xs) - 1.1, max(xs) + 1.1)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    return nodes, labels


def _place_labels(fig, ax, nodes, labels: list[EdgeLabel]) -> None:
    """Fix the layout, then place the edge labels clear of each other and of the nodes,
    giving the figure more height (never more width: it must fit the page) while some
    label finds no clear place."""
    width, height = fig.get_size_inches()
    for attempt in range(MAX_STRETCHES + 1):
        fig.set_size_inches(width, height * STRETCH ** attempt)
        fig.set_layout_engine("constrained")
        fig.draw_without_rendering()
        fig.set_layout_engine("none")  # placed labels must not move the axes again
        drawn, crowded = place_edge_labels(ax, labels, nodes, EDGE_FONT_SIZE)
        if not crowded or attempt == MAX_STRETCHES:
            return
        for text in drawn:
            text.remove()


def _legend(ax, kinds: Sequence[str], title: str):
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=KIND_COLORS[k], edgecolor="#444444", label=k.replace("_", " "))
               for k in dict.fromkeys(kinds)]
    ax.legend(handles=handles, loc="upper left", fontsize=FONT_SIZE, title=title,
              title_fontsize=FONT_SIZE,
              frameon=False, bbox_to_anchor=(1.0, 1.0))


def _size(pos) -> tuple[float, float]:
    levels = [y for _, y in pos.values()]
    widest = max(levels.count(y) for y in set(levels))
    return max(5.5, NODE_WIDTH * widest + 2.0), LEVEL_HEIGHT * len(set(levels)) + 1.0


def plot_program(program, model: CompiledModel | None = None) -> Figure:
    """The RASP program's expression DAG, laid out by dependency (inputs at the bottom).

    Each node shows its label and RASP call, coloured by op kind. With `model`
    (or when `program` is a CompiledModel), each node also says which component
    computes it (`L1.H0`: layer 1's head 0, `L0.M0`: an MLP block), and nodes
    fused into another component are drawn dashed.
    """
    if not isinstance(program, rx.RASPExpr) and hasattr(program, "program"):
        model, program = program, program.program  # a CompiledModel
    if program is None:
        raise PlotError("this model was loaded without its RASP program, so there is no "
                        "program to draw: compile the program again, or pass it to plot_program")
    if not isinstance(program, rx.RASPExpr):
        raise PlotError(f"plot_program needs a RASP expression, got {type(program).__name__}")
    order = topological_order(program)
    labels = unique_labels(order)
    graph, depth = nx.DiGraph(), {}
    for e in order:
        graph.add_node(e.unique_id)
        depth[e.unique_id] = 1 + max((depth[c.unique_id] for c in e.children), default=-1)
        for c in e.children:
            graph.add_edge(c.unique_id, e.unique_id)
    alignment = model.ground_truth.alignment if model is not None else {}
    parts = _compiled_parts(alignment, set(labels.values()))
    texts, kinds, dashed = {}, {}, set()
    for e in order:
        node, label = e.unique_id, labels[e.unique_id]
        kinds[node] = expr_kind(e)
        where, fused = _placement(alignment.get(label, ()))
        lines = [label, describe_expr(e, labels), where] + parts.get(label, [])
        texts[node] = "\n".join(line for line in lines if line)
        if fused:
            dashed.add(node)
    select_sides: dict[tuple[int, int], str] = {}
    for e in order:
        if isinstance(e, rx.Select):
            for child, side in zip(e.children, ("keys", "queries")):
                edge = (child.unique_id, e.unique_id)
                select_sides[edge] = f"{select_sides[edge]}, {side}" if edge in select_sides \
                    else side
    pos = _layered_positions(depth, graph)
    fig = new_figure(*_size(pos))
    ax = fig.add_subplot()
    nodes, placed = _draw(ax, graph, pos, texts, kinds, dashed, select_sides)
    _legend(ax, kinds.values(), "op kind")
    note = "; dashed: fused" if dashed else ""
    ax.set_title(f"RASP program {labels[program.unique_id]!r}" +
                 (f"\nLℓ.Hh: layer ℓ head h; Lℓ.Mi: layer ℓ MLP block i{note}"
                  if model is not None else ""), fontsize=8)
    _place_labels(fig, ax, nodes, placed)
    return fig


def _compiled_parts(alignment, program_labels: set[str]) -> dict[str, list[str]]:
    """Values the compiler added ('smaller.keys'), listed under the expression they serve."""
    parts: dict[str, list[str]] = {}
    for label, sites in alignment.items():
        owner = label
        while owner not in program_labels and "." in owner:
            owner = owner.rsplit(".", 1)[0]
        if owner != label and owner in program_labels:
            parts.setdefault(owner, []).append(f"{label[len(owner) + 1:]}: "
                                               f"{_placement(sites)[0]}")
    return parts


def _placement(sites) -> tuple[str, bool]:
    """('L0.H0 + L0.M0', False), ('q·k of L1.H0', False) or ('fused into L1.H0', True)."""
    writers = [s.component for s in sites if s.role in ("result", "mlp_out")]
    selectors = sorted({s.component for s in sites if s.role in ("query", "key")})
    fused = sorted({s.component for s in sites if s.role == "fused"})
    embeds = [{"hook_embed": "token embedding"}.get(s.component, "position embedding")
              for s in sites if s.role == "embed"]
    parts = embeds + ([" + ".join(dict.fromkeys(writers))] if writers else [])
    parts += [f"q·k of {', '.join(selectors)}"] if selectors else []
    if fused and not parts:
        return f"fused into {', '.join(fused)}", True
    return "; ".join(parts), False


def plot_circuit(model: CompiledModel, granularity: str = "component") -> Figure:
    """The ground-truth circuit, laid out by sublayer: embeddings at the bottom, output on top.

    Nodes are components (or TransformerLens hooks with granularity="hook")
    with the RASP expressions they compute. Each edge is labelled with the
    residual directions it carries and, into a head, which of q, k, v read them.
    """
    if granularity not in ("component", "hook"):
        raise PlotError(f"granularity must be 'component' or 'hook', got {granularity!r}")
    truth = model.ground_truth
    # "component": one node per head and MLP block, i.e. the ground truth's id graph, which
    # keeps the q/k/v labels that InterpBench's edge-level "component" graph folds away.
    graph = truth.circuit_graph("ids" if granularity == "component" else granularity)
    levels, texts, kinds = {}, {}, {}
    for node, attrs in graph.nodes(data=True):
        kind = kinds[node] = attrs["kind"]
        levels[node] = {"embed": -1, "output": 2 * truth.n_layers}.get(
            kind, 2 * (attrs.get("layer") or 0) + (kind == "mlp"))
        computed = attrs.get("exprs") or [attrs.get("label")]
        texts[node] = f"{node}\n{', '.join(map(str, computed))}" + \
            (f"\n{attrs['op']}" if attrs.get("op") else "")
    edge_labels, faint = {}, set()
    for u, v, attrs in graph.edges(data=True):
        if set(attrs["directions"]) <= CONSTANT_DIRECTIONS:
            faint.add((u, v))
            continue
        carried = summarize_directions(model, attrs["directions"])
        sides = " ".join(attrs["inputs"])
        edge_labels[u, v] = f"{sides} ← {carried}" if sides else carried
    # heads a little left, MLPs a little right: a chain of blocks zig-zags, so the
    # labels of its edges do not stack on one vertical line
    pos = {node: (x + STAGGER.get(kinds[node], 0.0), y)
           for node, (x, y) in _layered_positions(levels, graph).items()}
    fig = new_figure(*_size(pos))
    ax = fig.add_subplot()
    nodes, placed = _draw(ax, graph, pos, texts, kinds, edge_labels=edge_labels, faint=faint)
    left = min(x for x, _ in pos.values()) - 1.05
    for level in sorted(set(levels.values())):
        name = "output" if level == 2 * truth.n_layers else sublayer_title(level)
        ax.text(left, level, name, fontsize=FONT_SIZE, color="#666666", ha="left", va="center")
    _legend(ax, kinds.values(), "component")
    ax.set_title(f"ground-truth circuit of {truth.output_label!r}\nedges: q k v ← "
                 "directions read; dotted: one/bos only", fontsize=8)
    _place_labels(fig, ax, nodes, placed)
    return fig
