"""The edge-level ground truth (compiler/granularity.py) is falsifiable, and holds.

  - InterpBench's node names and canonicalisation, spelled out by hand on reverse;
  - the hooked jax forward reproduces rasp_runtime/forward.py bit for bit;
  - on every library example, at component and acdc_hooks granularity, path
    patching one edge outside the true circuit changes no output on any pair,
    and patching each true edge that is neither constant nor inert changes the
    output on some pair. Constant and inert edges change nothing.
Models are compiled at max_seq_len ≤ 5; pairs are seeded.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.granularity import canonical_name, canonicalize
from examples.library import EXAMPLES
from interp.circuits import example_model, make_dataset
from interp.circuits.patching import changed_pairs, patched_logits, scorable_edges

NAMES = sorted(EXAMPLES)
PAIRS = 64
# Outside edges that read a never-None SOp value-blindly (equal weight rows) move
# the logits by float rounding only; anything near the 0.5 decoding margin is a bug.
FLOAT_NOISE = 1e-4


def test_reverse_edges_at_component_granularity():
    truth = example_model("reverse").ground_truth
    graph = truth.circuit_graph("component")
    assert {(u, v): a["constant"] for u, v, a in graph.edges(data=True)} == {
        ("embed", "blocks.0.attn[0]"): False,
        ("embed", "blocks.0.mlp"): True,            # only `one`
        ("embed", "blocks.1.attn[0]"): False,
        ("pos_embed", "blocks.1.attn[0]"): False,
        ("blocks.0.attn[0]", "blocks.0.mlp"): False,
        ("blocks.0.mlp", "blocks.1.attn[0]"): False,
        ("blocks.1.attn[0]", "blocks.1.hook_resid_post"): False}
    assert [label for _, label in truth.constant_directions] == ["one", "bos"]
    # Every writer -> later reader pair is a candidate edge: 2 embeddings and 3
    # components into 3 readers and the output, minus the same-or-later pairs.
    assert len(truth.full_graph("component").edges) == 14


def test_reverse_hooks_and_canonical_form():
    truth = example_model("reverse").ground_truth
    hooks = truth.circuit_graph("acdc_hooks")
    assert hooks.edges["hook_embed", "blocks.1.hook_v_input[0]"]["constant"] is False
    assert hooks.edges["hook_embed", "blocks.1.hook_k_input[0]"]["directions"] == ["bos"]
    assert hooks.has_edge("blocks.1.hook_q_input[0]", "blocks.1.attn.hook_q[0]")
    assert hooks.has_edge("blocks.1.attn.hook_q[0]", "blocks.1.attn.hook_result[0]")
    sp = truth.circuit_graph("sp_hooks")
    assert sp.has_edge("blocks.1.hook_q_input[0]", "blocks.1.attn.hook_result[0]")
    assert not any("attn.hook_q[" in n for n in sp)
    canonical = canonicalize(hooks)
    assert set(canonical.edges) == {
        ("blocks.0.hook_resid_pre", "blocks.0.attn.hook_result[0]"),
        ("blocks.0.hook_resid_pre", "blocks.0.hook_mlp_out"),
        ("blocks.0.hook_resid_pre", "blocks.1.attn.hook_result[0]"),
        ("blocks.0.attn.hook_result[0]", "blocks.0.hook_mlp_out"),
        ("blocks.0.hook_mlp_out", "blocks.1.attn.hook_result[0]"),
        ("blocks.1.attn.hook_result[0]", "blocks.1.hook_resid_post")}
    assert set(canonicalize(sp).edges) == set(canonical.edges)


def test_canonical_names():
    assert canonical_name("hook_embed") == "blocks.0.hook_resid_pre"
    assert canonical_name("hook_pos_embed") == "blocks.0.hook_resid_pre"
    assert canonical_name("blocks.2.hook_k_input[1]") == "blocks.2.attn.hook_result[1]"
    assert canonical_name("blocks.2.attn.hook_v[1]") == "blocks.2.attn.hook_result[1]"
    assert canonical_name("blocks.3.hook_mlp_in") == "blocks.3.hook_mlp_out"
    assert canonical_name("blocks.3.hook_resid_post") == "blocks.3.hook_resid_post"


def test_reverse_length_is_inert_under_equal_length_resampling():
    model = example_model("reverse")
    dataset = make_dataset(EXAMPLES["reverse"], model, 16, seed=0)
    assert model.ground_truth.inert(dataset) == {  # component granularity by default
        ("embed", "blocks.0.attn[0]"), ("embed", "blocks.0.mlp"),
        ("blocks.0.attn[0]", "blocks.0.mlp"), ("blocks.0.mlp", "blocks.1.attn[0]"),
        ("pos_embed", "blocks.1.attn[0]")}


@pytest.mark.parametrize("name", ["reverse", "dyck2", "count", "sort"])
def test_hooked_forward_reproduces_the_compiled_forward_exactly(name):
    model = example_model(name)
    dataset = make_dataset(EXAMPLES[name], model, 16, seed=3)
    a = dataset.arrays
    reference = model._jitted(model.params, a["clean"], a["valid"])
    mine = dataset.clean_run
    np.testing.assert_array_equal(np.asarray(mine["output"]), np.asarray(reference["output"]))
    for ours, theirs in zip(mine["residuals"], reference["residuals"], strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    # The contributions add up to the final residual (up to summation order).
    np.testing.assert_allclose(np.asarray(mine["contributions"]).sum(0),
                               np.asarray(mine["residuals"][-1]), atol=1e-4)


def _raw_read_rows(model, slot: str) -> set[int]:
    """Residual rows a slot's weights touch, read straight off the parameters."""
    p = model.params
    if slot.endswith("hook_resid_post"):
        w = p["unembed"]["w"]
    else:
        layer = int(slot.split(".")[1])
        if slot.endswith("hook_mlp_in"):
            w = p[f"transformer/layer_{layer}/mlp/linear_1"]["w"]
        else:
            side, head = slot.split("hook_")[1][0], int(slot.split("[")[1][:-1])
            config = model.config.layers[layer]
            name, size = {"q": ("query", config.key_size), "k": ("key", config.key_size),
                          "v": ("value", config.value_size)}[side]
            w = p[f"transformer/layer_{layer}/attn/{name}"]["w"][:, head * size:(head + 1) * size]
    return set(np.flatnonzero(np.any(np.asarray(w) != 0, axis=1)).tolist())


