"""One benchmark cell: a (model, method, granularity) scored from files on disk alone.

`run_cell(model_dir, method, granularity, timeout_s)` loads the model from its
export directory (CompiledModel.load checks every file's checksum), reads its
pairs from dataset.json, runs the circuit-discovery method from interp.circuits
and scores it against the exact truth (interp.circuits.scoring); a dictionary
method (`sae`, `sae_lens`: interp.zoo.cells_sae) scores an SAE's decoder rows
against the known features instead, once per model (granularity "residual"). It never
raises: a failure or a timeout is a row too. Being a pure function of the
directory, a cell can run in this process, in a Ray worker, or on another machine
that sees the same files.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
import time
from pathlib import Path

from interp.zoo.cells_sae import DICTIONARY_METHODS, dictionary_scores


class CellTimeout(BaseException):
    """A cell ran past its time limit (a BaseException, so that no `except Exception`
    inside a method or the loader can swallow it)."""


def zoo_methods() -> dict:
    """Method name -> function(dataset, granularity) -> scores: interp.circuits.METHODS,
    and path patching (the reference every method is measured against)."""
    from interp.circuits import METHODS, path_patching

    return {**METHODS, "path_patching": path_patching}


def method_names() -> list[str]:
    """Every method a bench can run: the circuit methods, then the dictionary ones."""
    return [*zoo_methods(), *DICTIONARY_METHODS]


def cell_key(model: str, method: str, granularity: str) -> str:
    """The key a cell's result row is stored under (a rerun skips keys already there)."""
    return f"{model}|{method}|{granularity}"


def run_cell(model_dir: str, method: str, granularity: str = "component",
             timeout_s: float | None = None) -> dict:
    """The result row of one cell: status "ok" with its AUROCs, "failed" with the error,
    or "timeout"; seconds (wall) and cpu_seconds include loading the model."""
    model_id = Path(model_dir).name
    row = {"cell": cell_key(model_id, method, granularity), "model": model_id,
           "method": method, "granularity": granularity, "status": "ok", "error": None,
           "host": socket.gethostname(), "pid": os.getpid()}
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        with _deadline(timeout_s):
            if method in DICTIONARY_METHODS:
                row.update(dictionary_scores(Path(model_dir), method))
            else:
                row.update(_scored(Path(model_dir), method, granularity))
    except CellTimeout:
        row.update(status="timeout", error=f"ran past its limit of {timeout_s} s")
    except Exception as error:  # noqa: BLE001  a failed cell is a row, never fatal
        first = (str(error).splitlines() or [""])[0]
        row.update(status="failed", error=f"{type(error).__name__}: {first}")
    row["seconds"] = round(time.perf_counter() - start, 3)
    row["cpu_seconds"] = round(time.process_time() - cpu_start, 3)  # all of its threads
    row["finished_at"] = round(time.time(), 3)  # wall clock: rates over part of a run
    return row


def _scored(directory: Path, method: str, granularity: str) -> dict:
    from interp.circuits import score_edges
    from interp.circuits.dataset_file import dataset_from_json
    from interp.tl_export import DATASET_FILE
    from rasp_runtime.model import CompiledModel

    methods = zoo_methods()
    if method not in methods:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(methods)}")
    model = CompiledModel.load(directory)
    dataset = dataset_from_json((directory / DATASET_FILE).read_text(), model)
    started = time.perf_counter()
    scores = methods[method](dataset, granularity)
    method_seconds = time.perf_counter() - started
    result = score_edges(model.ground_truth, scores, granularity, dataset=dataset)
    edges, nodes = result.edges, result.nodes
    return {"edge_auroc": _number(edges.auroc), "edge_why": edges.why,
            "node_auroc": _number(nodes.auroc), "node_why": nodes.why,
            "true_edges": edges.positives, "false_edges": edges.negatives,
            "left_out": edges.excluded, "precision_at_size": _number(edges.precision_at_size),
            "method_seconds": round(method_seconds, 3)}


def _number(value):
    """A float for JSON, None where undefined."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else float(value)


REARM_S = 0.05  # how soon an expired deadline raises again if its first raise was lost


@contextlib.contextmanager
def _deadline(seconds: float | None):
    """Raise CellTimeout in this thread after `seconds` (SIGALRM: the main thread only,
    which is where both this process and a Ray worker run a cell)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        # Raised inside a finaliser (__del__, a weakref callback), the exception is
        # swallowed as "unraisable": re-arm, so the next tick raises it again.
        signal.setitimer(signal.ITIMER_REAL, REARM_S)
        raise CellTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
