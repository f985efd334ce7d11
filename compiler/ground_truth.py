"""Interpretability ground truth of a compiled model: what each head and MLP computes.

Built from what the blocks recorded at compile time (`CompiledModel.components`
and `.value_records`) plus the embedding tables. It gives

  - `components`: every attention head and MLP block, its RASP expressions,
    operation, the residual directions it reads and writes, and its
    TransformerLens hook names;
  - `alignment`: RASP label -> the sites (component + hook) that compute it;
  - `circuit_graph()`: the true data flow, embeddings -> components -> output,
    also at InterpBench's granularities (compiler/granularity.py);
  - `constant_directions`: embedding directions equal on every input (`one`, BOS);
  - `to_json()` / `from_json()`; `alignment_to_json` / `alignment_from_json`
    (a saved model keeps its alignment, since a loaded one has no program);
  - `residual_basis`: after a realism knob (interp.realism) rotated the residual, or a
    compression (interp.compress) narrowed it, each named direction's vector in residual
    coordinates (`direction_vectors`, `named`).

Component ids are "L{layer}.H{head}" for a head and "L{layer}.M{i}" for the
i-th MLP block of a layer (TransformerLens has one MLP per layer: all MLP blocks
of layer L share `blocks.L.hook_mlp_out`; their units are disjoint column
ranges `hidden` of `blocks.L.mlp.hook_post`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import networkx as nx
import numpy as np

from compiler.granularity import constant_directions, value_blind_rows
from compiler.hook_names import bridge_hook
from compiler.multitask import GATE_PREFIX

EMBED, POS_EMBED, OUTPUT = "hook_embed", "hook_pos_embed", "output"

Directions = tuple[tuple[int, str], ...]  # (residual index, residual label) pairs


def attn_hook(layer: int, name: str = "result") -> str:
    """TransformerLens name of an attention hook: blocks.{L}.attn.hook_{name}."""
    return f"blocks.{layer}.attn.hook_{name}"


def mlp_out_hook(layer: int) -> str:
    """TransformerLens name of a layer's MLP output: blocks.{L}.hook_mlp_out."""
    return f"blocks.{layer}.hook_mlp_out"


class _HookNames:
    """`hook` (the legacy HookedTransformer name) → `tl_bridge_hook`, the TransformerLens 4
    bridge's own name for it, filled in after construction."""

    def __post_init__(self):
        object.__setattr__(self, "tl_bridge_hook", bridge_hook(self.hook))

    @property
    def tl_legacy_hook(self) -> str:
        """The HookedTransformer name of the hook (the same as `hook`)."""
        return self.hook


@dataclasses.dataclass(frozen=True)
class Site(_HookNames):
    """Where a RASP expression is computed: a component (or embedding) and a hook.

    role: "embed", "result" (a head's output), "mlp_out", for a selector "query"
    / "key" (the head's Q and K), or "fused": computed inside the component but
    never written to the residual. head: the head index for attention hooks.
    hook is the legacy (HookedTransformer) name, which the TransformerLens 4
    bridge keeps as an alias; tl_bridge_hook is the bridge's own name for it.
    """

    component: str
    hook: str
    head: int | None
    role: str
    tl_bridge_hook: str = ""


@dataclasses.dataclass(frozen=True)
class GTComponent(_HookNames):
    """One attention head or MLP block and what it implements.

    reads/writes: the residual directions (index, label) it reads and writes.
    For a head, query_reads/key_reads/value_reads split `reads` by side (the
    nonzero rows of its W_Q, W_K, W_V columns). hidden: an MLP block's
    [start, stop) units within its layer's MLP. hook is the legacy
    (HookedTransformer) name; tl_bridge_hook the TransformerLens 4 bridge's.
    """

    id: str
    layer: int
    kind: str
    head: int | None
    exprs: tuple[str, ...]
    op: str
    reads: Directions
    writes: Directions
    hook: str
    query: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    value: tuple[str, ...] = ()
    predicate: str | None = None
    query_reads: Directions = ()
    key_reads: Directions = ()
    value_reads: Directions = ()
    hidden: tuple[int, int] | None = None
    tl_bridge_hook: str = ""
    # After interp.realism.permute_neurons: where the block's units went (hook_post
    # columns, in the compiled order) and the power-of-two scale each was given.
    units: tuple[int, ...] | None = None
    unit_scales: tuple[float, ...] | None = None

    @property
    def sublayer(self) -> int:
        """2·layer for attention, 2·layer + 1 for an MLP."""
        return 2 * self.layer + (self.kind == "mlp")

    @property
    def hooks(self) -> dict[str, str]:
        """Its TransformerLens hooks (for a head, index them with `head`)."""
        if self.kind == "attn":
            return {n: attn_hook(self.layer, n) for n in ("q", "k", "v", "z", "result", "pattern")}
        return {"mlp_out": self.hook, "post": f"blocks.{self.layer}.mlp.hook_post"}

    @property
    def bridge_hooks(self) -> dict[str, str]:
        """`hooks` under the TransformerLens 4 bridge's own names."""
        return {n: bridge_hook(h) for n, h in self.hooks.items()}