def _raw_written_rows(model, dataset, writer: str) -> set[int]:
    """Residual rows a writer ever writes on the dataset (clean or corrupt)."""
    w = dataset.hooked.wiring.writer_index[writer]
    out = np.concatenate([np.asarray(dataset.clean_run["contributions"][w]),
                          np.asarray(dataset.corrupt_run["contributions"][w])])
    return set(np.flatnonzero(np.any(out != 0, axis=(0, 1))).tolist())


@pytest.mark.parametrize("name", NAMES)
def test_path_patching_falsifies_nothing(name):
    model = example_model(name)
    truth = model.ground_truth
    dataset = make_dataset(EXAMPLES[name], model, PAIRS, seed=1)
    clean = np.asarray(dataset.clean_run["output"])
    for granularity in ("component", "acdc_hooks"):
        true_graph = truth.circuit_graph(granularity)
        inert = truth.inert(dataset, granularity)
        edges = scorable_edges(truth, granularity)
        masks = np.stack([dataset.hooked.wiring.mask([a]) for *_, a in edges])
        logits = patched_logits(dataset, masks)
        changed = changed_pairs(dataset, logits)
        for (u, v, attrs), moved, out in zip(edges, changed, logits):
            edge = f"{name} {granularity}: {u} -> {v}"
            if not true_graph.has_edge(u, v):
                assert not moved.any(), f"{edge} is off the circuit but changes the output"
                shared = any(_raw_written_rows(model, dataset, attrs["writer"])
                             & _raw_read_rows(model, s) for s in attrs["slots"])
                if shared:  # value-blind or dead-end reads: rounding only
                    assert np.max(np.abs(out - clean)) <= FLOAT_NOISE, edge
                else:       # the weights have true zeros: bit-identical
                    np.testing.assert_array_equal(out, clean, err_msg=edge)
            elif true_graph.edges[u, v]["constant"] or (u, v) in inert:
                assert not moved.any(), f"{edge} is constant or inert but changes the output"
            else:
                assert moved.any(), f"{edge} is on the circuit but patching it changes nothing"
