"""The realism table's variants (benchmarks/circuit_variants.py) are exact models whose truth
passes the path-patching re-check, and benchmarks/circuits.py refuses to score one that fails.

Expected outputs come from the reference evaluator; reverse at N = 4. The several-task
model's per-task re-check is tests/test_multitask_truth.py's; here only its wiring.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from benchmarks import circuits
from benchmarks.circuit_variants import VARIANTS, NotApplicable, build_variant
from examples.library import EXAMPLES
from interp import realism
from interp.circuits import example_model, score_edges
from rasp_runtime.verify import find_mismatches

N = 4
SINGLE = [v for v in VARIANTS if v != "multitask"]


def _inputs(count=40, seed=0):
    rng = random.Random(seed)
    return [EXAMPLES["reverse"].sample(rng, N) for _ in range(count)]


# What each variant's model must be (beyond exact): its knobs, attention, norm or width.
WHAT = {"plain": lambda m: m.knobs == [] and m.attention_description.startswith("hard"),
        "rotated": lambda m: [k["knob"] for k in m.knobs] == ["rotate", "permute_neurons"],
        "dense": lambda m: [k["knob"] for k in m.knobs] == ["perturb"],
        "soft": lambda m: m.attention_description.startswith("soft"),
        "layernorm": lambda m: m.config.normalization != "none",
        "compressed": lambda m: m.original is example_model("reverse", N)
        and m.dim <= m.original.config.d_model}


@pytest.mark.parametrize("variant", SINGLE)
def test_each_variant_is_exact_and_its_truth_passes_the_recheck(variant):
    built = build_variant(variant, "reverse", N)
    assert built.task is None and built.model.config.max_seq_len == N
    assert WHAT[variant](built.model)
    checked, mismatches = find_mismatches(built.model, EXAMPLES["reverse"].build(N), _inputs())
    assert checked == 40 and mismatches == []
    check = realism.recheck_truth(built.model, built.source, pairs=8)
    assert check.ok and check.edges > 0, check.failures


def test_multitask_scores_the_example_as_a_task_of_six_tasks():
    built = build_variant("multitask", "reverse", N)
    assert built.task == "reverse" and "reverse" in built.model.config.tasks
    assert built.source(random.Random(0), None, 3)[0] == "reverse"  # the task token first
    # scored with task=, the task's own circuit is the truth: it alone ranks perfectly
    truth = built.model.ground_truth
    circuit = truth.circuit_graph("component", task="reverse")
    scores = {(u, v): float(circuit.has_edge(u, v)) for u, v in truth.full_graph().edges}
    assert score_edges(truth, scores, task="reverse").edges.auroc == 1.0
    assert score_edges(truth, scores).edges.auroc < 0.5  # the union of every task's circuit
    with pytest.raises(NotApplicable, match="not a task of six_tasks"):
        build_variant("multitask", "sort", N)
    assert circuits.run_variant("multitask", "sort", 4, N, 0) == [
        {"example": "sort", "variant": "multitask", "method": None,
         "skipped": "not a task of six_tasks"}]


def test_a_variant_whose_truth_fails_is_refused_not_scored(monkeypatch):
    model = realism.rotate(example_model("reverse", N), 1)
    truth = model.ground_truth
    # the last head loses what its values read (the tokens): a live edge leaves the circuit
    head = [c for c in truth.components if c.kind == "attn"][-1]
    dropped = {i for i, _ in head.value_reads}
    broken = dataclasses.replace(head, value_reads=(), reads=tuple(
        (i, label) for i, label in head.reads if i not in dropped))
    model.saved_truth = dataclasses.replace(truth, components=tuple(
        broken if c is head else c for c in truth.components)).to_json()
    monkeypatch.setattr(circuits, "build_variant",
                        lambda *_: circuits.Variant(model, EXAMPLES["reverse"]))
    rows = circuits.run_variant("rotated", "reverse", 8, N, 0)
    assert len(rows) == 1 and rows[0]["method"] is None and "edge_auroc" not in rows[0]
    assert rows[0]["refused"].startswith("the truth fails the path-patching re-check on ")
    table = circuits.realism_details(rows, list(circuits.ALL_METHODS))
    assert "| reverse | rotated | **refused**: the truth fails" in table
