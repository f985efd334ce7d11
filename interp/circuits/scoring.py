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
or, for a method that scores components, "nodes": [{"node": ..., "score": ...}, ...].
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math

from compiler.granularity import GRANULARITIES, canonical_name, output_hook

MISSING = -math.inf  # the score of an edge a method did not score
SHOWN_LOWEST = 5


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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def format(self) -> str:
        """A few lines for a terminal: both summaries and the lowest-ranked true edges."""
        lines = [f"granularity {self.granularity}",
                 f"edges: {self.edges.summary()}", f"nodes: {self.nodes.summary()}"]
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
                keep_excluded: bool = False, canonical: bool = True) -> CircuitScore:
    """Score `scores` ({(up, down): s} or {node: s}) against `truth` at `granularity`.

    dataset: a Dataset whose inert edges are left out too (see GroundTruth.inert).
    keep_excluded: count constant and inert true edges as positives instead.
    canonical: at hook granularities, score InterpBench's canonical edges.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, "
                         f"got {granularity!r}")
    rename = canonical_name if canonical else (lambda n: n)
    full = truth.full_graph(granularity)
    true_graph = truth.circuit_graph(granularity)
    excluded = {(u, v) for u, v, a in true_graph.edges(data=True) if a["constant"]}
    if dataset is not None:
        excluded |= truth.inert(dataset, granularity)
    universe, label = {}, {}  # canonical edge -> raw edges; canonical edge -> True/False/None
    for u, v, a in full.edges(data=True):
        if a["internal"] or (canonical and u in ("hook_embed", "hook_pos_embed")
                             and v.endswith("hook_resid_post") and granularity != "component"):
            continue
        edge = (rename(u), rename(v))
        universe.setdefault(edge, []).append((u, v))
        if true_graph.has_edge(u, v):
            status = True if keep_excluded or (u, v) not in excluded else None
            label[edge] = True if True in (label.get(edge), status) else status
        else:
            label.setdefault(edge, False)
    out = output_hook(truth.n_layers)
    node_scores, edge_scores, unscored = _split(scores, universe, rename, out, full)
    nodes = {n for edge in universe for n in edge if n != out}
    node_label = {n: False for n in nodes}
    for (u, v), status in label.items():
        for n in (u, v):
            if n != out and status is not False:
                node_label[n] = True if True in (node_label[n], status) else status
    if node_scores is None:  # a node is in the circuit as soon as one of its edges is
        node_scores = {n: max((s for e, s in edge_scores.items() if n in e), default=MISSING)
                       for n in nodes}
    return CircuitScore(granularity, _curve(edge_scores, label, _key),
                        _curve({n: node_scores.get(n, MISSING) for n in nodes}, node_label, str),
                        unscored)


def _split(scores, universe, rename, out, full):
    """(node scores or None, edge scores over the universe, number of unscored edges)."""
    by_node = bool(scores) and all(isinstance(k, str) for k in scores)
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
        return {k: v for k, v in node_scores.items() if k != out}, edge_scores, 0
    raw = {}
    for k, s in scores.items():
        if not (isinstance(k, tuple) and len(k) == 2 and full.has_edge(*k)
                and not full.edges[k]["internal"]):
            raise ValueError(f"unknown edge {k!r}; expected (upstream, downstream) hook pairs "
                             f"such as {next(iter(universe), None)!r} at this granularity")
        raw[k] = float(s)
    edge_scores = {e: max((raw.get(r, MISSING) for r in members), default=MISSING)
                   for e, members in universe.items()}
    unscored = sum(1 for s in edge_scores.values() if s == MISSING)
    return None, edge_scores, unscored


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


def scores_from_json(text: str) -> tuple[dict, str]:
    """(scores, granularity) from `scores_to_json`'s format; ValueError says what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the scores file is not JSON: {error}") from None
    if not isinstance(data, dict) or ("edges" in data) == ("nodes" in data):
        raise ValueError('the scores file needs an "edges" or a "nodes" list, e.g. '
                         '{"granularity": "component", "edges": [{"upstream": "embed", '
                         '"downstream": "blocks.0.attn[0]", "score": 0.5}]}')
    granularity = data.get("granularity", "component")
    try:
        if "edges" in data:
            scores = {(e["upstream"], e["downstream"]): float(e["score"]) for e in data["edges"]}
        else:
            scores = {e["node"]: float(e["score"]) for e in data["nodes"]}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"a score entry lacks a field or a number ({error}); each needs "
                         f'"upstream", "downstream" (or "node") and "score"') from None
    return scores, granularity
