"""Circuit-discovery baselines scored against the exact ground truth of every example.

    python benchmarks/circuits.py [--pairs 32] [--max-len 5] [--seed 0] [--only a,b]
                                  [--granularity component] [--out benchmarks/results]
                                  [--readme] [--variants plain,rotated,...]
                                  [--auto-circuit]

Each example is compiled at max_seq_len ≤ --max-len; each method runs on --pairs
seeded clean/corrupted pairs of equal length, at --granularity, and is
scored with interp.circuits.score_edges (constant and inert edges left out).
Writes <out>/circuits.md (the table and the true edges each method missed),
<out>/circuits.json and ROC plots <out>/circuits/roc_<example>.png.

--auto-circuit also runs auto-circuit's EAP and ACDC, in its own venv (.venvs/auto-circuit,
which `make test-outside` builds), on an InterpBench export of each model with the same
pairs (benchmarks/auto_circuit_methods.py); about 7 s a run more.

--variants scores every variant (benchmarks/circuit_variants.py: plain, rotated, soft,
dense, multitask, layernorm, compressed) of every example instead, each once its truth
passes interp.realism.recheck_truth, and writes the realism table: <out>/circuits_realism.md
(methods × variants, then per example) and .json, and a heatmap; --readme also writes
docs/realism_table.md and docs/images/realism_auroc.png and fills the README's realism markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.auto_circuit_methods import methods as auto_circuit_methods  # noqa: E402
from benchmarks.circuit_variants import (VARIANTS, NotApplicable, Variant,  # noqa: E402
                                         build_variant, hooked_model, plot_realism,
                                         realism_details,
                                         realism_summary)
from examples.library import EXAMPLES  # noqa: E402
from interp.circuits import (METHODS, example_model, make_dataset, path_patching,  # noqa: E402
                             score_edges)
from interp.realism import recheck_truth  # noqa: E402

GRANULARITY = "component"  # the default; --granularity acdc_hooks scores canonical hooks
# Path patching of single edges is how the truth is falsified; it is listed as
# the reference every method is measured against, not as a baseline.
ALL_METHODS = {**METHODS, "path_patching (reference)": path_patching}
README_MARKERS = ("<!-- circuits:start -->", "<!-- circuits:end -->")
# The realism table's default examples (--variants without --only), sized so that `make
# circuits` fits in 30 minutes on 2 cores: the five six_tasks tasks with scorable edges
# (so every variant applies) and three more with heads that gradients see differently.
REALISM_EXAMPLES = ("reverse", "hist", "sort_freq", "double_hist", "previous_token", "sort",
                    "frac_prevs", "induction")
REALISM_MARKERS = ("<!-- circuits-realism:start -->", "<!-- circuits-realism:end -->")
# Scores below this fraction of a method's top score are float noise (softmax leakage,
# rounding): negatives score exactly 0 here, so noise alone would rank a true edge
# above them. The "above noise" AUROC sets such scores to 0 to show what is left.
NOISE_FLOOR = 1e-4


def run_example(name: str, pairs: int, max_len: int, seed: int,
                granularity: str = GRANULARITY, variant: Variant | None = None) -> list[dict]:
    """One row per method: AUROCs, seconds, the true edges it missed, the ROC points.

    variant: the model to score, its dataset source and task (benchmarks.circuit_variants);
    by default the plain compiled example."""
    variant = variant or Variant(example_model(name, max_len), EXAMPLES[name])
    dataset = make_dataset(variant.source, variant.model, pairs, seed,
                           hooked=hooked_model(variant.model))
    dataset.clean_run, dataset.corrupt_run  # noqa: B018  traced once, outside the timings
    truth, task = variant.model.ground_truth, variant.task
    rows = []
    for method, run in ALL_METHODS.items():
        start = time.perf_counter()
        scores = run(dataset, granularity)
        seconds = time.perf_counter() - start
        result = score_edges(truth, scores, granularity, dataset=dataset, task=task)
        edges, nodes = result.edges, result.nodes
        top = max(scores.values(), default=0.0)
        floored = score_edges(truth, {k: s if s >= NOISE_FLOOR * top else 0.0
                                      for k, s in scores.items()}, granularity,
                              dataset=dataset, task=task)
        rows.append({"example": name, "method": method, "seconds": seconds,
                     "edge_auroc": edges.auroc, "edge_why": edges.why,
                     "edge_auroc_above_noise": floored.edges.auroc,
                     "noise_only": _with_scores(_missed(floored, scores), scores),
                     "node_auroc": nodes.auroc, "node_why": nodes.why,
                     "true_edges": edges.positives, "false_edges": edges.negatives,
                     "left_out": edges.excluded, "precision_at_size": edges.precision_at_size,
                     "missed": _missed(result, scores),
                     "roc": {"fpr": list(edges.fpr), "tpr": list(edges.tpr)}})
    return rows


def run_variant(variant: str, name: str, pairs: int, max_len: int, seed: int,
                granularity: str = GRANULARITY) -> list[dict]:
    """`run_example`'s rows for one variant of `name` (benchmarks.circuit_variants), once its
    truth passes the path-patching re-check; else one row saying why it is not scored."""
    row = {"example": name, "variant": variant, "method": None}
    try:
        built = build_variant(variant, name, max_len)
    except NotApplicable as e:
        return [{**row, "skipped": str(e)}]
    dataset = make_dataset(built.source, built.model, pairs, seed,
                           hooked=hooked_model(built.model))  # the one run_example draws
    check = recheck_truth(built.model, built.source, granularity=granularity, task=built.task,
                          dataset=dataset)
    if not check.ok:
        return [{**row, "refused": f"the truth fails the path-patching re-check on "
                                   f"{len(check.failures)} of {check.edges} edges, e.g. "
                                   f"{check.failures[0]}"}]
    rows = run_example(name, pairs, max_len, seed, granularity, built)
    return [{**r, "variant": variant, "truth_edges_checked": check.edges} for r in rows]


def _missed(result, scores) -> list[dict]:
    """True items ranked no higher than some false one: nodes for a node method, else edges."""
    by_node = all(isinstance(k, str) for k in scores)
    curve = result.nodes if by_node else result.edges
    return [{"edge": item, "score": score, "rank": rank, "kind": "node" if by_node else "edge"}
            for item, score, rank in curve.missed]


def _with_scores(missed: list[dict], scores: dict) -> list[dict]:
    """`missed` with each item's own (unfloored) score."""
    named = {(f"{k[0]} -> {k[1]}" if isinstance(k, tuple) else k): v for k, v in scores.items()}
    return [{**m, "score": named.get(m["edge"], m["score"])} for m in missed]


