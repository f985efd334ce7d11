"""Outside tools' edge names in the scorer: auto-circuit's, TransformerLens legacy hook
names, padded components, repeated edges, and the oracle at every granularity.

The true circuits used here are written out by hand from the programs (reverse:
one head in layer 0, its MLP, one head in layer 1; the export pads layer 1's MLP).
"""

from __future__ import annotations

import pytest

from examples.library import EXAMPLES
from interp.circuits import example_model, score_edges, scores_from_json

GRANULARITIES = ("component", "acdc_hooks", "sp_hooks")

# reverse at N = 5, by hand: length -> opp_index (MLP 0), then a head in layer 1 reads
# opp_index (query) and indices (key) and moves tokens (value). Layer 0's head computes
# length; its query and value read only the constant one/BOS directions.
REVERSE_TRUE = {("embed", "blocks.0.attn[0]"), ("embed", "blocks.0.mlp"),
                ("blocks.0.attn[0]", "blocks.0.mlp"), ("blocks.0.mlp", "blocks.1.attn[0]"),
                ("embed", "blocks.1.attn[0]"), ("pos_embed", "blocks.1.attn[0]"),
                ("blocks.1.attn[0]", "blocks.1.hook_resid_post")}
AC_COMPONENT = {"Resid Start": ("embed", "pos_embed"), "A0.0": ("blocks.0.attn[0]",),
                "MLP 0": ("blocks.0.mlp",), "A1.0": ("blocks.1.attn[0]",),
                "MLP 1": (), "Resid End": ("blocks.1.hook_resid_post",)}


def auto_circuit_edges(n_layers=2, n_heads=1):
    """Every edge of auto-circuit's factorized graph with split q/k/v, as it names them."""
    sources = ["Resid Start"]
    edges = []
    for layer in range(n_layers):
        heads = [f"A{layer}.{h}" for h in range(n_heads)]
        edges += [f"{s}->{h}.{side}" for s in sources for h in heads for side in "QKV"]
        sources += heads
        edges += [f"{s}->MLP {layer}" for s in sources]
        sources.append(f"MLP {layer}")
    return edges + [f"{s}->Resid End" for s in sources]


def reverse_scores(true_score, false_score, padded_score=100.0):
    """auto-circuit-named scores for reverse: true edges (by hand) get true_score."""
    scores = {}
    for name in auto_circuit_edges():
        src, dest = name.split("->")
        dest = dest.rsplit(".", 1)[0] if dest[-2:] in (".Q", ".K", ".V") else dest
        ours = {(u, v) for u in AC_COMPONENT[src] for v in AC_COMPONENT[dest]}
        scores[name] = padded_score if not ours else \
            true_score if ours & REVERSE_TRUE else false_score
    return scores


def test_oracle_scores_one_at_every_granularity():
    for name in sorted(EXAMPLES):
        truth = example_model(name).ground_truth
        for granularity in GRANULARITIES:
            oracle = {e: 1.0 for e in truth.circuit_graph(granularity).edges()}
            curve = score_edges(truth, oracle, granularity=granularity).edges
            assert curve.auroc == 1.0 or (curve.auroc is None and curve.why), \
                (name, granularity, curve.summary())


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_auto_circuit_names_score_as_they_come(granularity):
    truth = example_model("reverse").ground_truth
    # auto-circuit ranks by |score|: true edges at -2 beat false ones at 0.5.
    good = score_edges(truth, reverse_scores(-2.0, 0.5), granularity)
    assert good.edges.auroc == 1.0
    assert good.unscored == 0
    assert any("5 touch padded components" in note for note in good.notes)
    bad = score_edges(truth, reverse_scores(0.5, -2.0), granularity)
    assert bad.edges.auroc == 0.0


def test_q_k_v_sides_merge_into_a_head_by_largest_magnitude():
    truth = example_model("reverse").ground_truth
    scores = {("embed", "blocks.0.hook_q_input[0]"): 0.25,
              ("embed", "blocks.0.hook_k_input[0]"): -3.0,
              ("embed", "blocks.0.hook_v_input[0]"): 1.0}
    result = score_edges(truth, scores, "component")
    assert -3.0 in result.edges.thresholds and 1.0 not in result.edges.thresholds


