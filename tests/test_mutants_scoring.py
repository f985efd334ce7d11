"""The scorer (interp/circuits/scoring.py) on tiny hand-built truths, worked out by hand.

Written to kill the mutants `make mutation` found alive (docs/mutation.md). The
truth is a stand-in with the four things `score_edges` asks of a GroundTruth
(full_graph, circuit_graph, inert, n_layers), so every count, rate, rank and
AUROC below is worked out on paper from the graphs here, not taken from the code.
"""

from __future__ import annotations

import json
import math

from types import SimpleNamespace

import networkx as nx
import pytest

from interp.circuits.scoring import (CircuitScore, Curve, pessimistic_auroc, score_edges,
                                     scores_from_json, scores_to_json)

EMBED, POS, ATTN, MLP, OUT = "embed", "pos_embed", "blocks.0.attn[0]", "blocks.0.mlp", \
    "blocks.0.hook_resid_post"
Q_IN, Q, RESULT = "blocks.0.hook_q_input[0]", "blocks.0.attn.hook_q[0]", \
    "blocks.0.attn.hook_result[0]"
V_IN, MLP_IN, MLP_OUT = "blocks.0.hook_v_input[0]", "blocks.0.hook_mlp_in", "blocks.0.hook_mlp_out"
PRE = "blocks.0.hook_resid_pre"


def _dirs(*indices):
    return tuple((i, f"d{i}") for i in indices)


def sites(q=(0, 1), v=(0,), mlp=(0, 1, 2), out=(0, 1, 2, 3), head=True):
    """The sites the scorer maps names through: token and position embeddings writing
    d0 and d1, head 0 (q and v reading the given directions) writing d2, the MLP (none
    when `mlp` is None) reading the given ones and writing d3, the output reading `out`."""
    components = []
    if head:
        components.append(SimpleNamespace(layer=0, kind="attn", head=0, query_reads=_dirs(*q),
                                          key_reads=(), value_reads=_dirs(*v),
                                          writes=_dirs(2)))
    if mlp is not None:
        components.append(SimpleNamespace(layer=0, kind="mlp", head=None,
                                          reads=_dirs(*mlp), writes=_dirs(3)))
    embeddings = (SimpleNamespace(hook="hook_embed", writes=_dirs(0)),
                  SimpleNamespace(hook="hook_pos_embed", writes=_dirs(1)))
    return embeddings, tuple(components), _dirs(*out)


class Truth:
    """A one-layer GroundTruth stand-in: {granularity: (every edge, true edges)}, and
    the sites (`sites()`) whose edges are the scorer's universe, matching those graphs."""

    n_layers = 1

    def __init__(self, graphs, inert=frozenset(), where=None):
        self.graphs, self.inert_edges = graphs, set(inert)
        self.embeddings, self.components, self.output_reads = where or sites()

    def full_graph(self, granularity):
        return self.graphs[granularity][0]

    def circuit_graph(self, granularity, task=None):
        assert task is None  # one task: score_edges passes none unless it is given one
        return self.graphs[granularity][1]

    def inert(self, dataset, granularity, task=None):
        assert granularity in self.graphs and task is None
        return self.inert_edges if dataset is not None else set()


def graph(edges, internal=(), constant=()):
    g = nx.DiGraph()
    for u, v in edges:
        g.add_edge(u, v, internal=(u, v) in internal, constant=(u, v) in constant)
    return g


# component granularity: every writer -> later reader edge; three of them are true.
EVERY = [(EMBED, ATTN), (POS, ATTN), (ATTN, OUT), (EMBED, MLP), (EMBED, OUT), (POS, MLP),
         (POS, OUT), (ATTN, MLP), (MLP, OUT)]
TRUE = [(EMBED, ATTN), (POS, ATTN), (ATTN, OUT)]  # (POS, ATTN) only carries a constant
COMPONENT = {"component": (graph(EVERY), graph(TRUE, constant=[(POS, ATTN)]))}
SCORES = {(EMBED, ATTN): 0.9, (ATTN, OUT): 0.5, (POS, ATTN): 0.1, (EMBED, OUT): 0.5,
          (ATTN, MLP): 0.7}  # the other four negatives are unscored (ranked last)


