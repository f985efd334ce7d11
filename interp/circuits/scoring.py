"""Score a method's edge (or node) scores against the exact true circuit.

`score_edges(truth, scores, granularity)` gives, for edges and for nodes, TPR
and FPR at every threshold, the ROC curve, the pessimistic AUROC (ties count
against the method, as in InterpBench's step ROC), precision at the true
circuit's size and the true edges ranked lowest. Constant edges (and, given a
dataset, inert ones) are left out of positives and negatives unless
`keep_excluded`. At acdc_hooks / sp_hooks granularity both sides are
canonicalised first (compiler.granularity.canonical_name).

The JSON an outside tool writes (`scores_to_json` / `scores_from_json`):
  {"granularity": "component", "method": "eap",
   "edges": [{"upstream": "embed", "downstream": "blocks.0.attn[0]", "score": 0.3}, ...]}
or, for a method that scores components, "nodes": [{"node": ..., "score": ...}, ...],
or auto-circuit's own output, {"Resid Start->A0.0.Q": 0.3, "A0.0->MLP 1": -0.1, ...}.
Edge names may be ours, TransformerLens legacy hook names or auto-circuit's
(interp.circuits.edge_names reads all three).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math

from compiler.granularity import GRANULARITIES, RESID_PRE, canonical_name, output_hook, sites
from interp.circuits.edge_names import (EMBEDDINGS, INTERNAL, PADDED, UNKNOWN, ModelShape,
                                        is_auto_circuit, joins_embeddings, resolve_edge,
                                        split_edge_name)

MISSING = -math.inf  # the score of an edge a method did not score
SHOWN_LOWEST = 5
MERGES = (None, "max", "sum")  # how repeated scores for one edge combine (None: refuse)


@dataclasses.dataclass(frozen=True)
class Curve:
    """One ROC evaluation (edges or nodes). auroc is None when undefined (see `why`)."""

    positives: int
    negatives: int
    excluded: int
    auroc: float | None
    why: str | None
    thresholds: tuple[float, ...]
    tpr: tuple[float, ...]
    fpr: tuple[float, ...]
    precision_at_size: float | None
    lowest_true: tuple[tuple[str, float, int], ...]  # (item, score, rank), lowest first
    missed: tuple[tuple[str, float, int], ...]  # true items not above every false one

    def summary(self) -> str:
        """One line: AUROC (or why not), counts, precision at the circuit's size."""
        auroc = f"{self.auroc:.3f}" if self.auroc is not None else f"undefined ({self.why})"
        precision = "-" if self.precision_at_size is None else f"{self.precision_at_size:.3f}"
        return (f"AUROC {auroc}; {self.positives} true, {self.negatives} false, "
                f"{self.excluded} left out; precision at {self.positives}: {precision}")


@dataclasses.dataclass(frozen=True)
class CircuitScore:
    """Edge and node scores of one method against one model's truth."""

    granularity: str
    edges: Curve
    nodes: Curve
    unscored: int  # edges the method gave no score (ranked lowest)
    notes: tuple[str, ...] = ()  # scored edges left out, and why

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def format(self) -> str:
        """A few lines for a terminal: both summaries and the lowest-ranked true edges."""
        lines = [f"granularity {self.granularity}",
                 f"edges: {self.edges.summary()}", f"nodes: {self.nodes.summary()}"]
        lines += self.notes
        if self.unscored:
            lines.append(f"{self.unscored} edges had no score (ranked last)")
        for kind, curve in (("edges", self.edges), ("nodes", self.nodes)):
            if curve.lowest_true:
                lines.append(f"true {kind} ranked lowest:")
                lines += [f"  #{rank} {item}  score {score:.4g}"
                          for item, score, rank in curve.lowest_true]
        return "\n".join(lines)


def _key(edge) -> str:
    return f"{edge[0]} -> {edge[1]}"


