"""Long sequences: compile and verify the length-bound examples at large N, one process each.

    python benchmarks/long_sequences.py [--sizes 512,1024] [--examples length,hist,...]
                                        [--inputs 200] [--repeats 3] [--jobs 1]
                                        [--out benchmarks/results]

Each (example, N) runs in a fresh subprocess, so its peak RSS (VmHWM) is its own:
the compile's peak and the whole run's (verification included) are both reported.
Compile time is the median of `--repeats` compiles (the first one is kept too).
Inputs come from the example's sampler at N, a quarter of them full length; each is
compared with rasp.evaluate through `apply_batch`. Writes `<out>/long_sequences.json`
and `.md` (the table and the fitted growth exponents of parameters and compile time).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import measures  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

LONG_EXAMPLES = ("length", "hist", "reverse", "sort_unique", "sort")
FULL_LENGTH_SHARE = 4  # every 4th input has exactly N tokens
VERIFY_BATCH = 25      # inputs evaluated, then run through apply_batch, at a time


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MiB: VmHWM, which (unlike ru_maxrss)
    does not inherit the high-water mark of the process that started this one."""
    try:
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def long_inputs(example, max_len: int, vocab, count: int) -> list[list]:
    """`count` inputs from the example's sampler, every FULL_LENGTH_SHARE-th of length N."""
    rng = random.Random(0)
    return [example.sampler(rng, list(vocab), max_len) if i % FULL_LENGTH_SHARE == 0
            else example.sample(rng, max_len, vocab) for i in range(count)]


def params_by_sublayer(model) -> dict[str, dict]:
    """Weights per sublayer ("L1.attn", "L0.mlp", "embed", "unembed"), with the labels of
    the expressions it implements: where a model's parameters sit."""
    sizes: dict[str, dict] = {}
    for name, weights in model.params.items():
        parts = name.split("/")
        key = (f"L{parts[1].removeprefix('layer_')}.{parts[2]}" if parts[0] == "transformer"
               else "embed" if name.endswith("_embed") else name)
        entry = sizes.setdefault(key, {"params": 0, "exprs": []})
        entry["params"] += sum(int(a.size) for a in weights.values())
    for c in model.ground_truth.components:
        entry = sizes[f"L{c.layer}.{c.kind}"]
        entry["exprs"] += [e for e in c.exprs if e not in entry["exprs"]]
    return sizes


def measure_one(name: str, max_len: int, count: int, repeats: int = 3) -> dict:
    """Compile `name` at `max_len` `repeats` times (the median is compile_s) and verify it
    on `count` inputs (run in its own process)."""
    from compiler import compile_rasp_to_model
    from rasp_runtime.verify import verify_inputs
    from examples.library import EXAMPLES
    from run import vocab_for

    example = EXAMPLES[name]
    vocab = vocab_for(example, max_len)
    program = example.build(max_len)
    times, model = [], None
    for _ in range(repeats):  # one model alive at a time, so the peak is one compile's
        model = None
        started = time.perf_counter()
        model = compile_rasp_to_model(example.build(max_len), set(vocab), max_len)
        times.append(time.perf_counter() - started)
    compile_peak = peak_rss_mb()
    inputs = long_inputs(example, max_len, vocab, count)
    started = time.perf_counter()
    result = verify_inputs(model, program, inputs, batch_size=VERIFY_BATCH)
    layers = model.config.layers
    return {
        "example": name, "max_seq_len": max_len, "vocab_size": len(vocab),
        "layers": len(layers), "heads": sum(layer.num_heads for layer in layers),
        "d_model": model.config.d_model,
        "mlp_width": max((layer.mlp_hidden for layer in layers), default=0),
        "params": model.parameter_count, "params_by_sublayer": params_by_sublayer(model),
        "compile_s": statistics.median(times), "compile_first_s": times[0],
        "compile_peak_rss_mb": compile_peak, "peak_rss_mb": peak_rss_mb(),
        "verify_s": time.perf_counter() - started,
        "inputs": count, "full_length_inputs": sum(len(xs) == max_len for xs in inputs),
        "checked": result.checked, "exact_count": result.checked - len(result.mismatches),
        "exact": not result.mismatches and result.checked == count,
        "first_mismatch": str(result.mismatches[0])[:300] if result.mismatches else None,
    }