def test_edges_by_hand():
    result = score_edges(Truth(COMPONENT), SCORES)  # granularity "component" by default
    assert result.granularity == "component"
    edges = result.edges
    # Positives 0.9 and 0.5; negatives 0.7, 0.5 and four unscored; the constant edge left out.
    assert (edges.positives, edges.negatives, edges.excluded, result.unscored) == (2, 6, 1, 4)
    assert edges.auroc == 10 / 12 and edges.why is None  # 6 wins for 0.9, 4 for the tied 0.5
    assert edges.thresholds == (0.9, 0.7, 0.5, -math.inf)
    assert edges.tpr == (0.5, 0.5, 1.0, 1.0)
    assert edges.fpr == (0.0, 1 / 6, 2 / 6, 1.0)
    assert edges.precision_at_size == 0.5  # the top two: a true edge and the 0.7 negative
    # Ranks: 0.9 first, 0.7 second, and the tie at 0.5 puts the negative (3) first.
    assert edges.lowest_true == ((f"{ATTN} -> {OUT}", 0.5, 4), (f"{EMBED} -> {ATTN}", 0.9, 1))
    assert edges.missed == ((f"{ATTN} -> {OUT}", 0.5, 4),)
    assert result.notes == ()  # nothing was ignored


def test_nodes_by_hand():
    nodes = score_edges(Truth(COMPONENT), SCORES, "component").nodes
    # A node scores its best edge: embed 0.9, attn 0.9, mlp 0.7 (false), pos_embed 0.1 (its
    # only true edge is constant, so it is left out); the output is no node.
    assert (nodes.positives, nodes.negatives, nodes.excluded) == (2, 1, 1)
    assert nodes.auroc == 1.0 and nodes.precision_at_size == 1.0
    assert nodes.thresholds == (0.9, 0.7) and nodes.tpr == (1.0, 1.0)
    assert nodes.fpr == (0.0, 1.0)
    # embed and attn tie at 0.9: ranks 1 and 2 in either order, the rank 2 one listed first.
    assert {(node, score) for node, score, _ in nodes.lowest_true} == {(EMBED, 0.9), (ATTN, 0.9)}
    assert [rank for *_, rank in nodes.lowest_true] == [2, 1] and nodes.missed == ()


def test_kept_and_inert_edges_by_hand():
    kept = score_edges(Truth(COMPONENT), SCORES, "component", keep_excluded=True)
    # The constant edge (0.1) is a positive: it beats only the four unscored negatives.
    assert (kept.edges.positives, kept.edges.excluded) == (3, 0)
    assert kept.edges.auroc == 14 / 18
    assert kept.nodes.positives == 3 and kept.nodes.auroc == 2 / 3  # pos_embed 0.1 < mlp 0.7
    inert = Truth(COMPONENT, inert={(EMBED, ATTN)})
    assert score_edges(inert, SCORES, "component").edges.positives == 2  # no dataset: kept
    with_data = score_edges(inert, SCORES, "component", dataset=object())
    assert (with_data.edges.positives, with_data.edges.excluded) == (1, 2)
    assert with_data.edges.auroc == 4 / 6  # 0.5 beats the four unscored negatives


def test_node_scores_by_hand():
    result = score_edges(Truth(COMPONENT), {EMBED: 0.9, ATTN: 0.8, MLP: 0.1, POS: 0.05},
                         "component")
    assert result.nodes.auroc == 1.0 and result.nodes.positives == 2
    assert result.nodes.lowest_true == ((ATTN, 0.8, 2), (EMBED, 0.9, 1))
    # An edge scores its weaker end (the output counts as +inf): both true edges 0.8;
    # negatives embed->out 0.9, mlp->out 0.1, attn->mlp 0.1, embed->mlp 0.1, pos 0.05 twice.
    assert result.edges.auroc == 10 / 12 and result.unscored == 0
    assert result.edges.thresholds == (0.9, 0.8, 0.1, 0.05)
    partial = score_edges(Truth(COMPONENT), {ATTN: 0.8, MLP: 0.1}, "component")
    assert partial.nodes.lowest_true == ((EMBED, -math.inf, 3), (ATTN, 0.8, 1))
    # Unscored readers: every edge into the MLP scores -inf, below both true edges (0.8).
    upstream = score_edges(Truth(COMPONENT), {EMBED: 0.9, ATTN: 0.8}, "component")
    assert upstream.edges.auroc == 10 / 12 and upstream.edges.thresholds[-1] == -math.inf
    # A node named twice after renaming keeps its best score.
    hooks = Truth(HOOKS)
    twice = score_edges(hooks, {"hook_pos_embed": 0.7, "hook_embed": 0.2, RESULT: 0.5,
                                MLP_OUT: 0.6}, "acdc_hooks")
    assert twice.nodes.lowest_true == ((RESULT, 0.5, 3), (PRE, 0.7, 1))


