"""auto-circuit's prune algorithms as methods of the circuit benchmark, where installed.

auto-circuit 1.0.1 needs TransformerLens < 3, so it lives in a venv of its own
(.venvs/auto-circuit, which `make test-outside` builds, pinned by
tests/auto_circuit/constraints.txt). Each method exports the scored model in the
InterpBench layout auto-circuit reads (interp.tl_export, format "interpbench"), with the
benchmark's own pairs as dataset.json, runs tests/auto_circuit/run_auto_circuit.py in that
venv as an outside user would, and returns auto-circuit's scores under its own edge names,
which interp.circuits.score_edges resolves. auto-circuit batches prompts of one length, so
it sees the pairs of the commonest length only.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venvs" / "auto-circuit" / "bin" / "python"
RUNNER = ROOT / "tests" / "auto_circuit" / "run_auto_circuit.py"
ALGORITHMS = {"auto-circuit EAP": "eap", "auto-circuit ACDC": "acdc"}
TIMEOUT = 600  # seconds a run may take (reverse at N = 5: about 7)


def methods(python: Path = VENV_PYTHON) -> dict[str, Callable]:
    """name → method(dataset, granularity) for each auto-circuit algorithm; none where
    auto-circuit's venv is not installed."""
    if not python.exists():
        return {}
    return {name: functools.partial(run, algorithm, python)
            for name, algorithm in ALGORITHMS.items()}


def run(algorithm: str, python: Path, dataset, granularity: str) -> dict[str, float]:
    """auto-circuit's `algorithm` ("eap" or "acdc") on `dataset`'s model and pairs:
    {"up->down": |score|} in auto-circuit's edge names (the granularity is its own)."""
    from interp.tl_export import export_model

    model = dataset.hooked.model
    with tempfile.TemporaryDirectory() as directory:
        export_model(model, directory, "interpbench")
        pairs = Path(directory) / "dataset.json"
        pairs.write_text(json.dumps(pairs_json(model, dataset)), encoding="utf-8")
        scores = Path(directory) / "scores.json"
        done = subprocess.run([str(python), str(RUNNER), directory, algorithm, str(scores)],
                              capture_output=True, text=True, cwd=directory, timeout=TIMEOUT,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"auto-circuit's {algorithm} failed on this model: {last}")
        return {name: abs(float(s)) for name, s in json.loads(scores.read_text()).items()}


def pairs_json(model, dataset) -> dict:
    """The dataset's clean/corrupted pairs as dataset.json's ids, BOS first."""
    ids = model.input_encoder.encoding_map
    bos = ids[model.config.bos]
    return {"pairs": [{"clean_ids": [bos] + [ids[t] for t in clean],
                       "corrupted_ids": [bos] + [ids[t] for t in corrupt]}
                      for clean, corrupt in zip(dataset.clean, dataset.corrupt)]}
