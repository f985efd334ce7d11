"""compiler/granularity.py on a two-layer ground truth built by hand, edges worked out on paper.

Written to kill the mutants `make mutation` found alive (docs/mutation.md). The
GroundTruth below is the real dataclass filled in by hand (no compiled model):
residual 0 `one`, 1 `tokens:a`, 2 `indices:0`, 3 `x`, 4 `y`, 5 `z`;
  head L0.H0: q reads tokens:a, k reads indices:0, v reads one and tokens:a; writes x;
  head L0.H1: reads tokens:a on every side, writes z (which nothing reads);
  MLP  L1.M0: reads one, indices:0 and x; writes y, which the output reads.
`one` is constant. Every expected edge below follows from these lines.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import networkx as nx

import rasp
from compiler.granularity import (canonical_name, canonicalize, constant_directions, sites,
                                  value_blind_rows)
from compiler.ground_truth import Embedding, GroundTruth, GTComponent

LABELS = ("one", "tokens:a", "indices:0", "x", "y", "z")
OUT = "blocks.1.hook_resid_post"
H0, H1, MLP = "blocks.0.attn[0]", "blocks.0.attn[1]", "blocks.1.mlp"
R0, R1, MLP_IN, MLP_OUT = "blocks.0.attn.hook_result[0]", "blocks.0.attn.hook_result[1]", \
    "blocks.1.hook_mlp_in", "blocks.1.hook_mlp_out"
Q0, K0, V0 = "blocks.0.hook_q_input[0]", "blocks.0.hook_k_input[0]", "blocks.0.hook_v_input[0]"
PRE = "blocks.0.hook_resid_pre"


def dirs(*indices):
    return tuple((i, LABELS[i]) for i in indices)


def head(head, q, k, v, writes):
    return GTComponent(f"L0.H{head}", 0, "attn", head, (), "", dirs(*sorted({*q, *k, *v})),
                       dirs(*writes), "blocks.0.attn.hook_result", query_reads=dirs(*q),
                       key_reads=dirs(*k), value_reads=dirs(*v))


TRUTH = GroundTruth(
    LABELS, 2, "y", dirs(4),
    (Embedding("hook_embed", dirs(0, 1), ()), Embedding("hook_pos_embed", dirs(2), ())),
    (head(0, [1], [2], [0, 1], [3]), head(1, [1], [1], [1], [5]),
     GTComponent("L1.M0", 1, "mlp", None, (), "", dirs(0, 2, 3), dirs(4), MLP_OUT)),
    {}, dirs(0))


def test_sites_in_forward_order():
    writers, slots = sites(TRUTH)
    assert [(w.name, w.component, w.sublayer, w.writes) for w in writers] == [
        ("hook_embed", "embed", -1, {0, 1}), ("hook_pos_embed", "pos_embed", -1, {2}),
        (R0, H0, 0, {3}), (R1, H1, 0, {5}), (MLP_OUT, MLP, 3, {4})]
    assert [(s.name, s.component, s.sublayer, s.reads) for s in slots] == [
        (Q0, H0, 0, {1}), (K0, H0, 0, {2}), (V0, H0, 0, {0, 1}),
        ("blocks.0.hook_q_input[1]", H1, 0, {1}), ("blocks.0.hook_k_input[1]", H1, 0, {1}),
        ("blocks.0.hook_v_input[1]", H1, 0, {1}), (MLP_IN, MLP, 3, {0, 2, 3}),
        (OUT, OUT, 4, {4})]


def test_component_edges_by_hand():
    true = TRUTH.circuit_graph("component")
    # Head 1 writes nothing anyone reads: it and its inputs are off every path to the output.
    assert {(u, v): (a["indices"], a["constant"]) for u, v, a in true.edges(data=True)} == {
        ("embed", H0): ([0, 1], False), ("pos_embed", H0): ([2], False),
        ("embed", MLP): ([0], True), ("pos_embed", MLP): ([2], False),
        (H0, MLP): ([3], False), (MLP, OUT): ([4], False)}
    edge = true.edges["embed", H0]
    assert (edge["writer"], edge["slots"], edge["directions"], edge["internal"]) == \
        ("hook_embed", [Q0, V0], ["one", "tokens:a"], False)
    assert true.nodes[OUT]["kind"] == "output" and true.nodes["embed"]["kind"] == "writer"
    every = TRUTH.full_graph("component")
    # Every writer into every reader of a later sublayer: 2 x 2 heads, 4 into the MLP, 5 out.
    assert len(every.edges) == 13 and set(every) == {"embed", "pos_embed", H0, H1, MLP, OUT}
    assert every.edges["pos_embed", H1] == {
        "writer": "hook_pos_embed", "slots": ["blocks.0.hook_q_input[1]",
                                              "blocks.0.hook_k_input[1]",
                                              "blocks.0.hook_v_input[1]"],
        "indices": [], "internal": False, "directions": [], "constant": False}
    assert not every.has_edge(H0, H1) and not every.has_edge(MLP, H0)  # same or earlier sublayer


def test_hook_edges_by_hand():
    true = TRUTH.circuit_graph("acdc_hooks")
    outside = {(u, v): a["indices"] for u, v, a in true.edges(data=True) if not a["internal"]}
    assert outside == {("hook_embed", Q0): [1], ("hook_pos_embed", K0): [2],
                       ("hook_embed", V0): [0, 1], ("hook_embed", MLP_IN): [0],
                       ("hook_pos_embed", MLP_IN): [2], (R0, MLP_IN): [3], (MLP_OUT, OUT): [4]}
    inside = {(u, v) for u, v, a in true.edges(data=True) if a["internal"]}
    assert inside == {(Q0, "blocks.0.attn.hook_q[0]"), ("blocks.0.attn.hook_q[0]", R0),
                      (K0, "blocks.0.attn.hook_k[0]"), ("blocks.0.attn.hook_k[0]", R0),
                      (V0, "blocks.0.attn.hook_v[0]"), ("blocks.0.attn.hook_v[0]", R0),
                      (MLP_IN, MLP_OUT)}
    assert true.edges[Q0, "blocks.0.attn.hook_q[0]"] == {
        "writer": None, "slots": [], "indices": [], "internal": True, "directions": [],
        "constant": False}
    writers = {n for n, kind in TRUTH.full_graph("acdc_hooks").nodes(data="kind") if kind == "writer"}
    assert writers == {"hook_embed", "hook_pos_embed", R0, R1, MLP_OUT}
    sp = TRUTH.circuit_graph("sp_hooks")
    assert {(u, v) for u, v, a in sp.edges(data=True) if a["internal"]} == {
        (Q0, R0), (K0, R0), (V0, R0), (MLP_IN, MLP_OUT)}
    # 12 embedding edges into head inputs, 4 into the MLP, 5 out; 6 + 6 + 1 inside components.
    assert len(TRUTH.full_graph("acdc_hooks").edges) == 12 + 4 + 5 + 13
    with pytest.raises(ValueError, match="granularity must be one of component, acdc_hooks, "
                                         "sp_hooks, got 'heads'"):
        TRUTH.full_graph("heads")


def test_canonical_form_by_hand():
    canonical = canonicalize(TRUTH.circuit_graph("acdc_hooks"))
    assert set(canonical.edges) == {(PRE, R0), (PRE, MLP_OUT), (R0, MLP_OUT), (MLP_OUT, OUT)}
    into_head = canonical.edges[PRE, R0]  # three embedding edges merged
    assert into_head["slots"] == [K0, Q0, V0] and into_head["indices"] == [0, 1, 2]
    assert sorted(into_head["directions"]) == ["indices:0", "one", "tokens:a"]
    assert len(into_head["directions"]) == 3
    assert into_head["writers"] == ["hook_embed", "hook_pos_embed"]
    into_mlp = canonical.edges[PRE, MLP_OUT]  # `one` (constant) merged with indices:0
    assert (into_mlp["constant"], into_mlp["indices"], into_mlp["slots"]) == \
        (False, [0, 2], [MLP_IN])
    assert canonical.edges[MLP_OUT, OUT] == {
        "writer": MLP_OUT, "slots": [OUT], "indices": [4], "internal": False,
        "directions": ["y"], "constant": False, "writers": [MLP_OUT]}
    only_one = canonicalize(TRUTH.circuit_graph("acdc_hooks").edge_subgraph(
        [("hook_embed", MLP_IN)]))
    assert only_one.edges[PRE, MLP_OUT]["constant"] is True
    assert set(canonicalize(TRUTH.circuit_graph("sp_hooks")).edges) == set(canonical.edges)
    # An embedding straight into the output is dropped, and component graphs pass unchanged.
    direct = TRUTH.full_graph("acdc_hooks").edge_subgraph([("hook_embed", OUT), (R0, OUT)])
    assert set(canonicalize(direct).edges) == {(R0, OUT)}
    assert set(canonicalize(TRUTH.circuit_graph("component")).edges) == \
        set(TRUTH.circuit_graph("component").edges)


def test_canonical_form_of_a_graph_without_internal_marks():
    # As InterpBench lists edges: hook chains inside heads and MLPs, no `internal` flag.
    chains = [(Q0, "blocks.0.attn.hook_q[0]"), (K0, "blocks.0.attn.hook_k[0]"),
              (V0, "blocks.0.attn.hook_v[0]"), ("blocks.0.attn.hook_q[0]", R0),
              ("blocks.0.attn.hook_k[0]", R0), ("blocks.0.attn.hook_v[0]", R0),
              (MLP_IN, MLP_OUT), ("hook_embed", PRE), ("hook_pos_embed", OUT)]
    graph = nx.DiGraph()
    for u, v in chains + [("hook_embed", Q0), (R0, MLP_IN), (MLP_OUT, OUT)]:
        graph.add_edge(u, v, writer=u, slots=[v], indices=[], directions=[], constant=False)
    assert set(canonicalize(graph).edges) == {(PRE, R0), (R0, MLP_OUT), (MLP_OUT, OUT)}
    assert canonical_name("blocks.2.attn.hook_q[1]") == "blocks.2.attn.hook_result[1]"
    assert canonical_name("blocks.2.attn.hook_k[1]") == "blocks.2.attn.hook_result[1]"


@pytest.mark.parametrize("granularity, quiet, inert", [
    # positions never differ: exactly the edges that carry only indices:0.
    ("component", "hook_pos_embed", {("pos_embed", H0), ("pos_embed", MLP)}),
    ("acdc_hooks", "hook_pos_embed", {("hook_pos_embed", K0), ("hook_pos_embed", MLP_IN)}),
    # the MLP's output never differs: nothing upstream can reach the output either.
    ("component", MLP_OUT, "all"),
    ("acdc_hooks", MLP_OUT, "all"),
])
def test_inert_edges_by_hand(granularity, quiet, inert):
    asked = []

    def differs(writer, indices):
        asked.append((writer, list(indices)))
        return writer != quiet

    dataset = SimpleNamespace(differs=differs)
    got = TRUTH.inert(dataset, granularity)
    graph = TRUTH.circuit_graph(granularity)
    assert got == (set(graph.edges) if inert == "all" else inert)
    assert (MLP_OUT, [4]) in asked and all(w is not None for w, _ in asked)  # never internal


def test_inert_edges_look_at_the_carried_indices():
    dataset = SimpleNamespace(differs=lambda writer, indices: indices != [0])
    assert TRUTH.inert(dataset, "component") == {("embed", MLP)}


def model_with(tokens, positions, vocab=("a", "b"), records=(), program=None):
    return SimpleNamespace(
        params={"token_embed": {"embeddings": np.array(tokens, np.float32)},
                "pos_embed": {"embeddings": np.array(positions, np.float32)}},
        config=SimpleNamespace(vocab=vocab), value_records=dict(enumerate(records)),
        program=program)


def test_constant_directions_by_hand():
    # Columns: one, tokens:b, bos, x (written by a component), indices:2, unused.
    tokens = [[1, 0, 1, 0, 0, 0],   # BOS
              [1, 0, 0, 1, 0, 0],   # a
              [1, 1, 0, 1, 0, 0],   # b
              [0, 0, 0, 0, 0, 0]]   # PAD
    positions = [[0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]]  # BOS, 1, 2
    model = model_with(tokens, positions)
    writer = SimpleNamespace(writes=((3, "x"),))
    # one: same on a and b, zero on positions; bos: only on the BOS row; tokens:b and
    # indices:2 vary; x would be constant but a component writes it; unused is unwritten.
    assert constant_directions(model, [writer]) == [0, 2]
    assert constant_directions(model, []) == [0, 2, 3]
    # One token and one position: every written column is constant, also one only the
    # position table writes.
    tiny = model_with([[0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]], [[0, 0, 0, 0], [0, 0, 1, 1]],
                      vocab=("a",))
    assert constant_directions(tiny, []) == [0, 1, 2, 3]


def record(label, dims, numerical=False):
    return SimpleNamespace(label=label, dims=dims, numerical=numerical)


def test_value_blind_rows_by_hand():
    records = [record("tokens", [1, 2]), record("x", [3, 4]), record("indices", [5], True),
               record("tokens", [6, 7]), record("indices", [8, 9])]
    model = model_with([[0]], [[0]], records=records)
    w = np.array([[0, 0], [1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [3, 3], [3, 3], [2, 0], [2, 0]],
                 np.float32)
    assert value_blind_rows(model, w, {8, 9}) == {8, 9}  # categorical indices: never None
    # tokens' rows are equal and tokens is never None; x's rows are equal but x may be
    # None (a model without its program knows only tokens and indices); indices is numerical.
    assert value_blind_rows(model, w, {1, 2, 3, 4, 5, 6, 7}) == {1, 2, 6, 7}
    assert value_blind_rows(model, w, {1, 2}) == {1, 2}
    assert value_blind_rows(model, w, {1, 3, 4, 5}) == set()  # tokens read on one row only
    w[2] = [2, 0]
    assert value_blind_rows(model, w, {1, 2, 3, 4, 5}) == set()  # rows differ: tells apart


def test_never_none_values_of_a_program():
    same = rasp.Map(lambda t: t, rasp.tokens).named("same")
    # Each query selects the keys holding "a": none on an input without one, so None.
    found = rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "a"),
                           rasp.tokens).named("found")
    program = rasp.SequenceMap(lambda x, y: x, same, found).named("out")
    records = [record("same", [1, 2]), record("found", [3, 4]), record("tokens", [5, 6])]
    model = model_with([[0]], [[0]], vocab=("a", "b"), records=records, program=program)
    model.config.max_seq_len = 3
    w = np.ones((7, 2), np.float32)
    # same is never None (a Map of tokens); found may be; tokens never is.
    assert value_blind_rows(model, w, set(range(7))) == {1, 2, 5, 6}
    assert model._never_none_labels >= {"same", "tokens"} and "found" not in \
        model._never_none_labels
    model._never_none_labels = {"found"}  # remembered per model, not worked out again
    assert value_blind_rows(model, w, {1, 2, 3, 4}) == {3, 4}