def fmt(value, why=None) -> str:
    return f"{value:.3f}" if value is not None else f"n/a ({why})" if why else "-"


def table(rows: list[dict]) -> str:
    """A Markdown table: example × method → edge AUROC, node AUROC, seconds."""
    lines = ["| example | method | edge AUROC | above noise | node AUROC | "
             "true / false / left out | precision@k | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['example']} | {r['method']} | {fmt(r['edge_auroc'], r['edge_why'])} "
                     f"| {fmt(r['edge_auroc_above_noise'], r['edge_why'])} "
                     f"| {fmt(r['node_auroc'], r['node_why'])} | {r['true_edges']} / "
                     f"{r['false_edges']} / {r['left_out']} | {fmt(r['precision_at_size'])} "
                     f"| {r['seconds']:.2f} |")
    return "\n".join(lines)


def wide_table(rows: list[dict]) -> str:
    """Examples × methods; each cell "edge AUROC / node AUROC · seconds" (n/a: undefined),
    the edge AUROC above noise in brackets where it differs."""
    short = lambda v: f"{v:.2f}" if v is not None else "n/a"  # noqa: E731
    lines = ["| example | " + " | ".join(ALL_METHODS) + " |",
             "|---|" + "---|" * len(ALL_METHODS)]
    for name in dict.fromkeys(r["example"] for r in rows):
        cells = {r["method"]: f"{short(r['edge_auroc'])}{_bracket(r)} / "
                              f"{short(r['node_auroc'])} · {r['seconds']:.1f}s"
                 for r in rows if r["example"] == name}
        lines.append(f"| {name} | " + " | ".join(cells.get(m, "-") for m in ALL_METHODS) + " |")
    return "\n".join(lines)