def test_unknown_nodes_and_edges_are_refused():
    truth = Truth(COMPONENT)
    with pytest.raises(ValueError, match=r"unknown nodes \['nowhere'\]; expected nodes like "
                                         r"\['blocks.0.attn\[0\]', 'blocks.0.mlp', 'embed'\]"):
        score_edges(truth, {"nowhere": 1.0, EMBED: 0.5}, "component")
    with pytest.raises(ValueError, match="unknown nodes"):
        score_edges(truth, {OUT: 1.0}, "component")
    with pytest.raises(ValueError, match=r"^unknown nodes \['a', 'b', 'c'\]; expected"):
        score_edges(truth, dict.fromkeys("abcd", 1.0), "component")  # three are shown
    nothing = Truth({"component": (graph([]), graph([]))})
    with pytest.raises(ValueError, match=r"unknown edge \('a', 'b'\); expected \(upstream, "
                                         r"downstream\) hook pairs such as"):
        score_edges(nothing, {("a", "b"): 1.0}, "component")
    with pytest.raises(ValueError, match=r"unknown edge \('embed', 'nowhere'\); expected "
                                         r"\(upstream, downstream\) hook pairs such as "
                                         r"\('embed', 'blocks.0.attn\[0\]'\)"):
        score_edges(truth, {(EMBED, "nowhere"): 1.0}, "component")
    with pytest.raises(ValueError, match="unknown edge"):
        score_edges(truth, {(EMBED, ATTN, OUT): 1.0}, "component")
    with pytest.raises(ValueError, match="granularity must be one of component, acdc_hooks, "
                                         "sp_hooks, got 'matrix'"):
        score_edges(truth, {}, "matrix")


# acdc_hooks: q/v inputs and the MLP input are canonicalised onto their writers.
HOOK_EDGES = [("hook_embed", Q_IN), ("hook_pos_embed", Q_IN), ("hook_embed", V_IN),
              (Q_IN, Q), (Q, RESULT), (V_IN, RESULT), (RESULT, OUT), ("hook_embed", OUT),
              ("hook_pos_embed", OUT),
              ("hook_embed", MLP_IN), (MLP_IN, MLP_OUT), (MLP_OUT, OUT)]
INTERNAL = [(Q_IN, Q), (Q, RESULT), (V_IN, RESULT), (MLP_IN, MLP_OUT)]
HOOKS = {"acdc_hooks": (graph(HOOK_EDGES, internal=INTERNAL),
                        graph([("hook_embed", Q_IN), (Q_IN, Q), (Q, RESULT), (RESULT, OUT)],
                              internal=INTERNAL))}
HOOK_SITES = sites(mlp=(0,))  # the MLP reads the token embedding only
HOOK_SCORES = {("hook_embed", Q_IN): 0.2, ("hook_pos_embed", Q_IN): 0.6, (RESULT, OUT): 0.3,
               ("hook_embed", OUT): 0.9, ("hook_embed", MLP_IN): 0.4}


def test_a_canonical_edge_is_true_when_any_member_is():
    full, true = HOOKS["acdc_hooks"]
    true = true.copy()
    true.add_edge("hook_pos_embed", Q_IN, internal=False, constant=True)
    result = score_edges(Truth({"acdc_hooks": (full, true)}, where=HOOK_SITES), HOOK_SCORES,
                         "acdc_hooks")
    # pre -> result merges a live true edge with a constant one: still a positive.
    assert (result.edges.positives, result.edges.excluded) == (2, 0)
    assert (result.nodes.positives, result.nodes.excluded) == (2, 0)


