"""Ground truth (compiler/ground_truth.py) against the evaluator and the weights.

  - decode_intermediates agrees with rasp.evaluate's intermediates on every example;
  - ablating a component on the circuit graph changes the output on some input,
    ablating one off it changes nothing; an MLP block's hidden range is exactly its units;
  - JSON round-trips; hook names follow TransformerLens.
Every example is compiled once at max_seq_len ≤ 5; inputs are seeded.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import re

import networkx as nx
import numpy as np
import pytest

import rasp
from compiler.compiling import compile_rasp_to_model
from compiler.ground_truth import GroundTruth
from examples.library import EXAMPLES
from rasp_runtime.interventions import ablated_params, decode_intermediates_batch, run_batch
from rasp_runtime.verify import values_agree

MAX_LEN = 5
INPUTS = 200  # per example; one batch size, so each model's forward traces once
NAMES = sorted(EXAMPLES)
# Labels of expressions lowering introduces (discretisations, merged-mean summands,
# tuple keys and queries of composite selectors).
COMPILER_MADE = re.compile(r"\.(categorical|summand|keys|queries)(_\d+)?$")


@functools.lru_cache(maxsize=None)
def compiled(name):
    example = EXAMPLES[name]
    n = min(MAX_LEN, example.max_seq_len)
    program = example.build(n)
    model = compile_rasp_to_model(program, example.vocab, n, causal=example.causal)
    return example, program, model


def valid_inputs(name, count, seed):
    """`count` sampled inputs the evaluator accepts, with their intermediates."""
    example, program, model = compiled(name)
    rng = random.Random(seed)
    out = []
    for _ in range(20 * count):
        xs = example.sample(rng, model.config.max_seq_len)
        try:
            _, values = rasp.evaluate(program, xs, causal=example.causal,
                                      return_intermediates=True)
        except rasp.EvaluationError:
            continue
        out.append((xs, values))
        if len(out) == count:
            break
    return out


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("name", NAMES)
def test_decode_intermediates_match_evaluator(name):
    _, _, model = compiled(name)
    cases = valid_inputs(name, INPUTS, seed=1)
    batch = [[model.config.bos, *xs] for xs, _ in cases]
    compared = set()
    for (xs, expected), decoded in zip(cases, decode_intermediates_batch(model, batch)):
        for label in decoded.keys() & expected.keys():
            want, got = expected[label], decoded[label]
            assert len(got) == len(want) and all(map(values_agree, want, got)), \
                f"{name}: {label} on {xs}: evaluator {want}, residual {got}"
            compared.add(label)
    assert model.config.output_label in compared
    # Only expressions the compiler adds itself go uncompared.
    skipped = model.value_records.keys() - compared
    assert all(COMPILER_MADE.search(label) for label in skipped), skipped


@pytest.mark.parametrize("name", ["reverse", "dyck2"])
def test_decode_intermediates_one_input(name):
    """CompiledModel.decode_intermediates (one apply) agrees with the batched decoder."""
    _, _, model = compiled(name)
    batch = [[model.config.bos, *xs] for xs, _ in valid_inputs(name, 5, seed=4)]
    for tokens, expected in zip(batch, decode_intermediates_batch(model, batch)):
        assert model.decode_intermediates(tokens) == expected


# ---------------------------------------------------------------- ablation


def decoded(model, out, inputs):
    return [[model.output_encoder.decode(row) for row in rows[1:len(xs) + 1]]
            for rows, xs in zip(out["output"], inputs)]


def changed(before, after) -> bool:
    return any(not values_agree(b, a) for rb, ra in zip(before, after) for b, a in zip(rb, ra))


@pytest.mark.parametrize("name", NAMES)
def test_ablation_follows_circuit_graph(name):
    _, _, model = compiled(name)
    truth = model.ground_truth
    on_graph = set(truth.circuit_graph().nodes)
    inputs = [xs for xs, _ in valid_inputs(name, INPUTS, seed=2)]
    batch = [[model.config.bos, *xs] for xs in inputs]
    base = decoded(model, run_batch(model, batch), inputs)
    for c in truth.components:
        after = decoded(model, run_batch(model, batch, ablated_params(model, [c.id])), inputs)
        if c.id in on_graph:
            assert changed(base, after), f"{name}: ablating {c.id} ({c.exprs}) changes nothing"
        else:
            assert not changed(base, after), f"{name}: {c.id} is off the graph but matters"


@pytest.mark.parametrize("name", ["shuffle_dyck2", "dyck2", "reverse"])
def test_mlp_hidden_ranges_are_exactly_its_units(name):
    """Zeroing an MLP block's units removes its writes and leaves its neighbours' intact."""
    _, _, model = compiled(name)
    truth = model.ground_truth
    batch = [[model.config.bos, *xs] for xs, _ in valid_inputs(name, INPUTS, seed=3)]
    base = run_batch(model, batch)["layer_outputs"]
    for c in truth.components:
        if c.kind != "mlp":
            continue
        ablated = run_batch(model, batch, ablated_params(model, [c.id]))["layer_outputs"][c.sublayer]
        own = [i for i, _ in c.writes]
        others = [i for i in range(model.config.d_model) if i not in own]
        np.testing.assert_array_equal(ablated[..., own], 0.0)
        np.testing.assert_allclose(ablated[..., others], base[c.sublayer][..., others], atol=1e-6)


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("name", NAMES)
def test_json_round_trip(name):
    truth = compiled(name)[2].ground_truth
    again = GroundTruth.from_json(truth.to_json())
    assert again == truth
    for granularity in ("component", "hook"):
        a, b = truth.circuit_graph(granularity), again.circuit_graph(granularity)
        assert nx.utils.graphs_equal(a, b)
        assert dict(a.edges.items()) == dict(b.edges.items())


@pytest.mark.parametrize("name", NAMES)
def test_graph_and_alignment_are_consistent(name):
    _, _, model = compiled(name)
    truth = model.ground_truth
    graph = truth.circuit_graph()
    assert all(nx.has_path(graph, node, "output") for node in graph)
    assert nx.is_directed_acyclic_graph(graph)
    written = {i for c in truth.components for i, _ in c.writes}
    written |= {i for e in truth.embeddings for i, _ in e.writes}
    for label, record in model.value_records.items():
        assert set(record.dims) <= written, label
        writers = [s.component for s in truth.alignment[label] if s.role != "embed"]
        if record.sublayer == -1:
            assert not writers and truth.alignment[label], label
            continue
        # Its sites write its value; the last runs in the sublayer the record names.
        sites = [truth.component(w) for w in writers]
        assert set(record.dims) <= {i for c in sites for i, _ in c.writes}, label
        assert max(c.sublayer for c in sites) == record.sublayer, label
    hooks = truth.circuit_graph("hook")
    assert "output" in hooks and nx.is_directed_acyclic_graph(hooks)
    # Every expression of the original program (SOp or selector) has a site.
    (_, expected), = valid_inputs(name, 1, seed=5)
    assert expected.keys() <= truth.alignment.keys(), expected.keys() - truth.alignment.keys()


def test_circuit_graph_leaves_out_what_the_output_never_reads():
    truth = compiled("reverse")[2].ground_truth
    scratch = ((len(truth.residual_labels), "unused"),)
    dead = dataclasses.replace(truth.components[0], id="L0.H9", head=9, writes=scratch)
    reader = dataclasses.replace(truth.components[-1], id="L9.M0", layer=9, kind="mlp",
                                 head=None, reads=scratch, writes=scratch, hook="x")
    extended = dataclasses.replace(truth, components=truth.components + (dead, reader),
                                   residual_labels=truth.residual_labels + ("unused",))
    graph = extended.circuit_graph()
    assert "L0.H9" not in graph and "L9.M0" not in graph
    assert set(graph) == set(truth.circuit_graph())


# TransformerLens names, spelled out: (layer, head) -> hooks; layer -> MLP hooks.
HEAD_HOOKS = {
    (0, 0): ("blocks.0.attn.hook_result", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k"),
    (0, 1): ("blocks.0.attn.hook_result", "blocks.0.attn.hook_q", "blocks.0.attn.hook_k"),
    (1, 0): ("blocks.1.attn.hook_result", "blocks.1.attn.hook_q", "blocks.1.attn.hook_k"),
    (2, 0): ("blocks.2.attn.hook_result", "blocks.2.attn.hook_q", "blocks.2.attn.hook_k"),
    (2, 1): ("blocks.2.attn.hook_result", "blocks.2.attn.hook_q", "blocks.2.attn.hook_k"),
    (3, 0): ("blocks.3.attn.hook_result", "blocks.3.attn.hook_q", "blocks.3.attn.hook_k"),
}
MLP_HOOKS = {0: ("blocks.0.hook_mlp_out", "blocks.0.mlp.hook_post"),
             1: ("blocks.1.hook_mlp_out", "blocks.1.mlp.hook_post"),
             2: ("blocks.2.hook_mlp_out", "blocks.2.mlp.hook_post"),
             3: ("blocks.3.hook_mlp_out", "blocks.3.mlp.hook_post")}
HOOK_NODES = {("attn", 0, 0): "blocks.0.attn.hook_result[0]",
              ("attn", 2, 1): "blocks.2.attn.hook_result[1]",
              ("mlp", 1, None): "blocks.1.hook_mlp_out"}


def test_hook_names_follow_transformer_lens():
    checked = set()
    for name in NAMES:
        truth = compiled(name)[2].ground_truth
        assert [e.hook for e in truth.embeddings] == ["hook_embed", "hook_pos_embed"]
        hook_graph = truth.circuit_graph("hook")
        assert "hook_embed" in hook_graph and "output" in hook_graph
        for c in truth.components:
            key = (c.layer, c.head) if c.kind == "attn" else c.layer
            table = HEAD_HOOKS if c.kind == "attn" else MLP_HOOKS
            if key not in table:
                continue
            checked.add((c.kind, key))
            if c.kind == "attn":
                assert (c.hook, c.hooks["q"], c.hooks["k"]) == table[key]
            else:
                assert (c.hook, c.hooks["post"]) == table[key]
            node = HOOK_NODES.get((c.kind, c.layer, c.head))
            assert node is None or node in hook_graph and \
                c.id in hook_graph.nodes[node]["components"]
    assert ("attn", (2, 1)) in checked or ("attn", (0, 1)) in checked  # a second head
    assert len(checked) >= 6


def test_reverse_alignment():
    truth = compiled("reverse")[2].ground_truth
    sites = {label: [(s.component, s.hook, s.head, s.role) for s in v]
             for label, v in truth.alignment.items()}
    (head,) = [c for c in truth.components if c.exprs == ("reverse",)]
    L, h = head.layer, head.head
    assert sites["reverse"] == [(head.id, f"blocks.{L}.attn.hook_result", h, "result")]
    assert sites["flip"] == [(head.id, f"blocks.{L}.attn.hook_q", h, "query"),
                             (head.id, f"blocks.{L}.attn.hook_k", h, "key")]
    width_head, width_mlp = [c for c in truth.components if c.exprs == ("length",)]
    assert [s[1:] for s in sites["length"]] == [
        (f"blocks.{width_head.layer}.attn.hook_result", width_head.head, "result"),
        (f"blocks.{width_mlp.layer}.hook_mlp_out", None, "mlp_out")]
    assert sites["tokens"] == [("hook_embed", "hook_embed", None, "embed")]
    assert sites["indices"] == [("hook_pos_embed", "hook_pos_embed", None, "embed")]
    graph = truth.circuit_graph()
    assert (width_head.id, width_mlp.id) in graph.edges
    assert (head.id, "output") in graph.edges and ("hook_pos_embed", head.id) in graph.edges
    # The flip head scores 2·(length − i − 1)·k − k² from the one-hots of length and
    # indices (queries) and indices (keys): opp_idx itself is never computed.
    assert graph.edges["hook_pos_embed", head.id]["inputs"] == ["q", "k"]
    assert graph.edges[width_mlp.id, head.id]["inputs"] == ["q"]


def test_reverse_by_hook_nodes_full_graph_and_json_by_hand():
    """reverse at N = 5: layer 0 has a head (length) and an MLP, layer 1 one head (flip)."""
    truth = compiled("reverse")[2].ground_truth
    hooks = truth.circuit_graph("hook")
    attrs = {n: (a["kind"], a["layer"], a["head"]) for n, a in hooks.nodes(data=True)}
    assert attrs["blocks.1.attn.hook_result[0]"] == ("attn", 1, 0)
    assert attrs["blocks.0.hook_mlp_out"] == ("mlp", 0, None)
    assert attrs["hook_embed"] == ("embed", None, None)
    assert attrs["output"] == ("output", None, None)
    # Every edge a method can score, at component granularity unless told otherwise.
    assert set(truth.full_graph()) == {"embed", "pos_embed", "blocks.0.attn[0]", "blocks.0.mlp",
                                       "blocks.1.attn[0]", "blocks.1.hook_resid_post"}
    data = json.loads(truth.to_json())
    flip = next(c.id for c in truth.components if c.exprs == ("reverse",))
    edges = {(u, v): a for u, v, a in data["circuit_edges"]}
    assert edges["hook_pos_embed", flip]["inputs"] == ["q", "k"]
    assert edges[flip, "output"]["directions"] == ["reverse:a", "reverse:b", "reverse:c"]
    assert "\n" not in truth.to_json() and truth.to_json(indent=1).startswith('{\n "')
    del data["constant_directions"]  # written before constant directions were recorded
    assert GroundTruth.from_json(json.dumps(data)).constant_directions == ()


def test_graph_nodes_and_merged_hook_edges_by_hand():
    truth = compiled("reverse")[2].ground_truth
    graph = truth.circuit_graph()
    assert dict(graph.nodes["hook_embed"]) == {"kind": "embed", "hook": "hook_embed",
                                               "exprs": ["tokens"]}
    assert dict(graph.nodes["L1.H0"]) == {"kind": "attn", "layer": 1, "head": 0,
                                          "exprs": ["reverse"], "op": "aggregate",
                                          "hook": "blocks.1.attn.hook_result"}
    assert dict(graph.nodes["L0.M0"])["op"] == "selector_width"
    hooks = truth.circuit_graph("hook")
    assert hooks.nodes["output"]["exprs"] == ["reverse"]  # the output's label
    assert hooks.nodes["hook_pos_embed"]["exprs"] == ["indices"]
    with pytest.raises(ValueError, match=r"^granularity must be 'ids', 'hook' or one of "
                                         r"component, acdc_hooks, sp_hooks, got 'heads'$"):
        truth.circuit_graph("heads")
    # double_hist's two MLP blocks in layer 0 share one hook: M0 computes hist (one-hot,
    # 0..5), which layer 1's head reads on q and k; M1 is_first, read on k only. The hook
    # edge carries both.
    merged = compiled("double_hist")[2].ground_truth.circuit_graph("hook")
    assert merged.edges["blocks.0.hook_mlp_out", "blocks.1.attn.hook_result[0]"] == {
        "directions": [f"hist:{i}" for i in range(6)] + ["is_first:False", "is_first:True"],
        "inputs": ["q", "k"]}


def test_truth_builds_when_an_sop_has_no_possible_value():
    """A categorical SOp that is always None has no residual directions; the truth
    still builds (it used to raise IndexError) and the length head reads only one/BOS."""
    never = rasp.Map(lambda x: None, rasp.tokens)
    program = rasp.SequenceMap(lambda x, y: y, never, rasp.length)
    model = compile_rasp_to_model(program, ["a", "b"], 3)
    truth = model.ground_truth
    head = next(c for c in truth.components if c.kind == "attn")
    assert head.exprs == ("length",)
    assert head.query_reads == head.key_reads == ((0, "one"), (1, "bos"))
    for xs in (["a"], ["b", "a"], ["a", "b", "b"]):
        expected = rasp.evaluate(program, xs, return_intermediates=True)[1]
        decoded = model.decode_intermediates([model.config.bos, *xs])
        assert decoded["length"] == expected["length"] == [len(xs)] * len(xs)


def test_reverse_sides_predicate_output_and_fused_sites_by_hand():
    """reverse at N = 5 (two layers): flip = Select(indices, opp_idx-1, EQ), where
    opp_idx = length - indices and opp_idx-1 = opp_idx - 1 live only inside the flip
    head's W_QK; the head moves tokens on its values."""
    truth = compiled("reverse")[2].ground_truth
    flip = truth.component("L1.H0")
    assert flip.predicate.startswith("Select(indices, opp_idx-1, EQ)")
    fused = ("L1.H0", "blocks.1.attn.hook_result", 0, "fused")
    for label in ("opp_idx", "opp_idx-1"):
        assert [(s.component, s.hook, s.head, s.role) for s in truth.alignment[label]] == [fused]
    graph = truth.circuit_graph()
    assert graph.edges["hook_embed", "L1.H0"]["inputs"] == ["q", "k", "v"]
    assert dict(graph.nodes["output"]) == {"kind": "output", "label": "reverse",
                                           "hook": "blocks.1.hook_resid_post"}
    # double_hist's layer 0 has two heads: hist = SelectorWidth(Select(tokens, tokens, EQ))
    # reads tokens (and one, bos for BOS) on its query, never is_first's indices.
    hist = compiled("double_hist")[2].ground_truth.component("L0.H0")
    assert [label for _, label in hist.query_reads] == [
        "one", "bos", "tokens:a", "tokens:b", "tokens:c", "tokens:d"]