@dataclasses.dataclass(frozen=True)
class Embedding:
    """An embedding table as a writer: its hook, directions and embedded SOps."""

    hook: str
    writes: Directions
    exprs: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """The ground truth of one compiled model (see the module docstring)."""

    residual_labels: tuple[str, ...]
    n_layers: int
    output_label: str
    output_reads: Directions
    embeddings: tuple[Embedding, ...]
    components: tuple[GTComponent, ...]
    alignment: dict[str, tuple[Site, ...]]
    # Embedding directions no input can change: same column for every token and
    # every position after BOS (`one`, `bos`, constants), and written by no component.
    constant_directions: Directions = ()
    # A several-task model's task names (compiler.multitask), else empty.
    tasks: tuple[str, ...] = ()
    # Row i: named direction i (residual_labels[i]) in residual coordinates, after a
    # rotation (interp.realism.rotate); None: direction i is coordinate axis i.
    residual_basis: tuple[tuple[float, ...], ...] | None = None

    def direction_vectors(self, indices=None) -> np.ndarray:
        """[len(indices), d_model]: the residual vectors of these named directions (all of
        them by default), e.g. a value's directions `[i for i, _ in component.writes]`."""
        d = len(self.residual_labels)
        basis = np.eye(d) if self.residual_basis is None else np.array(self.residual_basis)
        return basis if indices is None else basis[list(indices)]

    def named(self, residual: np.ndarray) -> np.ndarray:
        """Residual vectors [..., d_model] in named coordinates (the compiled layout)."""
        if self.residual_basis is None:
            return np.asarray(residual)
        return np.asarray(residual, np.float64) @ np.array(self.residual_basis).T

    # ---------------------------------------------------------------- building
    @classmethod
    def from_model(cls, model) -> GroundTruth:
        """The ground truth of a `CompiledModel`."""
        labels = tuple(model.residual_labels)
        index = {label: i for i, label in enumerate(labels)}

        def dirs(indices) -> Directions:
            return tuple((int(i), labels[i]) for i in sorted(set(indices)))

        embeddings = []
        for hook, table in ((EMBED, "token_embed"), (POS_EMBED, "pos_embed")):
            written = np.flatnonzero(np.any(model.params[table]["embeddings"] != 0, axis=0))
            exprs = tuple(r.label for r in model.value_records.values()
                          if r.sublayer == -1 and set(r.dims) & set(written.tolist()))
            embeddings.append(Embedding(hook, dirs(written), exprs))

        components, mlp_count = [], {}
        for c in model.components:
            reads = dirs(index[d] for d in c.reads)
            writes = dirs(index[d] for d in c.writes)
            info = c.info
            if c.kind == "attn":
                sides = _head_reads(model, c.layer, c.head)
                components.append(GTComponent(
                    f"L{c.layer}.H{c.head}", c.layer, "attn", c.head, info.exprs, info.op,
                    reads, writes, attn_hook(c.layer), info.query, info.key, info.value,
                    info.predicate, *(dirs(s) for s in sides)))
            else:
                i = mlp_count[c.layer] = mlp_count.get(c.layer, -1) + 1
                components.append(GTComponent(
                    f"L{c.layer}.M{i}", c.layer, "mlp", None, info.exprs, info.op, reads, writes,
                    mlp_out_hook(c.layer), hidden=None if c.hidden is None else tuple(c.hidden)))

        output = model.value_records[model.config.output_label]
        alignment = model.saved_alignment if model.program is None else None
        if alignment is None:
            from compiler.alignment import program_alignment  # it builds this module's Sites
            alignment = program_alignment(embeddings, components, model.program,
                                          model.value_records)
        return cls(labels, len(model.config.layers), model.config.output_label,
                   dirs(output.dims), tuple(embeddings), tuple(components), alignment,
                   dirs(constant_directions(model, components)),
                   tuple(model.config.tasks))

    def component(self, component_id: str) -> GTComponent:
        """The component with this id ("L0.H1", "L2.M0", ...)."""
        for c in self.components:
            if c.id == component_id:
                return c
        raise KeyError(f"no component {component_id!r}; known: "
                       f"{', '.join(c.id for c in self.components)}")

    # ---------------------------------------------------------------- circuit
    def for_task(self, task: str) -> GroundTruth:
        """The truth of one task of a several-task model (compiler.multitask): only the
        components on a path through that task's gate (the gate, what it reads from, and
        the or-tree from it to the output). The other tasks' components still write, but
        what they write reaches the output only through their own gates, which are shut."""
        if task not in self.tasks:
            raise ValueError(f"no task {task!r}; this model's tasks: "
                             f"{', '.join(self.tasks) or 'none (a single-program model)'}")
        graph = self.circuit_graph()
        gates = {c.id for c in self.components if f"{GATE_PREFIX}{task}" in c.exprs}
        keep = set(gates)
        for gate in gates:
            keep |= nx.ancestors(graph, gate) | nx.descendants(graph, gate)
        return dataclasses.replace(self, tasks=(), components=tuple(
            c for c in self.components if c.id in keep))

    def circuit_graph(self, granularity: str = "ids", task: str | None = None) -> nx.DiGraph:
        """The true data flow from the embeddings to the output, as a DiGraph.

        Granularities "component", "acdc_hooks", "sp_hooks" are InterpBench's,
        edge by edge (see `compiler.granularity.edge_graph`). Otherwise nodes:
        "hook_embed", "hook_pos_embed", the component ids (granularity
        "ids") or hook names (granularity "hook": a head is
        "blocks.L.attn.hook_result[h]", the MLP blocks of a layer merge into
        "blocks.L.hook_mlp_out"), and "output". An edge u -> v means v reads a
        residual direction u wrote in an earlier sublayer; its attributes are
        `directions` (labels) and, into a head, `inputs` (which of q, k, v read
        them). Nodes with no path to the output are left out.

        `task` (a several-task model): that task's circuit (see `for_task`).
        """
        if task is not None:
            return self.for_task(task).circuit_graph(granularity)
        from compiler import granularity as interpbench
        if granularity in interpbench.GRANULARITIES:
            return interpbench.edge_graph(self, granularity)
        if granularity not in ("ids", "hook"):
            raise ValueError(f"granularity must be 'ids', 'hook' or one of "
                             f"{', '.join(interpbench.GRANULARITIES)}, got {granularity!r}")
        graph = nx.DiGraph()
        writers = [(-1, e.hook, dict(e.writes)) for e in self.embeddings]
        for e in self.embeddings:
            graph.add_node(e.hook, kind="embed", hook=e.hook, exprs=list(e.exprs))
        for c in self.components:
            graph.add_node(c.id, kind=c.kind, layer=c.layer, head=c.head, exprs=list(c.exprs),
                           op=c.op, hook=c.hook)
            writers.append((c.sublayer, c.id, dict(c.writes)))
        graph.add_node(OUTPUT, kind="output", label=self.output_label,
                       hook=f"blocks.{self.n_layers - 1}.hook_resid_post")
        readers = [(c.sublayer, c.id, c) for c in self.components]
        readers.append((2 * self.n_layers, OUTPUT, None))
        for sublayer, reader, c in readers:
            reads = dict(c.reads) if c else dict(self.output_reads)
            sides = (("q", c.query_reads), ("k", c.key_reads), ("v", c.value_reads)) if c else ()
            for when, writer, writes in writers:
                shared = sorted(set(reads) & set(writes))
                if when >= sublayer or not shared:
                    continue
                inputs = [side for side, r in sides if set(dict(r)) & set(shared)]
                graph.add_edge(writer, reader, directions=[reads[i] for i in shared],
                               inputs=inputs)
        graph = graph.subgraph(nx.ancestors(graph, OUTPUT) | {OUTPUT}).copy()
        return graph if granularity == "ids" else self._by_hook(graph)

    def full_graph(self, granularity: str = "component") -> nx.DiGraph:
        """Every edge a method can score at an InterpBench granularity (true or not)."""
        from compiler.granularity import edge_graph
        return edge_graph(self, granularity, everything=True)

    def inert(self, dataset, granularity: str = "component",
              task: str | None = None) -> set[tuple[str, str]]:
        """True edges whose carried values are identical on every clean/corrupt pair.

        `dataset` is anything with `differs(writer, indices) -> bool` (e.g.
        `interp.circuits.Dataset`): whether that writer's values on those residual
        indices differ on some pair. Edges into a reader all of whose outgoing
        edges are inert are inert too: that reader's output never differs.
        `task` (a several-task model): among that task's true edges.
        """
        from compiler.granularity import inert_edges
        return inert_edges(self.circuit_graph(granularity, task=task), dataset.differs)

    def _by_hook(self, graph: nx.DiGraph) -> nx.DiGraph:
        def name(node):
            attrs = graph.nodes[node]
            if attrs["kind"] == "attn":
                return f"{attrs['hook']}[{attrs['head']}]"
            return attrs["hook"] if attrs["kind"] != "output" else OUTPUT

        merged = nx.DiGraph()
        for node, attrs in graph.nodes(data=True):
            hook = name(node)
            if hook not in merged:
                merged.add_node(hook, kind=attrs["kind"], layer=attrs.get("layer"),
                                head=attrs.get("head"), components=[], exprs=[])
            merged.nodes[hook]["components"].append(node)
            merged.nodes[hook]["exprs"].extend(attrs.get("exprs", [attrs.get("label")]))
        for u, v, attrs in graph.edges(data=True):
            a, b = name(u), name(v)
            if merged.has_edge(a, b):
                old = merged.edges[a, b]
                attrs = {k: list(dict.fromkeys(old[k] + attrs[k])) for k in ("directions", "inputs")}
            merged.add_edge(a, b, **copy.deepcopy(attrs))
        return merged

    # ---------------------------------------------------------------- JSON
    def to_json(self, **dumps_kwargs) -> str:
        """A JSON string of the whole ground truth (the circuit graph's edges included)."""
        data = dataclasses.asdict(self)
        data["circuit_edges"] = [[u, v, attrs] for u, v, attrs
                                 in self.circuit_graph().edges(data=True)]
        return json.dumps(data, **dumps_kwargs)

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        """The GroundTruth `to_json` wrote (the circuit graph is recomputed)."""
        data = json.loads(text)
        return cls(tuple(data["residual_labels"]), data["n_layers"], data["output_label"],
                   _directions(data["output_reads"]),
                   tuple(Embedding(e["hook"], _directions(e["writes"]), tuple(e["exprs"]))
                         for e in data["embeddings"]),
                   tuple(_component(c) for c in data["components"]),
                   alignment_from_json(data["alignment"]),
                   _directions(data.get("constant_directions", ())),
                   tuple(data.get("tasks", ())),
                   _matrix(data.get("residual_basis")))