def test_ties_with_the_best_negative_are_missed():
    tied = {"component": (graph([(EMBED, OUT), (POS, OUT)]), graph([(EMBED, OUT)]))}
    only_output = sites(head=False, mlp=None, out=(0, 1))  # universe: embed, pos -> out
    curve = score_edges(Truth(tied, where=only_output), {(EMBED, OUT): 1.0, (POS, OUT): 1.0},
                        "component").edges
    assert curve.auroc == 0.0 and curve.precision_at_size == 0.0
    assert curve.missed == ((f"{EMBED} -> {OUT}", 1.0, 2),)  # the negative ranks first


def test_the_pessimistic_formula():
    # (The undefined cases, no negatives or no positives, are checked on real truths in
    # tests/test_circuits_edge_names.py: the scorer's universe is now the model's sites.)
    assert pessimistic_auroc([3.0, 1.0], [2.0, 0.0, 1.0]) == 4 / 6  # 1.0 ties 1.0
    with pytest.raises(ValueError, match="^AUROC needs at least one positive and one negative$"):
        pessimistic_auroc([], [1.0])
    with pytest.raises(ValueError, match="^AUROC needs at least one positive"):
        pessimistic_auroc([1.0], [])


def curve(auroc, why=None, precision=None, lowest=()):
    return Curve(2, 3, 1, auroc, why, (), (), (), precision, lowest, ())


def test_summary_and_format_by_hand():
    assert curve(0.75, precision=0.5).summary() == \
        "AUROC 0.750; 2 true, 3 false, 1 left out; precision at 2: 0.500"
    assert curve(None, "no negatives").summary() == \
        "AUROC undefined (no negatives); 2 true, 3 false, 1 left out; precision at 2: -"
    score = CircuitScore("acdc_hooks", curve(1.0, precision=1.0, lowest=(("a -> b", 0.25, 4),)),
                         curve(0.5, precision=0.5, lowest=(("a", 1.5, 1),)), 3)
    assert score.format() == "\n".join([
        "granularity acdc_hooks",
        "edges: AUROC 1.000; 2 true, 3 false, 1 left out; precision at 2: 1.000",
        "nodes: AUROC 0.500; 2 true, 3 false, 1 left out; precision at 2: 0.500",
        "3 edges had no score (ranked last)",
        "true edges ranked lowest:", "  #4 a -> b  score 0.25",
        "true nodes ranked lowest:", "  #1 a  score 1.5"])
    quiet = CircuitScore("component", curve(1.0), curve(1.0), 0)
    assert quiet.format().splitlines()[1:] == [
        "edges: AUROC 1.000; 2 true, 3 false, 1 left out; precision at 2: -",
        "nodes: AUROC 1.000; 2 true, 3 false, 1 left out; precision at 2: -"]
    assert score.to_dict()["edges"]["lowest_true"] == (("a -> b", 0.25, 4),)
    assert score.to_dict()["unscored"] == 3


def test_json_by_hand():
    text = scores_to_json({(EMBED, ATTN): 1, (ATTN, OUT): 0.5}, "component", "eap")
    assert json.loads(text) == {"granularity": "component", "method": "eap", "edges": [
        {"upstream": EMBED, "downstream": ATTN, "score": 1.0},
        {"upstream": ATTN, "downstream": OUT, "score": 0.5}]}
    assert text.startswith('{\n "granularity"')  # indented one space
    assert json.loads(scores_to_json({EMBED: 2}, "acdc_hooks")) == {
        "granularity": "acdc_hooks", "method": None, "nodes": [{"node": EMBED, "score": 2.0}]}
    assert json.loads(scores_to_json({}, "component")) == {
        "granularity": "component", "method": None, "edges": []}
    assert scores_from_json('{"edges": [{"upstream": "a", "downstream": "b", "score": "2"}]}') \
        == ({("a", "b"): 2.0}, "component")
    assert scores_from_json('{"nodes": [{"node": "a", "score": 1}], "granularity": "sp_hooks"}') \
        == ({"a": 1.0}, "sp_hooks")


