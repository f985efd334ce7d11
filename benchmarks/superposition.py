"""Superposition sweep: compress compiled models from d_model down to d_model/8.

    python benchmarks/superposition.py [--steps 6000] [--examples a,b] [--out benchmarks/results]

For each example and width: exact-match accuracy against the evaluator on 1,000
inputs and per-layer cosine similarity; at the smallest ≥ 99%-exact width, a
baseline SAE's dictionary score. Also the frac_prevs acceptance case (N = 5,
vocab a–e, 3 seeds). Writes superposition.md/.json and PNG plots under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import rasp  # noqa: E402
from compiler import compile_rasp_to_model  # noqa: E402
from examples import programs as classic  # noqa: E402
from examples.library import EXAMPLES  # noqa: E402
from interp.compress import compress, exact_match, layer_cosines, sampler_for  # noqa: E402
from interp.compress_truth import expected_random_max_cosine, score_dictionary  # noqa: E402
from interp.sae import narrow_activations, train_sae  # noqa: E402

SWEPT = ("frac_prevs", "sort_unique", "reverse", "hist", "previous_token", "shuffle_dyck1")
WIDTH_FRACTIONS = (1, 3 / 4, 1 / 2, 3 / 8, 1 / 4, 1 / 8)
TEST_INPUTS = 1000
EXACT = 0.99
ACCEPTANCE_SEEDS = (0, 1, 2)
SAE_INPUTS, SAE_STEPS = 400, 3000


def frac_prevs_a() -> tuple:
    """The acceptance model: the fraction of 'a' so far, N = 5, vocab a–e."""
    is_a = rasp.numerical(rasp.Map(lambda t: t == "a", rasp.tokens)).named("is_a")
    model = compile_rasp_to_model(classic.make_frac_prevs(is_a), list("abcde"), 5)
    return model, sampler_for(model)


def widths(d_model: int) -> list[int]:
    """d_model, 3/4, 1/2, 3/8, 1/4 and 1/8 of it (rounded, at least 1, distinct)."""
    return sorted({max(1, round(d_model * f)) for f in WIDTH_FRACTIONS}, reverse=True)


def test_inputs(sampler, seed: int = 12345) -> list:
    rng = random.Random(seed)
    return [sampler(rng) for _ in range(TEST_INPUTS)]


def run_one(model, sampler, dim: int, steps: int, seed: int, inputs) -> tuple[dict, object]:
    start = time.perf_counter()
    compressed = compress(model, dim, steps=steps, seed=seed, sampler=sampler, progress=False)
    row = {"dim": dim, "seed": seed, "accuracy": exact_match(compressed, inputs),
           "cosines": layer_cosines(compressed, inputs),
           "steps_run": compressed.training["steps_run"],
           "seconds": round(time.perf_counter() - start, 1)}
    return row, compressed


def sae_score(compressed, sampler) -> dict:
    """A baseline SAE on the final narrow residual, scored against the known features."""
    layer = 2 * len(compressed.config.layers)
    features = compressed.ground_truth.features_at(layer)
    activations = narrow_activations(compressed, test_inputs(sampler, seed=777)[:SAE_INPUTS],
                                     layer)
    latents = 2 * len(features)
    sae = train_sae(activations, latents, steps=SAE_STEPS, seed=0)
    score = score_dictionary(compressed, sae.directions, layer)
    return {"layer": layer, "features": len(features), "latents": latents,
            "mean_max_cosine": score.mean_max_cosine, "recovered": score.recovered,
            "random_mean_max_cosine": expected_random_max_cosine(compressed.dim, latents)}


def sweep(name: str, model, sampler, steps: int) -> dict:
    inputs = test_inputs(sampler)
    rows, smallest = [], None
    for dim in widths(model.config.d_model):
        row, compressed = run_one(model, sampler, dim, steps, 0, inputs)
        rows.append(row)
        print(f"  {name} dim {dim:3d}: exact {row['accuracy']:.3f}, cosines "
              f"{' '.join(f'{c:.2f}' for c in row['cosines'])} ({row['seconds']}s)", flush=True)
        if row["accuracy"] >= EXACT:
            smallest = (dim, compressed)
    result = {"d_model": model.config.d_model, "rows": rows,
              "smallest_exact_dim": smallest[0] if smallest else None}
    if smallest:
        compressed = smallest[1]
        result["sae"] = sae_score(compressed, sampler)
        result["cosines_at_smallest"] = next(r["cosines"] for r in rows
                                             if r["dim"] == smallest[0])
        truth = compressed.ground_truth
        result["gram"] = {"labels": list(truth.residual_labels),
                          "matrix": truth.interference.tolist()}
    return result


def acceptance(steps: int) -> dict:
    """frac_prevs (N = 5, vocab a–e) at half width and below, 3 seeds each."""
    model, sampler = frac_prevs_a()
    inputs = test_inputs(sampler)
    half = model.config.d_model // 2
    runs = []
    for dim in range(half, 0, -1):
        rows = [run_one(model, sampler, dim, steps, seed, inputs)[0] for seed in ACCEPTANCE_SEEDS]
        runs.extend(rows)
        shown = ", ".join(f"{r['accuracy']:.3f}" for r in rows)
        print(f"  frac_prevs(N=5, a–e) dim {dim}: exact {shown}", flush=True)
        if min(r["accuracy"] for r in rows) < EXACT:
            break
    passing = [d for d in {r["dim"] for r in runs}
               if all(r["accuracy"] >= EXACT for r in runs if r["dim"] == d)]
    return {"d_model": model.config.d_model, "half": half, "runs": runs,
            "smallest_exact_dim_all_seeds": min(passing) if passing else None}


def markdown(results: dict, accept: dict) -> str:
    lines = ["| example | d_model | dim | exact match | per-layer cosine | SAE MMCS "
             "(recovered; random) |", "|---|---|---|---|---|---|"]
    for name, result in results.items():
        for row in result["rows"]:
            sae = ""
            if row["dim"] == result["smallest_exact_dim"]:
                s = result["sae"]
                sae = (f"{s['mean_max_cosine']:.2f} ({s['recovered']:.0%}; "
                       f"{s['random_mean_max_cosine']:.2f})")
            mark = " ←" if row["dim"] == result["smallest_exact_dim"] else ""
            lines.append(f"| {name} | {result['d_model']} | {row['dim']}{mark} | "
                         f"{row['accuracy']:.1%} | "
                         f"{' '.join(f'{c:.2f}' for c in row['cosines'])} | {sae} |")
    lines += ["", "← the smallest width that stays ≥ 99% exact.", "",
              f"frac_prevs, N = 5, vocab a–e (d_model {accept['d_model']}), seeds "
              f"{', '.join(map(str, ACCEPTANCE_SEEDS))}:", "",
              "| dim | exact match per seed |", "|---|---|"]
    for dim in sorted({r["dim"] for r in accept["runs"]}, reverse=True):
        accuracies = [r["accuracy"] for r in accept["runs"] if r["dim"] == dim]
        lines.append(f"| {dim} | {' '.join(f'{a:.1%}' for a in accuracies)} |")
    lines.append(f"\nsmallest width ≥ 99% exact for every seed: "
                 f"{accept['smallest_exact_dim_all_seeds']} (half of d_model: {accept['half']})")
    return "\n".join(lines)


def plot(results: dict, out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, result in results.items():
        ax.plot([r["dim"] / result["d_model"] for r in result["rows"]],
                [r["accuracy"] for r in result["rows"]], marker="o", label=name)
    ax.set(xlabel="dim / d_model", ylabel="exact-match accuracy (1,000 inputs)",
           title="Compressed compiled models")
    ax.axhline(EXACT, color="grey", lw=0.5, ls="--")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "superposition_accuracy.png"), dpi=120)
    grams = {n: r for n, r in results.items() if r.get("gram")}
    if not grams:
        return
    fig, axes = plt.subplots(1, len(grams), figsize=(4 * len(grams), 4), squeeze=False)
    for ax, (name, result) in zip(axes[0], grams.items()):
        image = ax.imshow(result["gram"]["matrix"], cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(f"{name}: WᵀW at dim {result['smallest_exact_dim']}", fontsize=8)
        labels = result["gram"]["labels"]
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=4)
        ax.set_yticks(range(len(labels)), labels, fontsize=4)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.7)
    fig.savefig(os.path.join(out, "superposition_gram.png"), dpi=150)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000, help="training steps per width")
    parser.add_argument("--examples", default=",".join(SWEPT))
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    results = {}
    for name in args.examples.split(","):
        example = EXAMPLES[name]
        model = compile_rasp_to_model(example.build(example.max_seq_len), example.vocab,
                                      example.max_seq_len, example.causal)
        results[name] = sweep(name, model, sampler_for(model, name), args.steps)
    accept = acceptance(args.steps)
    table = markdown(results, accept)
    print(table)
    minutes = (time.perf_counter() - start) / 60
    print(f"\n{minutes:.1f} min, {args.steps} steps per width at most")
    with open(os.path.join(args.out, "superposition.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "superposition.json"), "w") as f:
        json.dump({"steps": args.steps, "minutes": round(minutes, 1), "examples": results,
                   "frac_prevs_n5": accept}, f, indent=1)
    plot(results, args.out)


if __name__ == "__main__":
    main()
