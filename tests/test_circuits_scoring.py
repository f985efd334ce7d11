"""The scorer (interp/circuits/scoring.py) on cases whose answers are known by hand,
the methods' output format, `raspc score`, and activation patching on reverse, hist, sort.
"""

from __future__ import annotations

import json
import random

import pytest

from examples.library import EXAMPLES
from interp.circuits import (METHODS, activation_patching, example_model, make_dataset,
                             pessimistic_auroc, score_edges, scores_from_json, scores_to_json)
from interp.circuits.patching import scorable_edges
from raspc.cli import main

NAMES = sorted(EXAMPLES)
GRANULARITIES = ("component", "acdc_hooks")


def oracle(truth, granularity, flip=False):
    true = truth.circuit_graph(granularity)
    return {(u, v): float(true.has_edge(u, v) != flip)
            for u, v, _ in scorable_edges(truth, granularity)}


def test_pessimistic_auroc_by_hand():
    assert pessimistic_auroc([1.0, 0.5], [0.5, 0.0]) == 0.75  # the tie counts as a miss
    assert pessimistic_auroc([2.0], [1.0, 0.0]) == 1.0
    assert pessimistic_auroc([0.0], [1.0]) == 0.0
    assert pessimistic_auroc([1.0, 1.0], [1.0]) == 0.0       # all tied: nothing gained


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_oracle_and_reversed_oracle(granularity):
    for name in NAMES:
        truth = example_model(name).ground_truth
        good = score_edges(truth, oracle(truth, granularity), granularity)
        bad = score_edges(truth, oracle(truth, granularity, flip=True), granularity)
        assert good.edges.precision_at_size == 1.0, name
        for kind in ("edges", "nodes"):
            a, b = getattr(good, kind), getattr(bad, kind)
            if a.negatives:
                assert (a.auroc, b.auroc) == (1.0, 0.0), (name, kind)
            else:  # e.g. frac_prevs' canonical hooks: every candidate edge is true
                assert a.auroc is b.auroc is None and a.why == b.why == "no negatives"
        if granularity == "component":  # embeddings -> output are always negatives
            assert good.edges.negatives, name


def test_random_scores_average_one_half():
    rng = random.Random(0)
    aurocs = []
    for name in NAMES:
        truth = example_model(name).ground_truth
        scores = {(u, v): rng.random() for u, v, _ in scorable_edges(truth, "component")}
        aurocs.append(score_edges(truth, scores, "component").edges.auroc)
    assert abs(sum(aurocs) / len(aurocs) - 0.5) <= 0.1, aurocs


def test_ties_are_pessimistic_on_a_model():
    truth = example_model("reverse").ground_truth
    scores = oracle(truth, "component")
    result = score_edges(truth, scores, "component")
    n = result.edges.negatives
    negative = next(e for e, s in scores.items() if s == 0.0)
    scores[negative] = 1.0  # one negative ties with every positive
    tied = score_edges(truth, scores, "component")
    assert tied.edges.auroc == (n - 1) / n
    everything_equal = score_edges(truth, dict.fromkeys(scores, 0.5), "component")
    assert everything_equal.edges.auroc == 0.0
    assert everything_equal.edges.precision_at_size == 0.0  # ties put negatives first


def test_excluded_edges_are_counted_and_can_be_kept():
    model = example_model("reverse")
    truth = model.ground_truth
    dataset = make_dataset(EXAMPLES["reverse"], model, 16, seed=0)
    scores = oracle(truth, "component")
    default = score_edges(truth, scores, "component", dataset=dataset)
    kept = score_edges(truth, scores, "component", dataset=dataset, keep_excluded=True)
    # reverse: 7 true edges; `one` into the MLP is constant; the length path is inert.
    assert (default.edges.positives, default.edges.excluded) == (2, 5)
    assert (kept.edges.positives, kept.edges.excluded) == (7, 0)
    assert kept.edges.auroc == 1.0


def test_unknown_edges_are_refused():
    truth = example_model("reverse").ground_truth
    with pytest.raises(ValueError, match="unknown edge"):
        score_edges(truth, {("embed", "nowhere"): 1.0}, "component")
    with pytest.raises(ValueError, match="granularity"):
        score_edges(truth, {}, "matrix")


def test_json_round_trip():
    truth = example_model("hist").ground_truth
    scores = oracle(truth, "acdc_hooks")
    again, granularity = scores_from_json(scores_to_json(scores, "acdc_hooks", "oracle"))
    assert (again, granularity) == (scores, "acdc_hooks")
    nodes = {"embed": 0.5, "blocks.0.attn[0]": 1.0}
    assert scores_from_json(scores_to_json(nodes, "component")) == (nodes, "component")
    with pytest.raises(ValueError, match="edges"):
        scores_from_json(json.dumps({"granularity": "component"}))


def test_raspc_score(tmp_path, capsys):
    truth = example_model("reverse").ground_truth
    path = tmp_path / "scores.json"
    path.write_text(scores_to_json(oracle(truth, "component"), "component"))
    assert main(["score", "reverse", str(path), "--max-seq-len", "5", "--pairs", "16"]) == 0
    out = capsys.readouterr().out
    assert "edges: AUROC 1.000; 2 true" in out and "5 left out" in out
    assert "nodes: AUROC undefined (no negatives)" in out
    path.write_text("{not json")
    assert main(["score", "reverse", str(path)]) == 2
    assert capsys.readouterr().err.startswith("raspc: error:")


@pytest.mark.parametrize("name", ["reverse", "hist", "sort"])
def test_activation_patching_ranks_every_live_true_component_first(name):
    model = example_model(name)
    truth = model.ground_truth
    dataset = make_dataset(EXAMPLES[name], model, 32, seed=0)
    graph = truth.circuit_graph("component")
    excluded = truth.inert(dataset, "component") | {
        (u, v) for u, v, a in graph.edges(data=True) if a["constant"]}
    live = {n for u, v in graph.edges if (u, v) not in excluded for n in (u, v)}
    live.discard(f"blocks.{truth.n_layers - 1}.hook_resid_post")
    scores = activation_patching(dataset)
    others = set(scores) - live
    assert live and min(scores[n] for n in live) > max(scores[n] for n in others), scores


def test_every_method_gives_scores_on_the_candidate_edges():
    model = example_model("hist")
    dataset = make_dataset(EXAMPLES["hist"], model, 8, seed=0)
    for granularity in GRANULARITIES:
        edges = {(u, v) for u, v, _ in scorable_edges(model.ground_truth, granularity)}
        for name, method in METHODS.items():
            scores = method(dataset, granularity)
            if name == "activation_patching":
                assert all(isinstance(k, str) for k in scores)
            else:
                assert set(scores) == edges, name
            assert all(isinstance(s, float) for s in scores.values())
            score_edges(model.ground_truth, scores, granularity, dataset=dataset)
