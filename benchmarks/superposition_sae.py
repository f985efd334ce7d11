"""SAE feature recovery on compressed models: SAELens beside our baseline SAE and random.

Run through `python benchmarks/superposition.py --saes [--examples a,b]` (needs the
SAELens venv: `make sae-lens-venv`). For each example, two compressed models: at the
read rank (the PCA start, exact) and at half of it (the superposed recipe, features
forced to share directions), with explicit compress arguments. On the final narrow
residual of each: SAELens SAEs (ReLU + L1, SAELens's own SAETrainer on the cached
activations) at widths × L1 coefficients, our baseline SAE (jax, 2× features, L1
1e-2) and random directions (the expected score), all scored by `score_dictionary`:
mean max cosine and the share of features recovered at cosine ≥ 0.9.
"""

from __future__ import annotations

import random
import time

import numpy as np

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.compress import compress, exact_match, sampler_for
from interp.compress_train import read_rank
from interp.compress_truth import expected_random_max_cosine, score_dictionary
from interp.sae import narrow_activations, sae_lens_spec, train_sae, train_sae_lens_many

WIDTHS = (1, 2, 4)         # SAE latents per known feature
L1_COEFFICIENTS = (1e-3, 1e-2)
SAE_INPUTS, SAE_STEPS = 400, 1000
COMPRESS_STEPS = 1500      # the superposed recipe, one start (the library default: 20,000 × 3)


def compressed_models(name: str) -> list:
    """(label, compressed) at the read rank (PCA start) and at half of it (superposed)."""
    example = EXAMPLES[name]
    model = compile_rasp_to_model(example.build(example.max_seq_len), example.vocab,
                                  example.max_seq_len, example.causal)
    sampler = sampler_for(model, name)
    rng = random.Random(4242)
    rank = read_rank(model, [sampler(rng) for _ in range(256)])
    runs = [("read rank", compress(model, rank, recipe="pca", seed=0, sampler=sampler,
                                   progress=False))]
    runs.append(("half the read rank",
                 compress(model, max(1, rank // 2), recipe="superposed", steps=COMPRESS_STEPS,
                          restarts=1, seed=0, sampler=sampler, progress=False)))
    return model, sampler, runs


def score_all(compressed, sampler) -> dict:
    """Every dictionary on the final narrow residual of `compressed`, scored."""
    layer = 2 * len(compressed.config.layers)
    features = compressed.ground_truth.features_at(layer)
    rng = random.Random(777)
    activations = narrow_activations(compressed, [sampler(rng) for _ in range(SAE_INPUTS)],
                                     layer)
    n = len(features)
    grid = [(width, l1) for width in WIDTHS for l1 in L1_COEFFICIENTS]
    specs = [sae_lens_spec(width * n, l1=l1, steps=SAE_STEPS, seed=0) for width, l1 in grid]
    start = time.perf_counter()
    saes = train_sae_lens_many(activations, specs)
    sae_lens_seconds = time.perf_counter() - start
    baseline = train_sae(activations, 2 * n, steps=SAE_STEPS, seed=0)

    def scored(directions):
        score = score_dictionary(compressed, directions, layer)
        return {"mean_max_cosine": score.mean_max_cosine, "recovered": score.recovered}

    return {"layer": layer, "features": n, "dim": compressed.dim,
            "random_mean_max_cosine": expected_random_max_cosine(compressed.dim, 2 * n),
            "baseline": scored(baseline.directions),
            "sae_lens": [{"width": w, "l1": l1, **scored(sae.directions),
                          "l0": float((sae.encode(activations) > 0).sum(1).mean())}
                         for (w, l1), sae in zip(grid, saes)],
            "sae_lens_seconds": round(sae_lens_seconds, 1)}


def sweep(names: list[str]) -> list[dict]:
    """One row per (example, compressed width)."""
    rows = []
    for name in names:
        model, sampler, runs = compressed_models(name)
        rng = random.Random(12345)
        inputs = [sampler(rng) for _ in range(1000)]
        for label, compressed in runs:
            row = {"example": name, "d_model": model.config.d_model, "width": label,
                   "exact": exact_match(compressed, inputs), **score_all(compressed, sampler)}
            rows.append(row)
            print(f"  {name} dim {row['dim']} ({label}): exact {row['exact']:.3f}, SAELens "
                  f"best {max(s['mean_max_cosine'] for s in row['sae_lens']):.2f}, baseline "
                  f"{row['baseline']['mean_max_cosine']:.2f}, random "
                  f"{row['random_mean_max_cosine']:.2f} ({row['sae_lens_seconds']}s)",
                  flush=True)
    return rows


def _cell(score: dict) -> str:
    return f"{score['mean_max_cosine']:.2f} / {score['recovered']:.0%}"


def markdown(rows: list[dict]) -> str:
    """Per-row table, then the means by compression and SAE setting."""
    grid = [f"SAELens {s['width']}× L1 {s['l1']:g}" for s in rows[0]["sae_lens"]]
    lines = ["| example | d_model → dim | exact | features | random | baseline 2× | "
             + " | ".join(grid) + " |", "|---" * (6 + len(grid)) + "|"]
    for row in rows:
        lines.append(f"| {row['example']} | {row['d_model']} → {row['dim']} | "
                     f"{row['exact']:.1%} | {row['features']} | "
                     f"{row['random_mean_max_cosine']:.2f} | {_cell(row['baseline'])} | "
                     + " | ".join(_cell(s) for s in row["sae_lens"]) + " |")
    lines += ["", "Means over the examples (mean max cosine / share recovered at ≥ 0.9; "
              "L0: active latents per position):", "",
              "| compressed to | SAE | mean max cosine | recovered | L0 |", "|---|---|---|---|---|"]
    for width in dict.fromkeys(r["width"] for r in rows):
        group = [r for r in rows if r["width"] == width]
        ratio = np.mean([r["dim"] / r["d_model"] for r in group])
        label = f"{width} (dim/d_model {ratio:.2f})"
        lines.append(f"| {label} | random (2× features) | "
                     f"{np.mean([r['random_mean_max_cosine'] for r in group]):.2f} | - | - |")
        lines.append(f"| {label} | baseline (jax, 2×, L1 0.01) | "
                     f"{np.mean([r['baseline']['mean_max_cosine'] for r in group]):.2f} | "
                     f"{np.mean([r['baseline']['recovered'] for r in group]):.0%} | - |")
        for i, name in enumerate(grid):
            cells = [r["sae_lens"][i] for r in group]
            lines.append(f"| {label} | {name} | "
                         f"{np.mean([c['mean_max_cosine'] for c in cells]):.2f} | "
                         f"{np.mean([c['recovered'] for c in cells]):.0%} | "
                         f"{np.mean([c['l0'] for c in cells]):.1f} |")
    return "\n".join(lines)
