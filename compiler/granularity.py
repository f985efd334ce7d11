"""The true circuit at InterpBench's granularities, edge by edge, from a GroundTruth.

Takes a `GroundTruth` and gives networkx graphs named as InterpBench names them
(`component`, `acdc_hooks`, `sp_hooks`), the graph of every possible edge (the
negatives), InterpBench's canonicalisation, and which edges are constant or inert.
Every edge records the writer and the reader slots it stands for, so a patching
method can intervene on exactly that edge. Also what the ground truth derives
from the weights for it: constant directions and value-blind reads.
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np

GRANULARITIES = ("component", "acdc_hooks", "sp_hooks")
EMBED_WRITERS = {"hook_embed": "embed", "hook_pos_embed": "pos_embed"}
RESID_PRE = "blocks.0.hook_resid_pre"


def result_hook(layer: int, head: int) -> str:
    """A head's output: blocks.L.attn.hook_result[h]."""
    return f"blocks.{layer}.attn.hook_result[{head}]"


def mlp_out_hook(layer: int) -> str:
    """A layer's MLP output: blocks.L.hook_mlp_out."""
    return f"blocks.{layer}.hook_mlp_out"


def input_hook(layer: int, side: str, head: int | None = None) -> str:
    """A reader slot: blocks.L.hook_{q,k,v}_input[h] for a head, blocks.L.hook_mlp_in."""
    return f"blocks.{layer}.hook_mlp_in" if side == "mlp" else \
        f"blocks.{layer}.hook_{side}_input[{head}]"


def output_hook(n_layers: int) -> str:
    """The output reader: blocks.{last}.hook_resid_post."""
    return f"blocks.{n_layers - 1}.hook_resid_post"


@dataclasses.dataclass(frozen=True)
class Writer:
    """Something that adds to the residual: an embedding, a head, or a layer's MLP."""

    name: str          # acdc_hooks name
    component: str     # component-granularity name
    sublayer: int      # -1 for the embeddings
    writes: frozenset[int]


@dataclasses.dataclass(frozen=True)
class Slot:
    """One reader input: a head's q, k or v input, a layer's MLP input, or the output."""

    name: str          # acdc_hooks name
    component: str     # the component-granularity node that reads through it
    sublayer: int
    reads: frozenset[int]


def sites(truth) -> tuple[list[Writer], list[Slot]]:
    """Every writer and reader slot of the model, in forward order."""
    writers = [Writer(e.hook, EMBED_WRITERS[e.hook], -1, frozenset(i for i, _ in e.writes))
               for e in truth.embeddings]
    slots = []
    for layer in range(truth.n_layers):
        heads = [c for c in truth.components if c.layer == layer and c.kind == "attn"]
        mlps = [c for c in truth.components if c.layer == layer and c.kind == "mlp"]
        for c in heads:
            node = f"blocks.{layer}.attn[{c.head}]"
            for side, reads in (("q", c.query_reads), ("k", c.key_reads), ("v", c.value_reads)):
                slots.append(Slot(input_hook(layer, side, c.head), node, 2 * layer,
                                  frozenset(i for i, _ in reads)))
            writers.append(Writer(result_hook(layer, c.head), node, 2 * layer,
                                  frozenset(i for i, _ in c.writes)))
        if mlps:
            node = f"blocks.{layer}.mlp"
            slots.append(Slot(input_hook(layer, "mlp"), node, 2 * layer + 1,
                              frozenset(i for c in mlps for i, _ in c.reads)))
            writers.append(Writer(mlp_out_hook(layer), node, 2 * layer + 1,
                                  frozenset(i for c in mlps for i, _ in c.writes)))
    out = output_hook(truth.n_layers)
    slots.append(Slot(out, out, 2 * truth.n_layers, frozenset(i for i, _ in truth.output_reads)))
    return writers, slots


def _writer_of_slot(slot: Slot, granularity: str) -> str:
    """The node a slot's reader writes from (or the output itself)."""
    if slot.name.endswith("hook_resid_post"):
        return slot.name
    if granularity == "component":
        return slot.component
    layer = slot.name.split(".")[1]
    if slot.name.endswith("hook_mlp_in"):
        return mlp_out_hook(int(layer))
    return f"blocks.{layer}.attn.hook_result{slot.name[slot.name.index('['):]}"