@pytest.mark.parametrize("text, message", [
    ("{not json", "the scores file is not JSON: Expecting property name"),
    ("[1, 2]", 'the scores file needs an "edges" or a "nodes" list, e.g. {"granularity": '
               '"component", "edges": [{"upstream": "embed", "downstream": "blocks.0.attn[0]", '
               '"score": 0.5}]}'),
    ('{"edges": [], "nodes": []}', 'needs an "edges" or a "nodes" list'),
    ('{"edges": [{"upstream": "a", "score": 1}]}',
     "a score entry lacks a field or a number ('downstream'); each needs \"upstream\", "
     "\"downstream\" (or \"node\") and \"score\""),
    ('{"nodes": [{"node": "a"}]}', "lacks a field or a number"),
    ('{"nodes": [{"node": "a", "score": "high"}]}', "lacks a field or a number"),
    ('{"nodes": [3]}', "lacks a field or a number"),
])
def test_bad_json_is_refused_in_one_line(text, message):
    with pytest.raises(ValueError) as error:
        scores_from_json(text)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert error.value.__context__ is None or error.value.__suppress_context__  # no chain


def test_a_node_stays_true_when_its_last_true_edge_is_constant():
    # embed's edges in the scorer's order: -> attn (true, live), -> out (true, constant).
    truth = Truth({"component": (graph(EVERY), graph(TRUE + [(EMBED, OUT)],
                                                     constant=[(POS, ATTN), (EMBED, OUT)]))})
    nodes = score_edges(truth, SCORES, "component").nodes
    assert (nodes.positives, nodes.negatives, nodes.excluded) == (2, 1, 1)  # embed, attn; mlp


def test_one_sided_truths_have_no_auroc():
    everything = dict.fromkeys(EVERY, 1.0)
    all_true = score_edges(Truth({"component": (graph(EVERY), graph(EVERY))}), everything)
    edges = all_true.edges
    assert (edges.positives, edges.negatives, edges.auroc, edges.why) == \
        (9, 0, None, "no negatives")
    assert edges.tpr == (1.0,) and math.isnan(edges.fpr[0]) and edges.precision_at_size == 1.0
    assert edges.missed == ()  # no negative to lose to
    none_true = score_edges(Truth({"component": (graph(EVERY), graph([]))}), everything).edges
    assert (none_true.positives, none_true.negatives, none_true.auroc, none_true.why) == \
        (0, 9, None, "no positives")
    assert math.isnan(none_true.tpr[0]) and none_true.fpr == (1.0,)
    assert none_true.precision_at_size is None and none_true.lowest_true == ()


def test_raw_hook_edges_without_canonical_names():
    # acdc_hooks, canonical=False: every writer -> later slot pair is its own edge: q, k and
    # v inputs 2 each (the embeddings), the MLP input 3, the output 4 (embeddings included).
    raw = score_edges(Truth(HOOKS, where=HOOK_SITES), {}, "acdc_hooks", canonical=False)
    assert (raw.edges.positives, raw.edges.negatives, raw.unscored) == (2, 11, 13)


def test_merge_must_be_named():
    message = r"^merge must be one of None, max, sum, got 'mean'$"
    with pytest.raises(ValueError, match=message):
        score_edges(Truth(COMPONENT), SCORES, "component", merge="mean")
    with pytest.raises(ValueError, match=message):
        scores_from_json("{}", merge="mean")


def test_auto_circuit_json_forms_by_hand():
    assert scores_from_json('{"edges": {"Resid Start->A0.0.Q": 0.5}}') == \
        ({"Resid Start->A0.0.Q": 0.5}, "component")
    text = '{"granularity": "sp_hooks", "method": "eap", "A0.0->Resid End": 2}'
    assert scores_from_json(text) == ({"A0.0->Resid End": 2.0}, "sp_hooks")
    with pytest.raises(ValueError) as error:
        scores_from_json('{"a": "b"}')
    assert str(error.value).endswith('or an object of edge names to scores, e.g. '
                                     '{"Resid Start->A0.0.Q": 0.5}')