def test_saved_model_keeps_its_alignment_by_hand(tmp_path):
    """A loaded model has no program: its truth takes the alignment saved with it,
    selector sites (on q and k) and fused ones included."""
    from rasp_runtime.model import CompiledModel
    model = compiled("reverse")[2]
    model.save(tmp_path / "reverse.npz")
    loaded = CompiledModel.load(tmp_path / "reverse.npz", verify=False)
    assert loaded.program is None
    sites = {label: [(s.component, s.hook, s.role) for s in v]
             for label, v in loaded.ground_truth.alignment.items()}
    assert sites["flip"] == [("L1.H0", "blocks.1.attn.hook_q", "query"),
                             ("L1.H0", "blocks.1.attn.hook_k", "key")]
    assert sites["opp_idx"] == [("L1.H0", "blocks.1.attn.hook_result", "fused")]
    assert loaded.ground_truth == model.ground_truth


def test_fused_sites_of_small_programs_by_hand():
    """Sites worked out by hand for two one-layer programs over tokens {1, 2, 3}, N = 4."""
    shifted = rasp.Map(lambda x: x + 1, rasp.tokens).named("shifted")
    quarter = rasp.numerical(rasp.Map(lambda x: x / 4, rasp.tokens).named("quarter"))
    same = rasp.Select(shifted, shifted, rasp.Comparison.EQ).named("same")
    mean = rasp.numerical(rasp.Aggregate(same, quarter).named("mean"))
    truth = compile_rasp_to_model(mean, {1, 2, 3}, 4).ground_truth
    sites = {label: [(s.component, s.role) for s in v] for label, v in truth.alignment.items()}
    # shifted feeds both sides of the selector: one fused site, not two; quarter is
    # folded into the same head's values.
    assert sites["shifted"] == [("L0.H0", "fused")]
    assert sites["quarter"] == [("L0.H0", "fused")]
    assert sites["same"] == [("L0.H0", "query"), ("L0.H0", "key")]
    # A mean that may select nothing is a head's mean and selects gated by an MLP; the
    # MLP does not compute what the heads read.
    earlier = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT).named("earlier")
    gated = rasp.numerical(rasp.Aggregate(earlier, quarter).named("gated"))
    truth = compile_rasp_to_model(gated, {1, 2, 3}, 4).ground_truth
    assert [s.component for s in truth.alignment["gated"]] == ["L0.M0"]
    assert all(s.component != "L0.M0" for s in truth.alignment.get("quarter", ()))
    # An MLP adding a selector width to tokens + 1 computes tokens + 1 itself, after
    # stopping at the selector width (the head's part).
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ))
    total = rasp.SequenceMap(lambda x, y: x + y, width, shifted).named("total")
    truth = compile_rasp_to_model(total, {1, 2, 3}, 4).ground_truth
    assert ("L0.M0", "fused") in [(s.component, s.role) for s in truth.alignment["shifted"]]