def _internal_path(slot: Slot, granularity: str) -> list[str]:
    """The hook chain inside a reader, from its slot to its writer (hook granularities)."""
    if granularity == "component" or slot.name.endswith("hook_resid_post"):
        return []
    head = slot.name[slot.name.index("["):] if "[" in slot.name else ""
    side = slot.name.split("hook_")[1].split("_")[0]
    if side != "mlp" and granularity == "acdc_hooks":
        layer = slot.name.split(".")[1]
        return [slot.name, f"blocks.{layer}.attn.hook_{side}{head}", _writer_of_slot(slot, granularity)]
    return [slot.name, _writer_of_slot(slot, granularity)]


def edge_graph(truth, granularity: str, everything: bool = False) -> nx.DiGraph:
    """Writer -> reader edges at `granularity`; only true ones unless `everything`.

    An edge is true when its reader reads a residual direction the writer writes
    in an earlier sublayer, and it lies on a path to the output. Edge attributes:
    `writer` (acdc_hooks name), `slots` (the reader inputs it patches),
    `indices` / `directions` (what it carries), `constant` (only directions that
    are the same on every input, like `one` and BOS), `internal` (a hook chain
    inside one head or MLP, which no method scores).
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, "
                         f"got {granularity!r}")
    writers, slots = sites(truth)
    constant = {i for i, _ in truth.constant_directions}
    labels = truth.residual_labels
    graph = nx.DiGraph()
    for w in writers:
        graph.add_node(w.component if granularity == "component" else w.name, kind="writer")
    graph.add_node(output_hook(truth.n_layers), kind="output")
    for slot in slots:
        reader = slot.component if granularity == "component" else slot.name
        for w in writers:
            shared = sorted(w.writes & slot.reads)
            if w.sublayer >= slot.sublayer or not (shared or everything):
                continue
            u = w.component if granularity == "component" else w.name
            if graph.has_edge(u, reader):
                attrs = graph.edges[u, reader]
                attrs["slots"].append(slot.name)
                attrs["indices"] = sorted(set(attrs["indices"]) | set(shared))
            else:
                graph.add_edge(u, reader, writer=w.name, slots=[slot.name], indices=shared,
                               internal=False)
        chain = _internal_path(slot, granularity)
        for a, b in zip(chain, chain[1:]):
            graph.add_edge(a, b, writer=None, slots=[], indices=[], internal=True)
    for _, _, attrs in graph.edges(data=True):
        attrs["directions"] = [labels[i] for i in attrs["indices"]]
        attrs["constant"] = not attrs["internal"] and bool(attrs["indices"]) and \
            set(attrs["indices"]) <= constant
    if not everything:
        keep = nx.ancestors(graph, output_hook(truth.n_layers)) | {output_hook(truth.n_layers)}
        graph = graph.subgraph(keep).copy()
    return graph


def canonicalize(graph: nx.DiGraph) -> nx.DiGraph:
    """InterpBench's canonical form of an acdc_hooks / sp_hooks graph (others unchanged).

    Edges inside a head or MLP (q/k/v input -> hook_q/k/v -> hook_result,
    mlp_in -> mlp_out) are dropped; edges into a q/k/v input go to the head's
    hook_result, into hook_mlp_in to hook_mlp_out; both embeddings become
    blocks.0.hook_resid_pre, and embedding -> hook_resid_post edges are dropped.
    Merged edges keep the union of their slots and indices.
    """
    out = nx.DiGraph()
    for u, v, attrs in graph.edges(data=True):
        if attrs.get("internal") or _suffix(u) in ("hook_q_input", "hook_k_input",
                                                   "hook_v_input", "hook_mlp_in",
                                                   "hook_q", "hook_k", "hook_v"):
            continue
        if u in EMBED_WRITERS and _suffix(v) in ("hook_resid_post", "hook_resid_pre"):
            continue
        a, b = canonical_name(u), canonical_name(v)
        if out.has_edge(a, b):
            old = out.edges[a, b]
            old["slots"] = sorted(set(old["slots"]) | set(attrs["slots"]))
            old["indices"] = sorted(set(old["indices"]) | set(attrs["indices"]))
            old["directions"] = list(dict.fromkeys(old["directions"] + attrs["directions"]))
            old["constant"] = old["constant"] and attrs["constant"]
            old["writers"] = sorted(set(old["writers"]) | {attrs["writer"]})
        else:
            out.add_edge(a, b, **{**attrs, "slots": list(attrs["slots"]),
                                  "writers": [attrs["writer"]]})
    return out


def _suffix(name: str) -> str:
    return name.split("[")[0].split(".")[-1]


def canonical_name(node: str) -> str:
    """Where canonicalisation sends a node name (q/k/v inputs -> hook_result, ...)."""
    if node in EMBED_WRITERS:
        return RESID_PRE
    suffix = _suffix(node)
    if suffix in ("hook_q_input", "hook_k_input", "hook_v_input"):
        return f"{node.split('.hook_')[0]}.attn.hook_result{node[node.index('['):]}"
    if suffix in ("hook_q", "hook_k", "hook_v"):
        return node.replace(f".{suffix}[", ".hook_result[")
    if suffix == "hook_mlp_in":
        return node.replace("hook_mlp_in", "hook_mlp_out")
    return node


def inert_edges(graph: nx.DiGraph, differs) -> set[tuple[str, str]]:
    """Edges whose effect on the output is the same on every clean/corrupt pair.

    `differs(writer, indices)` says whether the writer's values on those residual
    indices differ on some pair. An edge is inert when what it carries never
    differs, or when every edge leaving its reader is inert (its reader's output
    then never differs either). Internal edges follow their reader.
    """
    inert: set[tuple[str, str]] = set()
    for node in reversed(list(nx.topological_sort(graph))):
        out_edges = list(graph.out_edges(node))
        dead_reader = bool(out_edges) and all(e in inert for e in out_edges)
        for u, v, attrs in graph.in_edges(node, data=True):
            if dead_reader or (not attrs["internal"] and not differs(attrs["writer"],
                                                                     attrs["indices"])):
                inert.add((u, v))
    return inert


def constant_directions(model, components) -> list[int]:
    """Embedding columns equal on every token and every position after BOS.

    Directions a component writes are never constant, whatever the tables say.
    """
    table = np.asarray(model.params["token_embed"]["embeddings"])
    tokens = table[1:len(model.config.vocab) + 1]  # BOS is row 0, PAD the last
    positions = np.asarray(model.params["pos_embed"]["embeddings"])[1:]
    written = set(np.flatnonzero(np.any(tokens != 0, axis=0) | np.any(positions != 0, axis=0)
                                 | (table[0] != 0)))
    by_components = {i for c in components for i, _ in c.writes}
    return [int(i) for i in sorted(written - by_components)
            if np.all(tokens[:, i] == tokens[0, i]) and np.all(positions[:, i] == positions[0, i])]


def value_blind_rows(model, w, rows: set[int]) -> set[int]:
    """Rows of `w` (a head side's columns) that read a value without telling values apart.

    A categorical SOp that is never None has exactly one direction equal to 1 at
    every position; when all its rows of `w` are equal, that side sees the same
    vector whatever the value (the query of Select(tokens, tokens, lambda k, q: k == "a")).
    """
    blind: set[int] = set()
    for record in model.value_records.values():
        dims = list(record.dims)
        # An SOp with no possible value has no directions, so nothing to be blind to.
        if dims and not record.numerical and set(dims) <= rows and np.all(w[dims] == w[dims[0]]) \
                and record.label in _never_none(model):
            blind |= set(dims)
    return blind


def _never_none(model) -> set[str]:
    """Labels of the program's SOps that can never be None.

    A model loaded without its program knows this only of tokens and indices, so
    its other value-blind reads stay edges (a superset of the truth).
    """
    if model.program is None:
        return {"tokens", "indices"}
    cached = getattr(model, "_never_none_labels", None)
    if cached is None:
        from compiler.graph import extract_graph
        from compiler.values import infer_value_sets
        graph = extract_graph(model.program)
        sets = infer_value_sets(graph, model.config.vocab, model.config.max_seq_len)
        cached = {graph.label(node) for node, v in sets.items() if not v.may_be_none}
        model._never_none_labels = cached
    return cached
