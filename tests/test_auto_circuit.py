"""auto-circuit 1.0.1, in a venv of its own, on our legacy exports, scored by `raspc score`
with no name mapping on either side (marked `outside`, run by `make test-outside`: it
builds the venv once, about 15 minutes on 2 cores, then reuses it; a run then takes about
2.5 minutes). CI leaves it out to stay within its 20 minutes.

The venv lives in .venvs/auto-circuit (gitignored), pinned by
tests/auto_circuit/constraints.txt (torch 2.13.0, the CPU build on disk; TransformerLens
2.18, since auto-circuit needs HookedTransformer). It is rebuilt when the pins change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raspc.cli import main

HERE = Path(__file__).resolve().parent
VENV = HERE.parent / ".venvs" / "auto-circuit"
CONSTRAINTS = HERE / "auto_circuit" / "constraints.txt"
RUNNER = HERE / "auto_circuit" / "run_auto_circuit.py"
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1"}


def auto_circuit_python() -> Path:
    """The venv's python, building the venv first when it is missing or its pins changed."""
    python = VENV / "bin" / "python"
    stamp = VENV / "constraints.sha256"
    pins = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == pins:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS),
                    "auto-circuit==1.0.1"], check=True, env=OFFLINE)
    stamp.write_text(pins)
    return python


@pytest.mark.outside
@pytest.mark.parametrize("name", ["reverse", "sort"])  # padded: reverse's MLP 1, sort's A0.0
def test_auto_circuit_scores_need_no_glue(name, tmp_path, capsys):
    python = auto_circuit_python()
    export = tmp_path / name
    assert main(["export", name, "--max-seq-len", "5", "--format", "interpbench",
                 "-o", str(export)]) == 0
    for method in ("eap", "acdc"):
        scores = tmp_path / f"{method}.json"
        subprocess.run([str(python), str(RUNNER), str(export), method, str(scores)],
                       check=True, env=OFFLINE, cwd=tmp_path)
        names = json.loads(scores.read_text())
        assert "Resid Start->A0.0.Q" in names and "MLP 1->Resid End" in names
        for granularity in ("component", "acdc_hooks", "sp_hooks"):
            capsys.readouterr()
            assert main(["score", str(export), str(scores), "--granularity", granularity]) == 0
            out = capsys.readouterr().out
            assert re.search(r"^edges: AUROC [01]\.\d{3};", out, re.MULTILINE), out
            assert "touch padded components" in out and "dataset.json left out" in out


@pytest.mark.outside
def test_the_circuit_benchmark_runs_auto_circuit_on_its_own_pairs():
    # benchmarks/circuits.py --auto-circuit: the same pairs as our methods, scored by the
    # same scorer; reverse's true edges (2 scorable) rank above its false ones.
    from benchmarks.auto_circuit_methods import methods, pairs_json
    from examples.library import EXAMPLES
    from interp.circuits import example_model, make_dataset, score_edges

    model = example_model("reverse", 5)
    dataset = make_dataset(EXAMPLES["reverse"], model, 8, 0)
    assert len(pairs_json(model, dataset)["pairs"]) == 8
    found = methods(auto_circuit_python())
    assert set(found) == {"auto-circuit EAP", "auto-circuit ACDC"}
    for run in found.values():
        scores = run(dataset, "component")
        assert "Resid Start->A0.0.Q" in scores and min(scores.values()) >= 0
        assert score_edges(model.ground_truth, scores, dataset=dataset).edges.auroc == 1.0
