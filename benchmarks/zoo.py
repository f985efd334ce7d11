"""Zoo scaling, measured: build a zoo, bench it with 1 and then 2 local Ray workers.

    python benchmarks/zoo.py [--models 200] [--random-share 0.8] [--seed 0]
                             [--methods eap_ig,activation_patching] [--bench-models N]
                             [--workers 1,2] [--out benchmarks/results/zoo] [--zoo DIR]
                             [--no-pin]

Builds (or finishes) <out>/zoo with every library example at length 4 and
random programs up to --models in all, then benches the first --bench-models of
it (default all) once per worker count, each into a results directory of its
own, so each run does every cell. Prints cells per minute for each run and the
ratio, and an extrapolation to 10,000 models from the measured mean cell time;
writes <out>/zoo.json. --zoo benches an existing zoo (built by `raspc zoo build`)
instead of building <out>/zoo. Both runs go through Ray, so the ratio compares like with
like; on a shared machine it is measured under whatever load the others make. A run with
W workers is held to W cores (sched_setaffinity, inherited by Ray's processes; --no-pin
lifts it): unpinned, one worker's XLA threads use about 1.5 of 2 cores, so the ratio
would compare 1.5 cores with 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from interp.zoo import BuildSummary, build_zoo, library_specs, read_manifest  # noqa: E402
from interp.zoo.bench import bench_zoo, read_results  # noqa: E402

TARGET_MODELS = 10_000


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="eap_ig,activation_patching")
    parser.add_argument("--bench-models", type=int, default=None)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "zoo"))
    parser.add_argument("--zoo", help="an existing zoo to bench (nothing is built)")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="let every run use every core (by default a run with W workers "
                             "is held to W cores: one worker's jax threads would otherwise "
                             "spread over all of them, and 1 vs 2 workers would measure that)")
    args = parser.parse_args()
    out = Path(args.out)
    zoo = Path(args.zoo) if args.zoo else out / "zoo"
    start = time.perf_counter()
    if args.zoo:
        built = BuildSummary(zoo, reused=len(read_manifest(zoo)))
    else:
        library = library_specs(None, [4])
        built = build_zoo(zoo, library, max(0, args.models - len(library)), args.seed)
    report = {"build": {"models": built.kept, "built_now": built.built,
                        "seconds_now": round(time.perf_counter() - start, 1),
                        "refused": dict(built.refused), "bytes": disk_bytes(zoo)},
              "cpus": os.cpu_count(), "load_average": os.getloadavg(), "runs": []}
    print(built.format())
    methods = [m for m in args.methods.split(",") if m]
    models = len(read_manifest(zoo)[:args.bench_models])
    all_cores = sorted(os.sched_getaffinity(0))
    for workers in (int(w) for w in args.workers.split(",")):
        results = out / f"bench-{workers}"
        shutil.rmtree(results, ignore_errors=True)  # every run does every cell
        cores = all_cores[:workers] if args.pin and workers <= len(all_cores) else all_cores
        os.sched_setaffinity(0, cores)  # Ray's processes, started now, inherit it
        try:
            summary = bench_zoo(zoo, methods, workers=workers, out=results,  # Ray, also for 1
                                limit=args.bench_models, use_ray=True)
        finally:
            os.sched_setaffinity(0, all_cores)
        rows = read_results(results)
        seconds = [r["seconds"] for r in rows if r.get("seconds") is not None]
        cpu = [r["cpu_seconds"] for r in rows if r.get("cpu_seconds") is not None]
        run = {"workers": workers, "backend": summary.backend, "cells": summary.ran,
               "wall_seconds": round(summary.seconds, 1),
               "cells_per_minute": round(summary.cells_per_minute, 2),
               "mean_cell_seconds": round(statistics.fmean(seconds), 2) if seconds else None,
               "mean_cell_cpu_seconds": round(statistics.fmean(cpu), 2) if cpu else None,
               "cores": len(cores), "statuses": summary.statuses,
               "load_average": os.getloadavg()}
        report["runs"].append(run)
        print(f"{workers} worker(s): {summary.format()}")
    runs = report["runs"]
    if len(runs) >= 2 and runs[0]["cells_per_minute"]:
        report["speedup"] = round(runs[-1]["cells_per_minute"] / runs[0]["cells_per_minute"], 2)
        print(f"{runs[-1]['workers']} workers / {runs[0]['workers']}: {report['speedup']}x")
    # CPU seconds: what a cell costs a core of its own; wall seconds on a shared machine
    # also count the time the other processes held the core.
    cell = runs[0]["mean_cell_cpu_seconds"] or runs[0]["mean_cell_seconds"] if runs else None
    if cell:
        per_model = len(methods) * cell
        core_hours = TARGET_MODELS * per_model / 3600
        report["extrapolation"] = {
            "models": TARGET_MODELS, "methods": len(methods), "cell_cpu_seconds": cell,
            "core_hours": round(core_hours, 1),
            "build_core_hours": round(TARGET_MODELS * report["build"]["seconds_now"]
                                      / max(1, built.built) / 3600, 1) if built.built else None,
            "bytes": round(TARGET_MODELS * report["build"]["bytes"] / max(1, built.kept))}
        print(f"{TARGET_MODELS} models x {len(methods)} methods at {cell:.1f} CPU s a cell: "
              f"{core_hours:.0f} core-hours ({core_hours / 64:.1f} h on 64 cores)")
    report["bench_models"] = models
    (out / "zoo.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'zoo.json'}")


if __name__ == "__main__":
    main()
