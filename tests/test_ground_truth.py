"""Ground truth (compiler/ground_truth.py) against the evaluator and the weights.

  - decode_intermediates agrees with rasp.evaluate's intermediates on every example;
  - ablating a component on the circuit graph changes the output on some input,
    ablating one off it changes nothing; an MLP block's hidden range is exactly its units;
  - JSON round-trips; hook names follow TransformerLens.
Every example is compiled once at max_seq_len ≤ 5; inputs are seeded.
"""

from __future__ import annotations

import functools
import random
import re

import jax
import networkx as nx
import numpy as np
import pytest

import rasp
from compiler.compiling import compile_rasp_to_model
from compiler.ground_truth import GroundTruth, ablated_params
from compiler.verify import values_agree
from examples.library import EXAMPLES

MAX_LEN = 5
DECODE_INPUTS = 100
ABLATION_INPUTS = 300
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
    example, program, model = compiled(name)
    compared = set()
    for xs, expected in valid_inputs(name, DECODE_INPUTS, seed=1):
        decoded = model.decode_intermediates([model.config.bos, *xs])
        for label in decoded.keys() & expected.keys():
            want, got = expected[label], decoded[label]
            assert len(got) == len(want) and all(map(values_agree, want, got)), \
                f"{name}: {label} on {xs}: evaluator {want}, residual {got}"
            compared.add(label)
    assert model.config.output_label in compared
    # Only expressions the compiler adds itself go uncompared.
    skipped = model.value_records.keys() - compared
    assert all(COMPILER_MADE.search(label) for label in skipped), skipped


# ---------------------------------------------------------------- ablation


def runner(model):
    """(params, inputs) -> the forward outputs for a batch, jitted once per model."""
    forward = jax.jit(model.forward.apply)
    width = model.config.max_seq_len + 1
    pad = model.input_encoder.encoding_map[model.config.pad]

    def run(params, inputs):
        ids = np.full((len(inputs), width), pad, np.int32)
        for row, xs in enumerate(inputs):
            ids[row, :len(xs) + 1] = model.input_encoder.encode([model.config.bos, *xs])
        return jax.tree_util.tree_map(np.asarray, forward(params, ids, ids != pad))

    return run


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
    inputs = [xs for xs, _ in valid_inputs(name, ABLATION_INPUTS, seed=2)]
    run = runner(model)
    base = decoded(model, run(model.params, inputs), inputs)
    for c in truth.components:
        out = run(ablated_params(model, [c.id]), inputs)
        after = decoded(model, out, inputs)
        if c.id in on_graph:
            assert changed(base, after), f"{name}: ablating {c.id} ({c.exprs}) changes nothing"
        else:
            assert not changed(base, after), f"{name}: {c.id} is off the graph but matters"


@pytest.mark.parametrize("name", ["shuffle_dyck2", "dyck2", "reverse"])
def test_mlp_hidden_ranges_are_exactly_its_units(name):
    """Zeroing an MLP block's units removes its writes and leaves its neighbours' intact."""
    _, _, model = compiled(name)
    truth = model.ground_truth
    inputs = [xs for xs, _ in valid_inputs(name, 50, seed=3)]
    run = runner(model)
    base = run(model.params, inputs)["layer_outputs"]
    for c in truth.components:
        if c.kind != "mlp":
            continue
        ablated = run(ablated_params(model, [c.id]), inputs)["layer_outputs"][c.sublayer]
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


# Fixed TransformerLens names: component id -> (hook, head).
EXPECTED_HOOKS = {
    "reverse": {
        "L0.H0": ("blocks.0.attn.hook_result", 0),
        "L0.M0": ("blocks.0.hook_mlp_out", None),
        "L1.M0": ("blocks.1.hook_mlp_out", None),
        "L2.M0": ("blocks.2.hook_mlp_out", None),
        "L3.H0": ("blocks.3.attn.hook_result", 0),
    },
    "shuffle_dyck2": {
        "L0.H0": ("blocks.0.attn.hook_result", 0),
        **{f"L0.M{i}": ("blocks.0.hook_mlp_out", None) for i in range(5)},
        **{f"L1.M{i}": ("blocks.1.hook_mlp_out", None) for i in range(3)},
        "L2.H0": ("blocks.2.attn.hook_result", 0),
        "L2.H1": ("blocks.2.attn.hook_result", 1),
        **{f"L2.M{i}": ("blocks.2.hook_mlp_out", None) for i in range(4)},
        **{f"L3.M{i}": ("blocks.3.hook_mlp_out", None) for i in range(2)},
        "L4.H0": ("blocks.4.attn.hook_result", 0),
        "L4.M0": ("blocks.4.hook_mlp_out", None),
        "L5.H0": ("blocks.5.attn.hook_result", 0),
        "L5.M0": ("blocks.5.hook_mlp_out", None),
        "L6.M0": ("blocks.6.hook_mlp_out", None),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_HOOKS))
def test_hook_names_follow_transformer_lens(name):
    truth = compiled(name)[2].ground_truth
    assert {c.id: (c.hook, c.head) for c in truth.components} == EXPECTED_HOOKS[name]
    assert [e.hook for e in truth.embeddings] == ["hook_embed", "hook_pos_embed"]
    head = truth.component("L2.H1" if name == "shuffle_dyck2" else "L3.H0")
    layer = head.layer
    assert head.hooks == {n: f"blocks.{layer}.attn.hook_{n}"
                          for n in ("q", "k", "v", "z", "result", "pattern")}
    assert truth.component("L0.M0").hooks == {"mlp_out": "blocks.0.hook_mlp_out",
                                              "post": "blocks.0.mlp.hook_post"}
    nodes = set(truth.circuit_graph("hook"))
    assert {"hook_embed", "hook_pos_embed", "output", "blocks.0.attn.hook_result[0]",
            "blocks.0.hook_mlp_out"} <= nodes


def test_reverse_alignment():
    truth = compiled("reverse")[2].ground_truth
    sites = {label: [(s.component, s.hook, s.head, s.role) for s in v]
             for label, v in truth.alignment.items()}
    assert sites["reverse"] == [("L3.H0", "blocks.3.attn.hook_result", 0, "result")]
    assert sites["flip"] == [("L3.H0", "blocks.3.attn.hook_q", 0, "query"),
                             ("L3.H0", "blocks.3.attn.hook_k", 0, "key")]
    assert sites["length"] == [("L0.H0", "blocks.0.attn.hook_result", 0, "result"),
                               ("L0.M0", "blocks.0.hook_mlp_out", None, "mlp_out")]
    assert sites["tokens"] == [("hook_embed", "hook_embed", None, "embed")]
    assert sites["indices"] == [("hook_pos_embed", "hook_pos_embed", None, "embed")]
    edges = set(truth.circuit_graph().edges)
    assert {("L0.H0", "L0.M0"), ("L0.M0", "L1.M0"), ("L1.M0", "L2.M0"), ("L2.M0", "L3.H0"),
            ("L3.H0", "output"), ("hook_pos_embed", "L3.H0")} <= edges
    assert truth.circuit_graph().edges["L2.M0", "L3.H0"]["inputs"] == ["q"]