def alignment_to_json(alignment: dict[str, tuple[Site, ...]]) -> dict[str, list[dict]]:
    """The alignment as JSON-able data: label -> list of Site fields."""
    return {label: [dataclasses.asdict(site) for site in sites]
            for label, sites in alignment.items()}


def alignment_from_json(data: dict[str, list[dict]]) -> dict[str, tuple[Site, ...]]:
    """The inverse of `alignment_to_json`."""
    return {label: tuple(Site(**site) for site in sites) for label, sites in data.items()}


def _directions(pairs) -> Directions:
    return tuple((int(i), str(label)) for i, label in pairs)


def _matrix(rows) -> tuple[tuple[float, ...], ...] | None:
    return None if rows is None else tuple(tuple(map(float, row)) for row in rows)


def _component(data: dict[str, Any]) -> GTComponent:
    def value(name, x):
        if name.endswith("reads") or name == "writes":
            return _directions(x)
        return tuple(x) if isinstance(x, list) else x

    return GTComponent(**{name: value(name, x) for name, x in data.items()})


def _head_reads(model, layer: int, head: int) -> tuple[list[int], list[int], list[int]]:
    """Residual indices read by one head's W_Q, W_K and W_V: nonzero rows of its
    columns, without value-blind reads (compiler.granularity.value_blind_rows)."""
    config = model.config.layers[layer]
    prefix = f"transformer/layer_{layer}/attn"
    out = []
    for name, size in (("query", config.key_size), ("key", config.key_size),
                       ("value", config.value_size)):
        w = model.params[f"{prefix}/{name}"]["w"][:, head * size:(head + 1) * size]
        rows = set(np.flatnonzero(np.any(w != 0, axis=1)).tolist())
        out.append(sorted(rows - value_blind_rows(model, w, rows)))
    return tuple(out)
