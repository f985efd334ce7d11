"""The large fuzz campaign: many random RASP programs, compiled and checked.

    python benchmarks/fuzz.py --programs 5000 [--seed S] [--jobs 2] [--fast-xla]
    python benchmarks/fuzz.py --seed S --only I      # re-run program I of seed S

Program i of seed S is `generate_case(random.Random(f"{S}:{i}"))` (the generator
in examples/random_programs, which tests/fuzz_programs.py drives with hypothesis),
so every result is reproducible. For each program: compile; a refusal must be a
CompileError naming an expression of the program; a model must agree with the
evaluator on every valid input. Prints the counts, refusals grouped by reason,
and failures with minimised standalone repros; writes benchmarks/results/fuzz.json.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import functools
import json
import multiprocessing
import pathlib
import random
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rasp  # noqa: E402
from tests.fuzz_checks import (  # noqa: E402
    case_inputs, check_case, minimise, reason_group, repro,
)
from examples.random_programs import generate_case  # noqa: E402

MINIMISE_PER_GROUP = 3


def case_for(seed, index: int, max_len: int):
    return generate_case(random.Random(f"{seed}:{index}"), max_len=max_len)


def expression_kinds(program) -> list[str]:
    """The kinds of expression in a program, e.g. 'Aggregate/numerical', 'Select/LT'."""
    kinds = []
    for expr in rasp.topological_order(program):
        kind = type(expr).__name__
        if isinstance(expr, rasp.SOp) and not isinstance(expr, (rasp.TokensType,
                                                               rasp.IndicesType)):
            kind += "/" + rasp.get_encoding(expr).value
        if isinstance(expr, rasp.Select):
            predicate = expr.predicate
            kind += "/" + (predicate.name if isinstance(predicate, rasp.Comparison) else "callable")
        kinds.append(kind)
    return kinds


def check_program(seed, index: int, max_len: int, inputs: int) -> dict:
    """One program's result as a plain (picklable) record."""
    case = case_for(seed, index, max_len)
    outcome = check_case(case, case_inputs(case, inputs))
    record = {"index": index, "status": outcome.status, "reason": outcome.reason,
              "label": outcome.label, "kinds": sorted(set(expression_kinds(case.program))),
              "causal": case.causal, "checked": outcome.checked, "tried": outcome.tried,
              "compile_seconds": outcome.compile_seconds,
              "verify_seconds": outcome.verify_seconds}
    if not outcome.ok:
        record.update(program=case.program_source, vocab=list(case.vocab),
                      max_seq_len=case.max_seq_len, source=case.source,
                      mismatches=[[m.input, m.expected, m.got] for m in outcome.mismatches[:3]])
    return record


def _start_worker(fast_xla: bool) -> None:
    if fast_xla:
        import jax
        jax.config.update("jax_disable_most_optimizations", True)


def check_programs(args, indices):
    """Records of every program, in index order, from `args.jobs` processes."""
    task = functools.partial(check_program, args.seed, max_len=args.max_len, inputs=args.inputs)
    if args.jobs == 1:
        _start_worker(args.fast_xla)
        yield from map(task, indices)
        return
    context = multiprocessing.get_context("spawn")  # jax does not survive fork
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context,
                                                initializer=_start_worker,
                                                initargs=(args.fast_xla,)) as pool:
        yield from pool.map(task, indices, chunksize=4)


def valid_input_bucket(record: dict) -> str:
    if record["tried"] < 10 and record["checked"] == record["tried"]:
        return "all (input space < 10)"
    checked = record["checked"]
    return ("0" if checked == 0 else "1-9" if checked < 10 else "10-24" if checked < 25
            else "25+")