def test_legacy_hook_names_as_acdc_and_interpbench_write_them():
    truth = example_model("reverse").ground_truth
    embeds_to_head = ("blocks.0.hook_resid_pre", "blocks.0.attn.hook_result[0]")
    for granularity in GRANULARITIES:
        result = score_edges(truth, {embeds_to_head: 1.0}, granularity)
        assert 1.0 in result.edges.thresholds
    by_slot = {("blocks.0.hook_resid_pre", "blocks.0.hook_k_input[0]"): 2.0,
               ("blocks.0.attn.hook_result[0]", "blocks.0.hook_mlp_in"): 2.0,
               ("blocks.0.hook_mlp_out", "blocks.1.hook_q_input[0]"): 2.0,
               ("blocks.0.hook_resid_pre", "blocks.1.hook_v_input[0]"): 2.0,
               ("blocks.0.hook_resid_pre", "blocks.1.hook_k_input[0]"): 2.0,
               ("blocks.1.attn.hook_result[0]", "blocks.1.hook_resid_post"): 2.0}
    assert score_edges(truth, by_slot, "acdc_hooks").edges.auroc == 1.0


def test_repeated_edges_are_refused_unless_merged():
    truth = example_model("reverse").ground_truth
    twice = {("blocks.0.hook_resid_pre", "blocks.0.hook_q_input[0]"): 1.0,
             "Resid Start->A0.0.Q": 2.0}
    with pytest.raises(ValueError, match=r"^edge 'Resid Start->A0.0.Q' scores "
                       r"hook_(pos_)?embed -> blocks\.0\.hook_q_input\[0\] again \(also scored "
                       r"by \('blocks\.0\.hook_resid_pre', 'blocks\.0\.hook_q_input\[0\]'\)\); "
                       r"give merge='max' or 'sum'"):
        score_edges(truth, twice, "component")
    summed = score_edges(truth, twice, "component", merge="sum")
    assert 3.0 in summed.edges.thresholds
    assert 2.0 in score_edges(truth, twice, "component", merge="max").edges.thresholds
    text = '{"Resid Start->A0.0.Q": 1, "Resid Start->A0.0.Q": 2.5}'
    with pytest.raises(ValueError, match="scored twice"):
        scores_from_json(text)
    assert scores_from_json(text, merge="sum") == ({"Resid Start->A0.0.Q": 3.5}, "component")
    assert scores_from_json(text, merge="max")[0] == {"Resid Start->A0.0.Q": 2.5}


@pytest.mark.parametrize("edge", ["A7.0->Resid End", "Resid End->A0.0.Q",
                                  ("blocks.1.attn.hook_result[0]", "blocks.0.hook_mlp_in"),
                                  ("embed", "blocks.0.attn.hook_resid_mid")])
def test_unknown_edges_are_named(edge):
    truth = example_model("reverse").ground_truth
    with pytest.raises(ValueError, match="unknown edge"):
        score_edges(truth, {edge: 1.0}, "acdc_hooks")


def test_ignored_edges_are_counted_by_reason():
    truth = example_model("reverse").ground_truth
    scores = {("blocks.0.hook_q_input[0]", "blocks.0.attn.hook_q[0]"): 1.0,  # inside the head
              ("blocks.0.hook_k_input[0]", "blocks.0.attn.hook_k[0]"): 1.0,
              ("hook_embed", "blocks.1.hook_resid_post"): 1.0,  # InterpBench drops these two
              ("hook_pos_embed", "blocks.1.hook_resid_post"): 1.0,
              ("blocks.0.hook_resid_pre", "blocks.0.hook_k_input[0]"): 1.0}  # scored as given
    assert score_edges(truth, scores, "acdc_hooks").notes == (
        "ignored 4 scored edges: 2 lie inside a head or MLP (no method scores those); "
        "2 run from the embeddings to the output (InterpBench drops them)",)
