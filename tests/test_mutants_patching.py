"""The patching methods (interp/circuits/patching.py) against the ground truth and by hand.

Written to kill the mutants `make mutation` found alive (docs/mutation.md).
Decoding, changed pairs and the reader order are checked on tiny arrays and
graphs worked out by hand; the methods on `reverse` (8 pairs) against what the
compiler's ground truth says: off-circuit edges move nothing, ACDC keeps exactly
the live true edges, and ACDC that never prunes is path patching.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest

from examples.library import EXAMPLES
from interp.circuits import acdc, activation_patching, example_model, make_dataset, path_patching
from interp.circuits.patching import (ACDC_THRESHOLD, CHUNK, _reader_order, changed_pairs,
                                      decode_indices, metric_of, patched_logits, scorable_edges)

NOISE = 1e-4  # float rounding of value-blind reads; a decoded change is far above it


def categorical(numerical=False):
    return SimpleNamespace(config=SimpleNamespace(output_numerical=numerical))


def test_decode_indices_by_hand():
    logits = np.array([[0.9, 0.2, 0.1], [0.1, 0.3, 0.4], [0.5, 0.6, 0.2], [0.5, 0.1, 0.0]])
    # argmax 0, 2, 1, 0; the top must exceed 0.5 (DECODE_THRESHOLD) or the value is None (-1).
    assert decode_indices(categorical(), logits).tolist() == [0, -1, 1, -1]
    assert decode_indices(categorical(True), np.array([[3.0, 9.0], [4.0, 8.0]])).tolist() == [3, 4]
    empty = decode_indices(categorical(), np.zeros((2, 3, 0)))
    assert empty.shape == (2, 3) and (empty == -1).all()


def one_hot(indices, width=2):
    return np.eye(width)[indices] * 0.9


def stub_dataset(clean, scored, numerical=False):
    return SimpleNamespace(hooked=SimpleNamespace(model=categorical(numerical)),
                           clean_run={"output": clean}, arrays={"scored": np.array(scored)})


def test_changed_pairs_by_hand():
    clean = np.stack([one_hot([0, 0, 1]), one_hot([0, 1, 1])])     # 2 pairs x 3 positions
    scored = [[False, True, True], [False, True, False]]          # BOS, and a PAD in pair 1
    unscored_moves = np.stack([one_hot([1, 0, 1]), one_hot([0, 1, 0])])
    scored_move = np.stack([one_hot([0, 0, 0]), one_hot([0, 1, 1])])
    got = changed_pairs(stub_dataset(clean, scored), np.stack([unscored_moves, scored_move]))
    assert got.tolist() == [[False, False], [True, False]]
    values = np.array([[[1.0], [2.0], [0.0]]])
    patched = np.array([[[[1.0], [2.00005], [1e-4]]], [[[1.0], [2.001], [0.0]]]])
    got = changed_pairs(stub_dataset(values, [[False, True, True]], True), patched)
    assert got.tolist() == [[False], [True]]  # a numerical change counts above 1e-4 only


def test_reader_order_by_hand():
    graph = nx.DiGraph()
    for u, v, internal in [("embed", "blocks.1.mlp", False), ("embed", "blocks.1.attn[0]", False),
                           ("embed", "blocks.0.attn[1]", False),
                           ("blocks.1.mlp", "blocks.1.hook_resid_post", False),
                           ("blocks.0.attn[1]", "blocks.10.attn[0]", False),
                           ("blocks.0.attn[1]", "blocks.40.mlp", False),
                           ("blocks.0.hook_q_input[0]", "blocks.0.attn.hook_q[0]", True)]:
        graph.add_edge(u, v, internal=internal)
    order = _reader_order(graph, SimpleNamespace(n_layers=2))
    # Layer, attention before MLP (layer 10 after layer 1), the output last; no node that
    # only internal edges enter, nor one nothing enters.
    assert order == ["blocks.0.attn[1]", "blocks.1.attn[0]", "blocks.1.mlp",
                     "blocks.10.attn[0]", "blocks.40.mlp", "blocks.1.hook_resid_post"]


@functools.lru_cache(maxsize=None)
def reverse():
    model = example_model("reverse")
    return model, make_dataset(EXAMPLES["reverse"], model, 8, seed=0)


def live_true_edges(truth, dataset, granularity):
    graph = truth.circuit_graph(granularity)
    dead = truth.inert(dataset, granularity) | {
        (u, v) for u, v, a in graph.edges(data=True) if a["constant"]}
    return {(u, v) for u, v, a in graph.edges(data=True) if not a["internal"]} - dead


@pytest.mark.parametrize("granularity", ["component", "acdc_hooks"])
def test_path_patching_and_acdc_follow_the_truth(granularity):
    model, dataset = reverse()
    truth = model.ground_truth
    true = truth.circuit_graph(granularity)
    live = live_true_edges(truth, dataset, granularity)
    edges = {(u, v) for u, v, _ in scorable_edges(truth, granularity)}
    assert len(edges) == len(truth.full_graph(granularity).edges) - sum(
        a["internal"] for *_, a in truth.full_graph(granularity).edges(data=True))
    scores = path_patching(dataset, granularity)
    assert set(scores) == edges and live
    assert all(abs(s) <= NOISE for e, s in scores.items() if not true.has_edge(*e))
    assert all(scores[e] > ACDC_THRESHOLD for e in live)
    pruned = acdc(dataset, granularity)
    assert set(pruned) == edges
    assert {e for e, s in pruned.items() if s >= ACDC_THRESHOLD} == live
    # Never pruning, every edge is tried alone against the clean run: path patching.
    unpruned = acdc(dataset, granularity, threshold=-np.inf)
    assert unpruned == pytest.approx(scores, rel=1e-4, abs=1e-6)
    # Pruning every edge for good, the raises add up to corrupting all edges at once.
    everything = acdc(dataset, granularity, threshold=np.inf)
    wiring = dataset.hooked.wiring
    all_edges = np.max([wiring.mask([a]) for *_, a in scorable_edges(truth, granularity)], axis=0)
    total = metric_of(dataset, patched_logits(dataset, all_edges[None]))[0]
    assert sum(everything.values()) == pytest.approx(total, rel=1e-4) and total > ACDC_THRESHOLD


def test_acdc_visits_readers_backwards_and_writers_latest_first():
    model, dataset = reverse()
    # reverse: embed, pos_embed, L0 head, L0 MLP, L1 head; the output reads all five.
    embed, pos, head0, mlp0, head1 = ("embed", "pos_embed", "blocks.0.attn[0]",
                                      "blocks.0.mlp", "blocks.1.attn[0]")
    out = "blocks.1.hook_resid_post"
    order = [(w, out) for w in (head1, mlp0, head0, pos, embed)] + \
        [(w, head1) for w in (mlp0, head0, pos, embed)] + \
        [(w, mlp0) for w in (head0, pos, embed)] + [(w, head0) for w in (pos, embed)]
    scores = acdc(dataset)  # component granularity by default
    assert list(scores) == order
    assert path_patching(dataset) == path_patching(dataset, "component")


@pytest.mark.parametrize("granularity", ["component", "acdc_hooks"])
def test_activation_patching_names_every_writer(granularity):
    model, dataset = reverse()
    graph = model.ground_truth.full_graph(granularity)
    writers = {n for n, kind in graph.nodes(data="kind") if kind == "writer"}
    scores = activation_patching(dataset, granularity)
    assert set(scores) == writers
    true_writers = {u for u, v in live_true_edges(model.ground_truth, dataset, granularity)}
    assert all(scores[w] > ACDC_THRESHOLD for w in true_writers)


def test_patched_logits_in_chunks():
    model, dataset = reverse()
    wiring = dataset.hooked.wiring
    edges = scorable_edges(model.ground_truth, "component")
    single = np.stack([wiring.mask([a]) for *_, a in edges])
    masks = single[np.arange(CHUNK + 1) % len(single)]  # two chunks, the second padded
    out = patched_logits(dataset, masks)
    clean = np.asarray(dataset.clean_run["output"])
    assert out.shape == (CHUNK + 1,) + clean.shape
    np.testing.assert_allclose(out, out[np.arange(CHUNK + 1) % len(single)], atol=1e-6)
    one = patched_logits(dataset, masks[CHUNK:])
    np.testing.assert_allclose(one[0], out[CHUNK], atol=1e-5)
    untouched = patched_logits(dataset, np.zeros((1,) + single.shape[1:]))
    np.testing.assert_allclose(untouched[0], clean, atol=1e-5)
    assert metric_of(dataset, untouched) == pytest.approx([0.0], abs=1e-6)
    assert patched_logits(dataset, np.zeros((0,) + single.shape[1:])).shape == (0,)
