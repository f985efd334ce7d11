"""The scorer (interp/circuits/scoring.py) on cases whose answers are known by hand,
the methods' output format, `raspc score`, activation patching on reverse, hist, sort,
and path patching and EAP-IG scores on reverse worked out by hand.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from examples.library import EXAMPLES
from interp.circuits import (METHODS, activation_patching, eap_ig, example_model, make_dataset,
                             path_patching, pessimistic_auroc, score_edges, scores_from_json,
                             scores_to_json)
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


# ------------------------------------------------ scores worked out by hand on reverse
# reverse (N = 5) has two true edges that carry the tokens: embed -> the flip head
# (its v input) and the flip head -> the output; the corrupted input has the clean
# one's length, so the length and opp_index paths are identical on both. The output
# columns are the three tokens, logit 1 on the carried token and 0 elsewhere. So with
# an edge on the token path corrupted, position i's logits move from e_c (c, the
# clean answer) to e_c' (c', the corrupted one) wherever the reversed inputs differ,
# and every other edge changes nothing.
STEPS = 8  # EAP-IG's interpolation points
CARRYING = {("embed", "blocks.1.attn[0]"), ("blocks.1.attn[0]", "blocks.1.hook_resid_post")}


@pytest.fixture(scope="module")
def reverse_pairs():
    model = example_model("reverse")
    return make_dataset(EXAMPLES["reverse"], model, 16, seed=0)


def changed_positions(dataset) -> list[int]:
    """Per pair: how many positions of the reversed inputs differ (reversal by hand)."""
    return [sum(a != b for a, b in zip(clean[::-1], corrupt[::-1]))
            for clean, corrupt in zip(dataset.clean, dataset.corrupt)]


def test_path_patching_matches_the_kl_worked_out_by_hand(reverse_pairs):
    """KL(softmax(e_c) || softmax(e_c')) over V columns: p_c/q_c = e, p_c'/q_c' = 1/e,
    the rest cancel, so KL = (e − 1)/(e + V − 1) at a changed position, 0 elsewhere;
    the metric averages it over the n positions, then over pairs."""
    v = len(EXAMPLES["reverse"].vocab)
    per_position = (math.e - 1) / (math.e + v - 1)
    expected = np.mean([k / len(xs) * per_position
                        for k, xs in zip(changed_positions(reverse_pairs), reverse_pairs.clean)])
    assert expected > 0.1
    scores = path_patching(reverse_pairs)
    for edge, score in scores.items():
        want = expected if edge in CARRYING else 0.0
        assert score == pytest.approx(want, rel=1e-3, abs=1e-6), edge


def test_eap_ig_matches_the_integral_worked_out_by_hand(reverse_pairs):
    """EAP-IG interpolates the embeddings: at t the logits at a changed position are
    z = (1 − t)·e_c + t·e_c' (the token path is linear). The objective log softmax(z)_c
    has gradient e_c − softmax(z), and the edge moves the output by e_c' − e_c, so
    each changed position adds f(t) = −1 − s_c'(t) + s_c(t), with
    s_c = e^(1−t)/D, s_c' = e^t/D, D = e^(1−t) + e^t + V − 2. The method averages
    f over t = 1/STEPS, …, 1 and takes |Σ over positions| per pair, then the mean."""
    v = len(EXAMPLES["reverse"].vocab)
    ts = np.arange(1, STEPS + 1) / STEPS
    denominator = np.exp(1 - ts) + np.exp(ts) + v - 2
    f = np.mean(-1 - np.exp(ts) / denominator + np.exp(1 - ts) / denominator)
    expected = np.mean([abs(k * f) for k in changed_positions(reverse_pairs)])
    assert expected > 0.5
    scores = eap_ig(reverse_pairs, steps=STEPS)
    for edge, score in scores.items():
        want = expected if edge in CARRYING else 0.0
        assert score == pytest.approx(want, rel=1e-3, abs=1e-6), edge