def score_edges(truth, scores: dict, granularity: str = "component", dataset=None,
                keep_excluded: bool = False, canonical: bool = True,
                merge: str | None = None, task: str | None = None) -> CircuitScore:
    """Score `scores` ({(up, down): s}, {"up->down": s} or {node: s}) against `truth`.

    Edge names may be ours, TransformerLens legacy hook names or auto-circuit's
    (see interp.circuits.edge_names), at any `granularity`. Where one scored edge
    stands for several (q, k and v sides of a head, both embeddings), the score
    with the largest magnitude wins; auto-circuit's scores count by |score|, as
    auto-circuit ranks them. Edges into or out of padded components and edges
    inside a head or MLP are ignored (one line in `notes`).
    dataset: a Dataset whose inert edges are left out too (see GroundTruth.inert).
    keep_excluded: count constant and inert true edges as positives instead.
    canonical: at hook granularities, score InterpBench's canonical edges.
    merge: None refuses two scores for one edge; "max" or "sum" combines them.
    task: a several-task model's task, whose circuit is the truth (every edge of the
    model is still scored; the other tasks' edges are false).
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, "
                         f"got {granularity!r}")
    if merge not in MERGES:
        raise ValueError(f"merge must be one of {', '.join(map(str, MERGES))}, got {merge!r}")
    rename = canonical_name if canonical else (lambda n: n)
    # Scores from both embeddings at once make them one node at component too.
    joint = canonical and granularity == "component" and joins_embeddings(scores)
    if joint:
        rename = _joint_embeddings
    full = truth.full_graph(granularity)
    true_graph = truth.circuit_graph(granularity, task=task)
    excluded = {(u, v) for u, v, a in true_graph.edges(data=True) if a["constant"]}
    if dataset is not None:
        excluded |= truth.inert(dataset, granularity, task=task)
    out = output_hook(truth.n_layers)
    writers, slots = sites(truth)
    # canonical edge -> its slot edges (writer hook, reader slot); slot edge -> canonical edge
    universe, label, home = {}, {}, {}
    for slot in slots:
        for w in writers:
            if w.sublayer >= slot.sublayer:
                continue
            home[w.name, slot.name] = None
            if canonical and granularity != "component" and w.name in EMBEDDINGS \
                    and slot.name == out:
                continue  # InterpBench drops embeddings -> output edges
            raw = (w.component, slot.component) if granularity == "component" \
                else (w.name, slot.name)
            edge = home[w.name, slot.name] = (rename(raw[0]), rename(raw[1]))
            universe.setdefault(edge, []).append((w.name, slot.name))
            if true_graph.has_edge(*raw):
                status = True if keep_excluded or raw not in excluded else None
                label[edge] = True if True in (label.get(edge), status) else status
            else:
                label.setdefault(edge, False)
    shape = ModelShape(writers, slots, truth.n_layers)
    node_scores, edge_scores, unscored, notes = _split(scores, universe, home, shape, rename,
                                                       out, full, merge)
    nodes = {n for edge in universe for n in edge if n != out}
    node_label = {n: False for n in nodes}
    for (u, v), status in label.items():
        for n in (u, v):
            if n != out and status is not False:
                node_label[n] = True if True in (node_label[n], status) else status
    if node_scores is None:  # a node is in the circuit as soon as one of its edges is
        node_scores = {n: max((s for e, s in edge_scores.items() if n in e), default=MISSING)
                       for n in nodes}
    if joint:
        notes += (f"embed and pos_embed are scored as one node, {RESID_PRE}, "
                  f"as the scores name them",)
    return CircuitScore(granularity, _curve(edge_scores, label, _key),
                        _curve({n: node_scores.get(n, MISSING) for n in nodes}, node_label, str),
                        unscored, notes)


def _joint_embeddings(node: str) -> str:
    return RESID_PRE if node in ("embed", "pos_embed") else node


def _split(scores, universe, home, shape, rename, out, full, merge):
    """(node scores or None, edge scores over the universe, unscored count, notes)."""
    by_node = bool(scores) and all(isinstance(k, str) and "->" not in k for k in scores)
    if by_node:
        unknown = [k for k in scores if k not in full or k == out]
        if unknown:
            raise ValueError(f"unknown nodes {unknown[:3]}; expected nodes like "
                             f"{sorted(n for n in full if n != out)[:3]}")
        node_scores = {}
        for k, s in scores.items():
            node_scores[rename(k)] = max(node_scores.get(rename(k), MISSING), float(s))
        node_scores[out] = math.inf  # the output is in every circuit
        edge_scores = {e: min(node_scores.get(e[0], MISSING), node_scores.get(e[1], MISSING))
                       for e in universe}
        return {k: v for k, v in node_scores.items() if k != out}, edge_scores, 0, ()
    slot_scores, ignored = _slot_scores(scores, universe, home, shape, merge)
    edge_scores = {e: max((slot_scores[m] for m in members if m in slot_scores),
                          key=abs, default=MISSING) for e, members in universe.items()}
    unscored = sum(1 for s in edge_scores.values() if s == MISSING)
    return None, edge_scores, unscored, _ignored_note(ignored)


def _slot_scores(scores, universe, home, shape, merge) -> tuple[dict, dict]:
    """({(writer, slot): score}, {reason: count of ignored keys}) of edge-keyed scores."""
    slot_scores, scored_by, ignored = {}, {}, {}
    for k, s in scores.items():
        pair = split_edge_name(k) if isinstance(k, str) else k
        resolved = resolve_edge(shape, *pair) if isinstance(pair, tuple) and len(pair) == 2 \
            and all(isinstance(n, str) for n in pair) else UNKNOWN
        forward = [e for e in resolved if e in home] if isinstance(resolved, set) else []
        if resolved == UNKNOWN or (isinstance(resolved, set) and not forward):
            raise ValueError(f"unknown edge {k!r}; expected (upstream, downstream) hook pairs "
                             f"such as {next(iter(universe), None)!r}, or auto-circuit names "
                             f"such as 'Resid Start->A0.0.Q'")
        if isinstance(resolved, str):
            ignored[resolved] = ignored.get(resolved, 0) + 1
            continue
        value = abs(float(s)) if isinstance(k, str) and is_auto_circuit(k) else float(s)
        for e in forward:
            if e in slot_scores and merge is None:
                raise ValueError(f"edge {k!r} scores {e[0]} -> {e[1]} again (also scored by "
                                 f"{scored_by[e]!r}); give merge='max' or 'sum' "
                                 f"(raspc score --merge) to combine repeated scores")
            slot_scores[e] = value if e not in slot_scores else \
                max(slot_scores[e], value) if merge == "max" else slot_scores[e] + value
            scored_by[e] = k
        if not any(home[e] for e in forward):
            ignored["embeddings"] = ignored.get("embeddings", 0) + 1
    return slot_scores, ignored


def _ignored_note(ignored: dict) -> tuple[str, ...]:
    """One line saying which scored edges were ignored and why (empty if none)."""
    reasons = {PADDED: "touch padded components (zero weights in the export)",
               INTERNAL: "lie inside a head or MLP (no method scores those)",
               "embeddings": "run from the embeddings to the output (InterpBench drops them)"}
    parts = [f"{n} {reasons[why]}" for why, n in ignored.items()]
    return (f"ignored {sum(ignored.values())} scored edges: {'; '.join(parts)}",) if parts else ()


def _curve(scores: dict, label: dict, name) -> Curve:
    """ROC over items labelled True (positive) / False (negative); None is left out."""
    items = [k for k in scores if label.get(k) is not None]
    pos = [k for k in items if label[k]]
    neg = [k for k in items if not label[k]]
    excluded = sum(1 for k in scores if label.get(k) is None)
    # Pessimistic order: by score, and among ties negatives first.
    ranked = sorted(items, key=lambda k: (-scores[k], bool(label[k])))
    thresholds, tpr, fpr = [], [], []
    for t in sorted({scores[k] for k in items}, reverse=True):
        thresholds.append(t)
        tpr.append(sum(scores[k] >= t for k in pos) / len(pos) if pos else math.nan)
        fpr.append(sum(scores[k] >= t for k in neg) / len(neg) if neg else math.nan)
    why = "no negatives" if not neg else "no positives" if not pos else None
    auroc = None if why else pessimistic_auroc([scores[k] for k in pos],
                                               [scores[k] for k in neg])
    precision = sum(label[k] for k in ranked[:len(pos)]) / len(pos) if pos else None
    rank = {k: i + 1 for i, k in enumerate(ranked)}
    lowest = sorted(pos, key=lambda k: (scores[k], -rank[k]))
    top_negative = max((scores[k] for k in neg), default=-math.inf)
    missed = [k for k in lowest if scores[k] <= top_negative]
    return Curve(len(pos), len(neg), excluded, auroc, why, tuple(thresholds), tuple(tpr),
                 tuple(fpr), precision,
                 tuple((name(k), scores[k], rank[k]) for k in lowest[:SHOWN_LOWEST]),
                 tuple((name(k), scores[k], rank[k]) for k in missed))


def pessimistic_auroc(positive_scores, negative_scores) -> float:
    """Area under the step ROC with ties counted against: P(s_pos > s_neg) over all pairs."""
    negatives = sorted(negative_scores)
    if not positive_scores or not negatives:
        raise ValueError("AUROC needs at least one positive and one negative")
    wins = sum(bisect.bisect_left(negatives, s) for s in positive_scores)
    return wins / (len(positive_scores) * len(negatives))


def scores_to_json(scores: dict, granularity: str, method: str | None = None) -> str:
    """The JSON text of edge or node scores (format in the module docstring)."""
    data = {"granularity": granularity, "method": method}
    if scores and all(isinstance(k, str) for k in scores):
        data["nodes"] = [{"node": k, "score": float(s)} for k, s in scores.items()]
    else:
        data["edges"] = [{"upstream": u, "downstream": v, "score": float(s)}
                         for (u, v), s in scores.items()]
    return json.dumps(data, indent=1)


def scores_from_json(text: str, merge: str | None = None) -> tuple[dict, str]:
    """(scores, granularity) from a scores file; ValueError says what is wrong.

    Takes `scores_to_json`'s format, or an object of edge names to numbers as
    auto-circuit writes them ({"Resid Start->A0.0.Q": 0.3, ...}, optionally with
    "granularity", default "component"). A name given twice is refused unless
    `merge` ("max" or "sum") says how to combine its scores.
    """
    if merge not in MERGES:
        raise ValueError(f"merge must be one of {', '.join(map(str, MERGES))}, got {merge!r}")
    try:  # pairs, not dicts: a JSON object may repeat a name
        data = json.loads(text, object_pairs_hook=lambda pairs: pairs)
    except json.JSONDecodeError as error:
        raise ValueError(f"the scores file is not JSON: {error}") from None
    top = dict(data) if _is_object(data) else {}
    granularity = top.get("granularity", "component")
    try:
        items = _score_items(data, top)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"a score entry lacks a field or a number ({error}); each needs "
                         f'"upstream", "downstream" (or "node") and "score"') from None
    if items is None:
        raise ValueError('the scores file needs an "edges" or a "nodes" list, e.g. '
                         '{"granularity": "component", "edges": [{"upstream": "embed", '
                         '"downstream": "blocks.0.attn[0]", "score": 0.5}]}, or an object '
                         'of edge names to scores, e.g. {"Resid Start->A0.0.Q": 0.5}')
    scores: dict = {}
    for k, v in items:
        if k in scores and merge is None:
            raise ValueError(f"edge {k!r} is scored twice; give merge='max' or 'sum' "
                             f"(raspc score --merge) to combine repeated scores")
        scores[k] = v if k not in scores else max(scores[k], v) if merge == "max" \
            else scores[k] + v
    return scores, granularity


def _is_object(data) -> bool:
    return isinstance(data, list) and all(isinstance(p, tuple) and len(p) == 2 for p in data)


def _score_items(data, top: dict) -> list | None:
    """[(key, score)] in file order, or None when the file has no recognisable scores."""
    if not _is_object(data):
        return None
    if ("edges" in top) != ("nodes" in top):
        entries = top.get("edges", top.get("nodes"))
        if "edges" in top and _is_object(entries):  # {"edges": {"name": score}}
            return [(k, float(v)) for k, v in entries]
        if not isinstance(entries, list):
            return None
        entries = [dict(e) for e in entries]
        if "edges" in top:
            return [((e["upstream"], e["downstream"]), float(e["score"])) for e in entries]
        return [(e["node"], float(e["score"])) for e in entries]
    named = [(k, v) for k, v in data if k not in ("granularity", "method")]
    if not named or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                            for _, v in named):
        return None
    return [(k, float(v)) for k, v in named]
