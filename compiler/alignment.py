"""Where each expression of the program is computed in the model: its alignment.

`program_alignment` maps every program label to the sites (embedding, head, MLP, or a
head's query/key side) that compute it, written out to the residual or implicit in a
component: a head's selectors, an SOp fused into a component. GroundTruth.from_model
stores it as `alignment`.
"""

from __future__ import annotations

from compiler.ground_truth import Site, attn_hook
from rasp import expr as rx
from rasp.traverse import topological_order, unique_labels


def program_alignment(embeddings, components, program, recorded
                      ) -> dict[str, tuple[Site, ...]]:
    """Program label -> the sites computing it: where an embedding or component writes
    it, and where a component computes it without writing it out (`_implicit`)."""
    sites: dict[str, list[Site]] = {}
    for e in embeddings:
        for label in e.exprs:
            sites.setdefault(label, []).append(Site(e.hook, e.hook, None, "embed"))
    for c in components:
        role = "result" if c.kind == "attn" else "mlp_out"
        for label in c.exprs:
            sites.setdefault(label, []).append(Site(c.id, c.hook, c.head, role))
    materialized = set(recorded) | {x for c in components for x in c.exprs}
    for c, label, role in _implicit(components, program, materialized):
        if role == "fused":
            sites.setdefault(label, []).append(Site(c.id, c.hook, c.head, role))
        else:
            sites.setdefault(label, []).extend(
                Site(c.id, attn_hook(c.layer, hook), c.head, side)
                for side, hook in (("query", "q"), ("key", "k")))
    return {label: tuple(s) for label, s in sites.items()}


_EMBEDDED = (rx.TokensType, rx.IndicesType, rx.Full, rx.ConstantSOp)


def _implicit(components, program, materialized):
    """(component, label, role) for what a component computes without writing it out.

    Walking the original program down from a component's expressions: a head
    computes its selector and sub-selectors (role "selector"); an SOp that is in
    no residual direction was fused into the component (role "fused": an MLP
    chain link, a Map folded into W_QK/W_OV or a SelectorWidth's MLP, a mean
    merged into another). An MLP stops at Aggregate/SelectorWidth (the head's part).
    """
    if program is None:
        return []
    order = topological_order(program)
    labels = unique_labels(order)
    by_label = {labels[e.unique_id]: e for e in order}
    found = []
    for c in components:
        seen: set[int] = set()
        stack = [(by_label[x], True) for x in reversed(c.exprs) if x in by_label]
        while stack:
            node, top = stack.pop()
            if node.unique_id in seen:
                continue
            seen.add(node.unique_id)
            if isinstance(node, rx.Selector):
                found.append((c, labels[node.unique_id], "selector"))
            elif not top:
                found.append((c, labels[node.unique_id], "fused"))
            if c.kind == "mlp" and isinstance(node, (rx.Aggregate, rx.SelectorWidth)):
                continue
            for child in reversed(node.children):
                if isinstance(child, rx.Selector) and c.kind == "attn" or \
                        isinstance(child, rx.SOp) and not isinstance(child, _EMBEDDED) \
                        and labels[child.unique_id] not in materialized:
                    stack.append((child, False))
    return found