def summarise(args, records: list[dict], seconds: float) -> dict:
    statuses = collections.Counter(r["status"] for r in records)
    refusals: dict[str, dict] = {}
    for r in records:
        if r["status"] == "refused":
            entry = refusals.setdefault(reason_group(r["reason"]),
                                        {"count": 0, "indices": [], "examples": []})
            entry["count"] += 1
            entry["indices"].append(r["index"])  # every one, to re-run after a fix
            if len(entry["examples"]) < 3:
                entry["examples"].append({k: r[k] for k in ("index", "label", "reason")})
    failures = [r for r in records if r["status"] not in ("exact", "refused")]
    for r in failures:
        r["group"] = f"{r['status']}: {reason_group(r['reason'])}"
    seen = collections.Counter(k for r in records for k in r["kinds"])
    compiled = collections.Counter(k for r in records if r["status"] == "exact"
                                   for k in r["kinds"])
    total = len(records)
    return {
        "seed": args.seed, "start": args.start, "programs": total, "inputs": args.inputs,
        "max_len": args.max_len, "fast_xla": args.fast_xla, "jobs": args.jobs,
        "seconds": round(seconds, 1),
        "causal_programs": sum(r["causal"] for r in records),
        "statuses": dict(statuses),
        "compile_share": (statuses["exact"] + statuses["mismatch"]) / total if total else 0.0,
        "exact_share": statuses["exact"] / total if total else 0.0,
        "valid_inputs_of_exact_programs": dict(collections.Counter(
            valid_input_bucket(r) for r in records if r["status"] == "exact")),
        "refusals": dict(sorted(refusals.items(), key=lambda kv: -kv[1]["count"])),
        "failure_groups": dict(collections.Counter(r["group"] for r in failures).most_common()),
        "failures": failures,
        "expression_kinds": {k: {"programs_seen": seen[k], "programs_compiled": compiled[k]}
                             for k in sorted(seen)},
        "timing_seconds": {
            "compile": round(sum(r["compile_seconds"] for r in records), 1),
            "verify": round(sum(r["verify_seconds"] for r in records), 1)},
    }


def add_repros(args, failures: list[dict]) -> None:
    """Minimised standalone repros for the first few failures of each group."""
    per_group: collections.Counter[str] = collections.Counter()
    for record in failures:
        per_group[record["group"]] += 1
        if per_group[record["group"]] <= MINIMISE_PER_GROUP:
            case = case_for(args.seed, record["index"], args.max_len)
            outcome = check_case(case, case_inputs(case, args.inputs))
            if not outcome.ok:
                record["repro"] = repro(*minimise(case, outcome))


def print_summary(summary: dict) -> None:
    total, statuses = summary["programs"], summary["statuses"]
    print(f"\n{total} programs (seed {summary['seed']}) in {summary['seconds']:.0f}s")
    print(f"  compiled and exact: {statuses.get('exact', 0)} ({summary['exact_share']:.1%})")
    print(f"  refused (CompileError naming an expression): {statuses.get('refused', 0)}")
    for group, entry in summary["refusals"].items():
        print(f"    {entry['count']:5d}  {group}")
    print(f"  failures: {len(summary['failures'])}")
    for group, count in summary["failure_groups"].items():
        print(f"    {count:5d}  {group}")
    for record in summary["failures"]:
        print(f"\n[{record['index']}] {record['status']}: {record['reason']}\n"
              f"{record.get('repro') or record['source']}")
    print(f"  valid inputs per exact program: {summary['valid_inputs_of_exact_programs']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=5000)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--start", type=int, default=0, help="first program index")
    parser.add_argument("--only", type=int, help="run just this program index, verbosely")
    parser.add_argument("--inputs", type=int, default=50, help="random inputs per program")
    parser.add_argument("--max-len", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--fast-xla", action="store_true",
                        help="skip XLA optimisation passes (about 2x faster jit)")
    parser.add_argument("--no-minimise", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    args = parser.parse_args(argv)

    if args.only is not None:
        _start_worker(args.fast_xla)
        case = case_for(args.seed, args.only, args.max_len)
        outcome = check_case(case, case_inputs(case, args.inputs))
        print(f"program {args.only} of seed {args.seed}: {outcome.status} "
              f"({outcome.checked} valid inputs) {outcome.reason}\n{case.source}")
        for m in outcome.mismatches[:5]:
            print(f"input {m.input}: evaluator {m.expected}, model {m.got}")
        return 0 if outcome.ok else 1

    started = time.perf_counter()
    records = []
    indices = range(args.start, args.start + args.programs)
    for done, record in enumerate(check_programs(args, indices), 1):
        records.append(record)
        if record["status"] not in ("exact", "refused"):
            print(f"\n[{record['index']}] {record['status']}: {record['reason']}", flush=True)
        if done % 100 == 0:
            counts = dict(collections.Counter(r["status"] for r in records))
            print(f"{done}/{args.programs} programs, {time.perf_counter() - started:.0f}s: "
                  f"{counts}", flush=True)
    summary = summarise(args, records, time.perf_counter() - started)
    if not args.no_minimise:
        add_repros(args, summary["failures"])
    print_summary(summary)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, default=repr))
    print(f"  wrote {out}")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