def test_tasks_and_residual_basis_round_trip_by_hand():
    """A truth with tasks and a rotated residual (here: the first two named directions
    swapped) comes back from JSON; named coordinates undo the swap."""
    truth = compiled("reverse")[2].ground_truth
    d = len(truth.residual_labels)
    assert np.array_equal(truth.direction_vectors(), np.eye(d))
    swap = np.eye(d)[[1, 0, *range(2, d)]]
    rotated = dataclasses.replace(truth, tasks=("a", "b"), residual_basis=tuple(map(tuple, swap)))
    again = GroundTruth.from_json(rotated.to_json())
    assert again == rotated and again.tasks == ("a", "b")
    assert again.residual_basis[0][:3] == (0.0, 1.0, 0.0)
    assert np.array_equal(again.direction_vectors([0, 2]), [swap[0], np.eye(d)[2]])
    residual = np.arange(d, dtype=np.float32)
    assert np.array_equal(truth.named(residual), residual)
    assert list(again.named(residual)[:3]) == [1.0, 0.0, 2.0]
    data = json.loads(truth.to_json())
    del data["tasks"], data["residual_basis"]  # written before either existed
    old = GroundTruth.from_json(json.dumps(data))
    assert old.tasks == () and old.residual_basis is None


def test_for_task_names_the_tasks_and_gives_a_single_task_truth_by_hand():
    truth = compiled("reverse")[2].ground_truth
    with pytest.raises(ValueError, match=r"^no task 'x'; this model's tasks: "
                                         r"none \(a single-program model\)$"):
        truth.for_task("x")
    tasked = dataclasses.replace(truth, tasks=("a", "b"))
    with pytest.raises(ValueError, match=r"^no task 'x'; this model's tasks: a, b$"):
        tasked.for_task("x")
    assert tasked.for_task("a").tasks == ()  # no gate of task a here: nothing kept
    assert tasked.for_task("a").components == ()