def _bracket(row) -> str:
    above = row["edge_auroc_above_noise"]
    return "" if above == row["edge_auroc"] else f" ({above:.2f})"


def summary(rows: list[dict]) -> str:
    """Mean edge and node AUROC per method over the examples where each is defined."""
    lines = ["| method | mean edge AUROC | above noise | mean node AUROC | "
             "examples with a missed edge | total seconds |", "|---|---|---|---|---|---|"]
    for method in ALL_METHODS:
        mine = [r for r in rows if r["method"] == method]
        edge = [r["edge_auroc"] for r in mine if r["edge_auroc"] is not None]
        node = [r["node_auroc"] for r in mine if r["node_auroc"] is not None]
        above = [r["edge_auroc_above_noise"] for r in mine if r["edge_auroc"] is not None]
        missed = sum(1 for r in mine if r["missed"])
        mean = (lambda xs: f"{sum(xs) / len(xs):.3f} ({len(xs)})" if xs else "-")
        lines.append(f"| {method} | {mean(edge)} | {mean(above)} | {mean(node)} | "
                     f"{missed} / {len(mine)} | "
                     f"{sum(r['seconds'] for r in mine):.1f} |")
    return "\n".join(lines)


def missed_report(rows: list[dict], key: str = "missed") -> str:
    """The true edges (nodes, for activation patching) each method ranked no higher than
    some false one, by name (key "noise_only": once scores below the noise floor are 0)."""
    lines = []
    for r in rows:
        already = {m["edge"] for m in r["missed"]}
        found = [m for m in r[key] if key == "missed" or m["edge"] not in already]
        if found:
            edges = ", ".join(f"{m['kind']} `{m['edge']}` (score {m['score']:.3g}, "
                              f"rank {m['rank']})" for m in found)
            lines.append(f"- {r['example']} / {r['method']}: {edges}")
    return "\n".join(lines) or "- none"


