"""Read the edge names outside tools write, as the writer -> reader-slot edges we score.

Takes one node name from any of three namings and says which part of the model it
means: ours at `component` granularity (`embed`, `blocks.1.attn[0]`, `blocks.1.mlp`),
TransformerLens legacy hook names as ACDC and InterpBench write them
(`blocks.0.hook_resid_pre` for both embeddings, `blocks.1.attn.hook_result[0]`,
`blocks.1.hook_q_input[0]`, `blocks.1.hook_mlp_in`, ...) and auto-circuit's
(`Resid Start`, `A1.0`, `A1.0.Q`, `MLP 1`, `Resid End`; an edge is `"src->dest"`).
`resolve_edge` turns an (upstream, downstream) pair into the set of slot edges
`(writer hook, reader slot hook)` it scores, or says why it is left out.
"""

from __future__ import annotations

import dataclasses
import re

from compiler.granularity import input_hook, mlp_out_hook, output_hook, result_hook

EMBEDDINGS = ("hook_embed", "hook_pos_embed")
SIDES = ("q", "k", "v")
PADDED, INTERNAL, UNKNOWN = "padded", "internal", "unknown"

# (pattern, kind, part): part says which end of the component the name touches.
_PATTERNS = [
    (r"(?:hook_)?embed", "embed", "out"),
    (r"(?:hook_)?pos_embed", "pos_embed", "out"),
    (r"blocks\.0\.hook_resid_pre|Resid Start", "embeds", "out"),
    (r"Resid End", "output", "in"),
    (r"blocks\.(\d+)\.hook_resid_post", "output", "in"),
    (r"blocks\.(\d+)\.attn\[(\d+)\]|A(\d+)\.(\d+)", "head", "whole"),
    (r"blocks\.(\d+)\.attn\.hook_result\[(\d+)\]", "head", "whole"),
    (r"blocks\.(\d+)\.hook_([qkv])_input\[(\d+)\]", "head", "input"),
    (r"A(\d+)\.(\d+)\.([QKV])", "head", "input"),
    (r"blocks\.(\d+)\.attn\.hook_([qkv])\[(\d+)\]", "head", "inside"),
    (r"blocks\.(\d+)\.mlp|blocks\.(\d+)\.hook_mlp_out|MLP (\d+)", "mlp", "whole"),
    (r"blocks\.(\d+)\.hook_mlp_in", "mlp", "input"),
]
AUTO_CIRCUIT = re.compile(r"Resid (Start|End)|A\d+\.\d+(\.[QKV])?|MLP \d+")


@dataclasses.dataclass(frozen=True)
class NodeRef:
    """What a node name points at: kind, layer, head, q/k/v side and which end."""

    kind: str                 # embed, pos_embed, embeds, head, mlp, output
    part: str                 # out, in, whole, input, inside
    layer: int | None = None
    head: int | None = None
    side: str | None = None   # q, k or v for a head's input or inside hook


def parse_node(name: str) -> NodeRef | None:
    """The NodeRef of `name` in any of the three namings, or None if none matches."""
    for pattern, kind, part in _PATTERNS:
        match = re.fullmatch(pattern, name.strip())
        if not match:
            continue
        groups = [g for g in match.groups() if g is not None]
        numbers = [int(g) for g in groups if g.isdigit()]
        side = next((g.lower() for g in groups if not g.isdigit()), None)
        return NodeRef(kind, part, *(numbers + [None, None])[:2], side)
    return None


def is_auto_circuit(name: str) -> bool:
    """Whether an edge name is auto-circuit's `src->dest` form (scored by |score|)."""
    up, _, down = name.partition("->")
    return bool(AUTO_CIRCUIT.fullmatch(up.strip()) and AUTO_CIRCUIT.fullmatch(down.strip()))


def split_edge_name(name: str) -> tuple[str, str] | None:
    """("up", "down") of an edge written as one string, `up->down` or `up -> down`."""
    up, arrow, down = name.partition("->")
    return (up.strip(), down.strip()) if arrow else None


def joins_embeddings(keys) -> bool:
    """Whether some edge key sends from both embeddings at once (`Resid Start`,
    `blocks.0.hook_resid_pre`): then the two cannot be told apart."""
    for key in keys:
        pair = split_edge_name(key) if isinstance(key, str) else key
        if isinstance(pair, tuple) and pair and isinstance(pair[0], str):
            ref = parse_node(pair[0])
            if ref is not None and ref.kind == "embeds":
                return True
    return False


class ModelShape:
    """The writers and reader slots one model has, and the padded ones it lacks."""

    def __init__(self, writers, slots, n_layers: int):
        self.writers = {w.name for w in writers}
        self.slots = {s.name for s in slots}
        self.n_layers = n_layers
        heads = [int(w.name.split("[")[1][:-1]) for w in writers if "[" in w.name]
        self.n_heads = max(heads, default=-1) + 1

    def _padded(self, ref: NodeRef) -> bool:
        """A head or MLP inside the export's shape that the model does not have."""
        return ref.layer is not None and ref.layer < self.n_layers and \
            (ref.kind == "mlp" or (ref.head is not None and ref.head < max(self.n_heads, 1)))

    def writers_of(self, ref: NodeRef) -> set[str] | str:
        """Writer hooks an upstream name stands for, or PADDED / INTERNAL / UNKNOWN."""
        if ref.kind in ("embed", "pos_embed", "embeds"):
            names = {"embed": {"hook_embed"}, "pos_embed": {"hook_pos_embed"}}.get(
                ref.kind, set(EMBEDDINGS))
            return names & self.writers or UNKNOWN
        if ref.kind == "output" or ref.layer is None or ref.part in ("input", "inside"):
            return UNKNOWN  # a reader's input sends nothing out of its component
        name = result_hook(ref.layer, ref.head) if ref.kind == "head" else mlp_out_hook(ref.layer)
        return {name} if name in self.writers else PADDED if self._padded(ref) else UNKNOWN

    def slots_of(self, ref: NodeRef) -> set[str] | str:
        """Reader slot hooks a downstream name stands for, or PADDED / UNKNOWN."""
        if ref.kind == "output":
            last = output_hook(self.n_layers)
            return {last} if ref.layer in (None, self.n_layers - 1) else UNKNOWN
        if ref.kind not in ("head", "mlp"):
            return UNKNOWN
        if ref.kind == "mlp":
            names = {input_hook(ref.layer, "mlp")}
        else:
            sides = [ref.side] if ref.side else SIDES
            names = {input_hook(ref.layer, side, ref.head) for side in sides}
        found = names & self.slots
        return found or (PADDED if self._padded(ref) else UNKNOWN)


def resolve_edge(shape: ModelShape, up: str, down: str) -> set[tuple[str, str]] | str:
    """The (writer, slot) edges that (up, down) names, or PADDED / INTERNAL / UNKNOWN.

    An edge inside one head or MLP (`hook_q_input -> hook_q -> hook_result`,
    `hook_mlp_in -> hook_mlp_out`) is INTERNAL: no method scores it.
    """
    a, b = parse_node(up), parse_node(down)
    if a is None or b is None:
        return UNKNOWN
    if a.part in ("input", "inside") and b.kind == a.kind and \
            (b.layer, b.head) == (a.layer, a.head):
        return INTERNAL
    writers, slots = shape.writers_of(a), shape.slots_of(b)
    for status in (UNKNOWN, PADDED):
        if status in (writers, slots):
            return status
    return {(w, s) for w in writers for s in slots}
