"""Per-task ground truth of a several-task model, re-checked by path patching.

The re-check is written here (interp.realism.recheck_truth on branch t28-realism does the
same for a whole model): every edge off the task's circuit changes no decoded output on
that task's inputs, and every true edge that is neither constant nor inert changes some.
"""

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from compiler.granularity import inert_edges
from examples.multitask import TASK_EXAMPLES, task_sampler
from interp.circuits import make_dataset
from interp.circuits.hooked import HookedModel
from interp.circuits.patching import changed_pairs, patched_logits, scorable_edges

N = 4
SIX = TASK_EXAMPLES["six_tasks"]


@pytest.fixture(scope="module")
def model():
    return compile_rasp_to_model(SIX.build(N), SIX.vocab, N)


@pytest.fixture(scope="module")
def hooked(model):
    return HookedModel(model)  # one jit of the patched forward for every task


def _components(model, task):
    return {c.id: c for c in model.ground_truth.for_task(task).components}


def test_circuits_differ_and_keep_to_their_task(model):
    reverse, hist = _components(model, "reverse"), _components(model, "hist")
    sort_freq = _components(model, "sort_freq")
    exprs = lambda comps: {e for c in comps.values() for e in c.exprs}  # noqa: E731
    assert reverse.keys() != hist.keys()
    # Each has the task fetch and its own gate, and no other task's gate or private SOps.
    for task, comps in (("reverse", reverse), ("hist", hist), ("sort_freq", sort_freq)):
        assert {"multitask.task", f"multitask.gate.{task}"} <= exprs(comps)
        assert not {e for e in exprs(comps) if e.startswith("multitask.gate.")} - \
            {f"multitask.gate.{task}"}
    assert not {"opp_idx-1", "reverse"} & exprs(hist)
    assert not {"hist", "target_pos", "sort_freq"} & exprs(reverse)
    # The shared hist (one head and its MLP) is on the hist, sort_freq and double_hist circuits.
    shared = {cid for cid, c in sort_freq.items() if "hist" in c.exprs}
    assert len(shared) == 2 and shared <= _components(model, "double_hist").keys() & hist.keys()
    graph = model.ground_truth.circuit_graph(task="hist")
    assert set(graph) - {"hook_embed", "hook_pos_embed", "output"} <= hist.keys()


def test_unknown_task_is_refused(model):
    with pytest.raises(ValueError, match="no task 'nope'; this model's tasks: reverse"):
        model.ground_truth.for_task("nope")


def _patched(model, hooked, task, granularity="component", pairs=8):
    """(the task's inputs, every scorable edge, [E] whether patching it moved an output)."""
    dataset = make_dataset(task_sampler(task, SIX.vocab), model, pairs, seed=0, hooked=hooked)
    edges = scorable_edges(model.ground_truth, granularity)
    masks = np.stack([hooked.wiring.mask([attrs]) for *_, attrs in edges])
    changed = changed_pairs(dataset, patched_logits(dataset, masks)).any(axis=-1)
    return dataset, [(u, v) for u, v, _ in edges], changed


def _failures(true_graph, dataset, edges, changed) -> list[str]:
    inert = inert_edges(true_graph, dataset.differs)
    failures = []
    for edge, moved in zip(edges, changed):
        if not true_graph.has_edge(*edge) or true_graph.edges[edge]["constant"] or \
                edge in inert:
            if moved:
                failures.append(f"{edge} is off the circuit (or constant) but changes")
        elif not moved:
            failures.append(f"{edge} is on the circuit but changes nothing")
    return failures


def _recheck(model, hooked, task):
    dataset, edges, changed = _patched(model, hooked, task)
    true_graph = model.ground_truth.circuit_graph("component", task=task)
    assert _failures(true_graph, dataset, edges, changed) == []
    live = [e for e, moved in zip(edges, changed) if moved]
    assert live and set(live) <= set(true_graph.edges)
    return dataset, edges, changed, true_graph, live


@pytest.mark.parametrize("task", ["hist", "previous_token"])
def test_path_patching_confirms_the_task_circuit(model, hooked, task):
    dataset, edges, changed, true_graph, live = _recheck(model, hooked, task)
    # The re-check bites: a live edge dropped from the truth is reported.
    dropped = true_graph.copy()
    dropped.remove_edge(*live[0])
    assert any(str(live[0]) in f for f in _failures(dropped, dataset, edges, changed))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["reverse", "sort_freq", "double_hist", "length"])
def test_path_patching_confirms_every_other_task(model, hooked, task):
    if task == "length":  # its output is the same for every input of one length: nothing
        dataset, edges, changed = _patched(model, hooked, task)  # live, nothing moves
        assert not changed.any()
        return
    _recheck(model, hooked, task)
