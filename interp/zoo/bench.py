"""`bench_zoo`: every (model, method, granularity) cell of a zoo, on Ray or in-process.

Each cell is one Ray task running interp.zoo.cells.run_cell on the model's
directory; rows are appended to `results.jsonl` as cells finish, keyed by the
cell, so a rerun skips every cell already there (failed ones too, unless
`retry_failed`). Ray runs locally by default (`ray.init(address="local")` with
`num_cpus=workers`, no dashboard, usage statistics off); `address` (or
RAY_ADDRESS) joins a cluster, whose workers must see the zoo at the same path.
`workers=1` without an address runs the cells in this process, without Ray.
A dictionary method (`sae`, interp.zoo.cells_sae) has one cell per model, whatever
the granularities, keyed with granularity "residual".
The leaderboard (interp.zoo.leaderboard) is rewritten from all rows at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from interp.zoo.build import read_manifest
from interp.zoo.cells import cell_key, method_names, run_cell
from interp.zoo.cells_sae import DICTIONARY_METHODS
from rasp.errors import InputError

RESULTS = "results.jsonl"
DICTIONARY_GRANULARITY = "residual"  # a dictionary cell is one per model, whatever --granularity
CELL_TIMEOUT_S = 600.0
# Each Ray worker computes with one thread, so that n workers use n cores (XLA's CPU
# backend would otherwise spread one cell over every core and the workers would contend).
ONE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
              "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
OBJECT_STORE_BYTES = 128 * 2**20  # cells return small rows; Ray's default is 30% of RAM


@dataclasses.dataclass
class BenchSummary:
    """What a bench did: cells run now and skipped, by status; wall seconds; the files."""

    results: Path
    ran: int = 0
    skipped: int = 0
    statuses: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1
    backend: str = "in-process"
    leaderboard: str = ""
    files: list = dataclasses.field(default_factory=list)

    @property
    def cells_per_minute(self) -> float:
        return 60.0 * self.ran / self.seconds if self.seconds else 0.0

    def format(self) -> str:
        status = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items())) or "none"
        return (f"{self.ran} cells run ({status}), {self.skipped} already done; "
                f"{self.seconds:.0f} s with {self.workers} worker(s) ({self.backend}), "
                f"{self.cells_per_minute:.1f} cells/min; results in {self.results}")


def bench_zoo(zoo, methods: Sequence[str], granularities: Sequence[str] = ("component",),
              workers: int = 2, address: str | None = None, out=None,
              timeout_s: float = CELL_TIMEOUT_S, limit: int | None = None,
              retry_failed: bool = False, progress: bool = True,
              use_ray: bool | None = None) -> BenchSummary:
    """Run the zoo's missing cells (see the module docstring) and write the leaderboard.
    `use_ray`: None picks (in-process for one local worker); True runs even one on Ray."""
    from interp.zoo.leaderboard import write_leaderboard

    zoo = Path(zoo)
    manifest = read_manifest(zoo)[:limit]
    _check(methods, granularities, workers)
    out = Path(out) if out is not None else zoo / "bench"
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS
    previous = _read_rows(results)
    done = {r["cell"] for r in previous if r["status"] == "ok" or not retry_failed}
    cells = [(str((zoo / row["id"]).resolve()), method, granularity)
             for row in manifest for method in methods
             for granularity in (granularities if method not in DICTIONARY_METHODS
                                 else (DICTIONARY_GRANULARITY,))]
    todo = [c for c in cells if cell_key(Path(c[0]).name, c[1], c[2]) not in done]
    address = address or os.environ.get("RAY_ADDRESS")
    if use_ray is None:
        use_ray = workers > 1 or bool(address)
    summary = BenchSummary(results, skipped=len(cells) - len(todo), workers=workers,
                           backend="in-process" if not use_ray else
                           f"Ray at {address}" if address else "Ray, local")
    start = time.perf_counter()
    if results.is_file() and not results.read_bytes().endswith(b"\n") and results.stat().st_size:
        with open(results, "a") as f:  # a row cut short by a killed run: end its line
            f.write("\n")
    try:
        with open(results, "a", encoding="utf-8") as sink, \
                _progress(len(todo), progress) as bar:
            def record(row: dict) -> None:
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                summary.statuses[row["status"]] = summary.statuses.get(row["status"], 0) + 1
                summary.ran += 1
                bar.update()
            if todo and summary.backend == "in-process":
                for cell in todo:
                    record(run_cell(*cell, timeout_s))
            elif todo:
                _run_on_ray(todo, timeout_s, workers, address, record)
    finally:  # interrupted too: the leaderboard of the cells finished so far
        summary.seconds = time.perf_counter() - start
        mine = {cell_key(Path(c[0]).name, c[1], c[2]) for c in cells}
        rows = [r for r in _latest(_read_rows(results)) if r["cell"] in mine]
        summary.leaderboard, summary.files = write_leaderboard(out, rows, manifest)
    return summary


def _run_on_ray(todo, timeout_s, workers: int, address: str | None, record) -> None:
    """Submit every cell as a Ray task and record rows as they finish; a task that dies
    (its worker crashed, say) is recorded as failed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never reach the network
    from interp.extras import import_extra

    ray = import_extra("ray")
    root = str(Path(__file__).resolve().parents[2])  # where this package is imported from
    env = {**ONE_THREAD, "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    options = {"runtime_env": {"env_vars": env}, "include_dashboard": False,
               "log_to_driver": False, "configure_logging": False}
    if not address:
        options.update(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES)
    with warnings.catch_warnings():  # Ray starts its processes by fork + exec: no jax state
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        ray.init(address=address or "local", **options)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        pending = {task.remote(*cell, timeout_s): cell for cell in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                row = ray.get(ready[0])
            except Exception as error:  # noqa: BLE001  the task itself died
                model = Path(cell[0]).name
                row = {"cell": cell_key(model, cell[1], cell[2]), "model": model,
                       "method": cell[1], "granularity": cell[2], "status": "failed",
                       "error": f"{type(error).__name__}: "
                                f"{(str(error).splitlines() or [''])[0]}", "seconds": None}
            record(row)
    finally:
        ray.shutdown()


def _check(methods, granularities, workers: int) -> None:
    from compiler.granularity import GRANULARITIES

    known = method_names()
    unknown = [m for m in methods if m not in known]
    if unknown or not methods:
        raise InputError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(known)}")
    wrong = [g for g in granularities if g not in GRANULARITIES]
    if wrong or not granularities:
        raise InputError(f"unknown granularity {', '.join(wrong) or '(none given)'}; "
                         f"choose from {', '.join(GRANULARITIES)}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")


def read_results(out) -> list[dict]:
    """The latest row of each cell in `out`/results.jsonl."""
    return _latest(_read_rows(Path(out) / RESULTS))


def _latest(rows: list[dict]) -> list[dict]:
    """One row per cell: the last one written (a retried cell's new row wins)."""
    return list({r["cell"]: r for r in rows}.values())


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short when a run was killed: redo it
            continue
    return rows


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="zoo bench", unit="cell", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)