def plot(rows: list[dict], out_dir: str, granularity: str = GRANULARITY) -> list[str]:
    """One PNG per example: every method's edge ROC (matplotlib, imported here)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name in dict.fromkeys(r["example"] for r in rows):
        fig, ax = plt.subplots(figsize=(4, 4))
        for r in (r for r in rows if r["example"] == name and r["edge_auroc"] is not None):
            fpr, tpr = [0.0] + r["roc"]["fpr"] + [1.0], [0.0] + r["roc"]["tpr"] + [1.0]
            ax.step(fpr, tpr, where="post", label=f"{r['method']} ({r['edge_auroc']:.2f})")
        ax.plot([0, 1], [0, 1], color="0.8", lw=0.8)
        ax.set(title=f"{name}: edges ({granularity})", xlabel="FPR", ylabel="TPR")
        ax.legend(fontsize=6, loc="lower right")
        path = os.path.join(out_dir, f"roc_{name}.png")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated example names")
    parser.add_argument("--granularity", default=GRANULARITY,
                        choices=("component", "acdc_hooks", "sp_hooks"))
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--readme", action="store_true",
                        help="also replace the table between the circuits markers in README.md")
    parser.add_argument("--variants", help="comma-separated variants to score instead "
                        f"(the realism table): {','.join(VARIANTS)}")
    parser.add_argument("--auto-circuit", action="store_true",
                        help="also run auto-circuit's EAP and ACDC (its venv: make test-outside)")
    args = parser.parse_args(argv)
    if args.auto_circuit:
        _add_auto_circuit()
    names = args.only.split(",") if args.only else list(EXAMPLES)
    if args.variants:
        names = names if args.only else list(REALISM_EXAMPLES)
        return realism_main(args, names, args.variants.split(","))
    start, rows = time.perf_counter(), []
    for name in names:
        rows += run_example(name, args.pairs, args.max_len, args.seed, args.granularity)
        print(f"{name}: done ({time.perf_counter() - start:.0f}s)", file=sys.stderr)
    total = time.perf_counter() - start
    os.makedirs(args.out, exist_ok=True)
    report = (f"Edge scores at {args.granularity} granularity, {args.pairs} pairs per example "
              f"(max_seq_len ≤ {args.max_len}, seed {args.seed}); pessimistic AUROC; "
              f"constant and inert edges left out. Total {total:.0f}s.\n\n"
              f"{summary(rows)}\n\n{table(rows)}\n\nTrue edges (nodes, for activation patching) "
              f"ranked no higher than some false one:\n\n{missed_report(rows)}\n\n"
              f"True edges above every false one only by float noise (score below "
              f"{NOISE_FLOOR:g} × the method's top score):\n\n"
              f"{missed_report(rows, 'noise_only')}\n")
    with open(os.path.join(args.out, "circuits.md"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "circuits.json"), "w") as f:
        json.dump({"pairs": args.pairs, "max_len": args.max_len, "seed": args.seed,
                   "granularity": args.granularity, "seconds": total, "rows": rows}, f, indent=1)
    plot(rows, os.path.join(args.out, "circuits"), args.granularity)
    print(report)
    if args.readme:
        _replace_in_readme(README_MARKERS, summary(rows) + "\n\n" + wide_table(rows))
    return 0


def _add_auto_circuit() -> None:
    """auto-circuit's methods join ALL_METHODS, before the reference; refused in one line
    where its venv is not installed."""
    extra = auto_circuit_methods()
    if not extra:
        raise SystemExit("--auto-circuit: auto-circuit's venv is not installed; "
                         "`make test-outside` builds it (.venvs/auto-circuit)")
    reference = ALL_METHODS.pop("path_patching (reference)")
    ALL_METHODS.update({**extra, "path_patching (reference)": reference})


def realism_main(args, names: list[str], variants: list[str]) -> int:
    """Every variant of every example (benchmarks.circuit_variants): <out>/circuits_realism.md
    and .json, the figure, and with --readme the table between the realism markers."""
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {', '.join(unknown)}; choose from "
                         f"{', '.join(VARIANTS)}")
    start, rows = time.perf_counter(), []
    for name in names:
        for variant in variants:
            rows += run_variant(variant, name, args.pairs, args.max_len, args.seed,
                                args.granularity)
            print(f"{name} / {variant}: done ({time.perf_counter() - start:.0f}s)",
                  file=sys.stderr)
    total = time.perf_counter() - start
    methods = list(ALL_METHODS)
    heading = (f"Mean edge AUROC at {args.granularity} granularity, {args.pairs} pairs per "
               f"example (max_seq_len ≤ {args.max_len}, seed {args.seed}; examples: "
               f"{', '.join(names)}); each variant scored only once its truth passed the "
               f"path-patching re-check; [in brackets]: the mean once scores below "
               f"{NOISE_FLOOR:g} × the method's top score are set to 0, where it differs. "
               f"Total {total:.0f}s.")
    os.makedirs(args.out, exist_ok=True)
    details = (f"# The realism table, per example\n\n(Written by `make circuits`; "
               f"docs/realism.md explains it.) {heading}\n\n{realism_summary(rows, methods)}"
               f"\n\nEdge AUROC per example, variant and method:\n\n"
               f"{realism_details(rows, methods)}\n")
    for path in [os.path.join(args.out, "circuits_realism.md")] + \
            [os.path.join(ROOT, "docs", "realism_table.md")] * args.readme:
        with open(path, "w") as f:
            f.write(details)
    with open(os.path.join(args.out, "circuits_realism.json"), "w") as f:
        json.dump({"pairs": args.pairs, "max_len": args.max_len, "seed": args.seed,
                   "granularity": args.granularity, "examples": names, "variants": variants,
                   "seconds": total, "rows": rows}, f, indent=1)
    figure = os.path.join(ROOT, "docs", "images", "realism_auroc.png") if args.readme \
        else os.path.join(args.out, "circuits_realism.png")
    plot_realism(rows, methods, figure)
    print(f"{heading}\n\n{realism_summary(rows, methods)}")
    if args.readme:
        _replace_in_readme(REALISM_MARKERS, f"{heading}\n\n{realism_summary(rows, methods)}")
    return 0


def _replace_in_readme(markers: tuple[str, str], text: str) -> None:
    path = os.path.join(ROOT, "README.md")
    readme = open(path).read()
    a, b = (readme.index(m) for m in markers)
    with open(path, "w") as f:
        f.write(readme[:a + len(markers[0])] + "\n" + text + "\n" + readme[b:])


if __name__ == "__main__":
    sys.exit(main())
