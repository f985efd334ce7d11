"""The large fuzz campaign: many random RASP programs, compiled and checked.

    python benchmarks/fuzz.py --programs 5000 [--seed S] [--inputs 50] [--fast-xla]
    python benchmarks/fuzz.py --seed S --only I      # re-run program I of seed S

Program i of seed S is `generate_case(random.Random(f"{S}:{i}"))` (the same
generator as the hypothesis strategy in tests/fuzz_programs.py), so every
result is reproducible. For each program: compile; a refusal must be a
CompileError naming an expression of the program; a model must agree with the
evaluator on every valid input. Prints the counts, refusals grouped by reason,
and failures with minimised standalone repros; writes benchmarks/results/fuzz.json.
"""

from __future__ import annotations

import argparse
import collections
import json
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
from tests.fuzz_programs import generate_case  # noqa: E402

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=5000)
    parser.add_argument("--seed", default="0")
    parser.add_argument("--start", type=int, default=0, help="first program index")
    parser.add_argument("--only", type=int, help="run just this program index, verbosely")
    parser.add_argument("--inputs", type=int, default=50, help="random inputs per program")
    parser.add_argument("--max-len", type=int, default=12)
    parser.add_argument("--fast-xla", action="store_true",
                        help="skip XLA optimisation passes (about 2x faster jit)")
    parser.add_argument("--no-minimise", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    args = parser.parse_args(argv)

    if args.fast_xla:
        import jax
        jax.config.update("jax_disable_most_optimizations", True)

    if args.only is not None:
        case = case_for(args.seed, args.only, args.max_len)
        outcome = check_case(case, case_inputs(case, args.inputs))
        print(f"program {args.only} of seed {args.seed}: {outcome.status} "
              f"({outcome.checked} valid inputs) {outcome.reason}\n{case.source}")
        for m in outcome.mismatches[:5]:
            print(f"input {m.input}: evaluator {m.expected}, model {m.got}")
        return 0 if outcome.ok else 1

    indices = range(args.start, args.start + args.programs)
    statuses: collections.Counter[str] = collections.Counter()
    refusals: dict[str, dict] = {}
    failures: list[dict] = []
    failure_groups: collections.Counter[str] = collections.Counter()
    kinds_seen: collections.Counter[str] = collections.Counter()
    kinds_compiled: collections.Counter[str] = collections.Counter()
    valid_inputs = collections.Counter()
    causal_count = 0
    timing = collections.Counter()
    started = time.perf_counter()

    for done, index in enumerate(indices, 1):
        t0 = time.perf_counter()
        case = case_for(args.seed, index, args.max_len)
        timing["generate"] += time.perf_counter() - t0
        kinds = set(expression_kinds(case.program))  # counted once per program
        kinds_seen.update(kinds)
        causal_count += case.causal
        outcome = check_case(case, case_inputs(case, args.inputs))
        timing["compile"] += outcome.compile_seconds
        timing["verify"] += outcome.verify_seconds
        statuses[outcome.status] += 1
        if outcome.status == "exact":
            kinds_compiled.update(kinds)
            bucket = ("all (input space < 10)" if outcome.tried < 10 and
                      outcome.checked == outcome.tried else
                      "0" if outcome.checked == 0 else "1-9" if outcome.checked < 10
                      else "10-24" if outcome.checked < 25 else "25+")
            valid_inputs[bucket] += 1
        elif outcome.status == "refused":
            group = reason_group(outcome.reason)
            entry = refusals.setdefault(group, {"count": 0, "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < 3:
                entry["examples"].append({"index": index, "label": outcome.label,
                                          "reason": outcome.reason})
        else:
            group = f"{outcome.status}: {reason_group(outcome.reason)}"
            failure_groups[group] += 1
            record = {"index": index, "status": outcome.status, "reason": outcome.reason,
                      "group": group, "program": case.program_source, "vocab": list(case.vocab),
                      "max_seq_len": case.max_seq_len, "causal": case.causal,
                      "mismatches": [[m.input, m.expected, m.got]
                                     for m in outcome.mismatches[:3]]}
            if not args.no_minimise and failure_groups[group] <= MINIMISE_PER_GROUP:
                small, small_outcome = minimise(case, outcome)
                record["repro"] = repro(small, small_outcome)
            failures.append(record)
            print(f"\n[{index}] {outcome.status}: {outcome.reason}\n"
                  f"{record.get('repro') or case.source}", flush=True)
        if done % 100 == 0:
            elapsed = time.perf_counter() - started
            print(f"{done}/{args.programs} programs, {elapsed:.0f}s: {dict(statuses)}", flush=True)

    total = sum(statuses.values())
    elapsed = time.perf_counter() - started
    compiled = statuses["exact"] + statuses["mismatch"]
    summary = {
        "seed": args.seed, "start": args.start, "programs": total, "inputs": args.inputs,
        "max_len": args.max_len, "fast_xla": args.fast_xla, "seconds": round(elapsed, 1),
        "causal_programs": causal_count,
        "statuses": dict(statuses),
        "compile_share": compiled / total if total else 0.0,
        "exact_share": statuses["exact"] / total if total else 0.0,
        "valid_inputs_of_exact_programs": dict(valid_inputs),
        "refusals": dict(sorted(refusals.items(), key=lambda kv: -kv[1]["count"])),
        "failure_groups": dict(failure_groups.most_common()),
        "failures": failures,
        "expression_kinds": {k: {"programs_seen": kinds_seen[k],
                                 "programs_compiled": kinds_compiled[k]}
                             for k in sorted(kinds_seen)},
        "timing_seconds": {k: round(v, 1) for k, v in timing.items()},
    }

    print(f"\n{total} programs (seed {args.seed}) in {elapsed:.0f}s")
    print(f"  compiled and exact: {statuses['exact']} ({summary['exact_share']:.1%})")
    print(f"  refused (CompileError naming an expression): {statuses['refused']}")
    for group, entry in summary["refusals"].items():
        print(f"    {entry['count']:5d}  {group}")
    bad = total - statuses["exact"] - statuses["refused"]
    print(f"  failures: {bad}")
    for group, count in failure_groups.most_common():
        print(f"    {count:5d}  {group}")
    print(f"  valid inputs per exact program: {dict(valid_inputs)}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, default=repr))
    print(f"  wrote {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