def run_in_subprocess(name: str, max_len: int, count: int, repeats: int) -> dict:
    """measure_one in a fresh interpreter; a refused compile becomes a row with its error."""
    command = [sys.executable, os.path.abspath(__file__), "--one", f"{name}:{max_len}",
               "--inputs", str(count), "--repeats", str(repeats)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    error = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"example": name, "max_seq_len": max_len, "error": error, "exact": False}


def markdown(rows: list[dict]) -> str:
    """One row per (example, N): size, memory, time and how many inputs were exact."""
    lines = ["| example | N | layers | d_model | params | compile s | peak RSS MiB (compile / "
             "run) | verify s | exact |", "|" + "---|" * 9]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['example']} | {r['max_seq_len']} | refused: {r['error']} "
                         + "| " * 6 + "✗ |")
            continue
        lines.append(
            f"| {r['example']} | {r['max_seq_len']} | {r['layers']} | {r['d_model']:,} "
            f"| {r['params']:,} | {r['compile_s']:.2f} "
            f"| {r['compile_peak_rss_mb']:,.0f} / {r['peak_rss_mb']:,.0f} | {r['verify_s']:.0f} "
            f"| {'✓' if r['exact'] else '✗'} {r['exact_count']}/{r['inputs']} |")
    return "\n".join(lines) + "\n"


def growth_markdown(rows: list[dict]) -> str:
    """Per example, the least-squares exponent a of params ∝ N^a and compile time ∝ N^a,
    and the sublayer holding most weights at the largest N (with its own exponent)."""
    lines = ["| example | sizes | params exponent | compile exponent | largest sublayer at "
             "max N (share, exponent) |", "|---|---|---|---|---|"]
    for name in dict.fromkeys(r["example"] for r in rows):
        mine = [r for r in rows if r["example"] == name and "error" not in r]
        sizes = [r["max_seq_len"] for r in mine]
        if len(sizes) < 2:
            continue
        fits = [measures.growth_exponent(sizes, [r[key] for r in mine])
                for key in ("params", "compile_s")]
        last = max(mine, key=lambda r: r["max_seq_len"])
        block, entry = max(last["params_by_sublayer"].items(), key=lambda b: b[1]["params"])
        exponent = measures.growth_exponent(
            sizes, [r["params_by_sublayer"].get(block, {}).get("params") for r in mine])
        lines.append(f"| {name} | {min(sizes)}–{max(sizes)} | "
                     + " | ".join("" if f is None else f"{f:.2f}" for f in fits)
                     + f" | {block} ({', '.join(entry['exprs'])}): "
                     f"{100 * entry['params'] / last['params']:.0f}%, N^{exponent:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--examples", default=",".join(LONG_EXAMPLES))
    parser.add_argument("--inputs", type=int, default=200, help="inputs verified per row")
    parser.add_argument("--repeats", type=int, default=3, help="compiles per row (median)")
    parser.add_argument("--jobs", type=int, default=1, help="rows measured at once")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # name:N, the subprocess's job
    args = parser.parse_args(argv)
    if args.one:
        name, max_len = args.one.split(":")
        print(json.dumps(measure_one(name, int(max_len), args.inputs, args.repeats)))
        return 0
    plan = [(name, int(n)) for name in args.examples.split(",") for n in args.sizes.split(",")]
    rows = measure_rows(plan, args.inputs, args.repeats, args.jobs)
    report = markdown(rows) + "\n" + growth_markdown(rows)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "long_sequences.md"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "long_sequences.json"), "w") as f:
        json.dump({"rows": rows}, f, indent=1)
    print(report)
    return 0 if all(r["exact"] for r in rows) else 1


def measure_rows(plan: list[tuple[str, int]], inputs: int = 200, repeats: int = 3,
                 jobs: int = 1) -> list[dict]:
    """One row per (example, N) of `plan`, each measured in its own process, `jobs` at once."""
    def measure(job):
        row = run_in_subprocess(*job, inputs, repeats)
        print(json.dumps({k: v for k, v in row.items() if k != "params_by_sublayer"}),
              flush=True)
        return row

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(measure, plan))


if __name__ == "__main__":
    sys.exit(main())
