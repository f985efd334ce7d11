"""The model variants benchmarks/circuits.py scores: one library example, made more realistic.

`build_variant(variant, name, max_len)` gives a `Variant` (the model, the source its
circuit dataset is drawn from, and the task for a several-task model) or raises
`NotApplicable` with the reason. Each variant is one knob of issue 28 on the plain
compiled model, whose truth the knob carried (nothing here rebuilds a truth):

  plain       the example compiled at max_seq_len = min(max_len, its own);
  rotated     interp.realism.rotate, then permute_neurons (seed ROTATE_SEED);
  soft        compiled with attention="soft" (the smallest logit gaps the bounds accept);
  dense       interp.realism.perturb at its default (largest accepted) scale;
  multitask   the library's six_tasks model, scored on this example's task (task=name):
              applies to the six examples that are one of its tasks;
  layernorm   compiled with layer_norm=True;
  compressed  interp.compress to the read rank, PCA start: the narrowest width where a
              linear projection keeps every read exact. Applies when that model agrees with
              the evaluator on EXACT_CHECK_INPUTS inputs (else it has no exact truth).

Whether a variant's truth still holds is checked before scoring (interp.realism.recheck_truth).
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Any

from compiler.compiling import compile_rasp_to_model
from examples.library import EXAMPLES
from examples.multitask import TASK_EXAMPLES, task_sampler
from interp import realism
from interp.circuits import example_model
from rasp.errors import RaspError

VARIANTS = ("plain", "rotated", "soft", "dense", "multitask", "layernorm", "compressed")
ROTATE_SEED = 1   # the seeds docs/realism.md measures with
PERMUTE_SEED = 2
PERTURB_SEED = 3
MULTITASK = "six_tasks"
EXACT_CHECK_INPUTS = 200  # a compressed model must agree with the evaluator on these


class NotApplicable(Exception):
    """The variant does not apply to this example; the message says why."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """A model to score, what its dataset is drawn from, and its task (several-task model)."""

    model: Any
    source: Any
    task: str | None = None


def build_variant(variant: str, name: str, max_len: int) -> Variant:
    """The `variant` of library example `name` at max_seq_len ≤ max_len (see module doc)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    example = EXAMPLES[name]
    try:
        if variant == "multitask":
            return _multitask(name, max_len)
        plain = example_model(name, max_len)
        if variant == "plain":
            model = plain
        elif variant == "rotated":
            model = realism.permute_neurons(realism.rotate(plain, ROTATE_SEED), PERMUTE_SEED)
        elif variant == "dense":
            model = realism.perturb(plain, PERTURB_SEED)
        elif variant == "compressed":
            model = _compressed(name, plain)
        else:  # compiled differently: soft attention or LayerNorm
            n = plain.config.max_seq_len
            options = {"attention": "soft"} if variant == "soft" else {"layer_norm": True}
            model = compile_rasp_to_model(example.build(n), set(example.vocab), n,
                                          causal=example.causal, **options)
    except RaspError as e:  # a knob or the compiler refused: one line, kept as the reason
        raise NotApplicable(f"refused: {e}") from None
    return Variant(model, example)


@functools.lru_cache(maxsize=4)
def hooked_model(model):
    """The model's HookedModel, jitted once for its truth check and every method (and, for
    the several-task model, every task)."""
    from interp.circuits.hooked import HookedModel
    return HookedModel(model)


def _multitask(name: str, max_len: int) -> Variant:
    tasks = TASK_EXAMPLES[MULTITASK]
    if name not in tasks.build(tasks.max_seq_len):
        raise NotApplicable(f"not a task of {MULTITASK}")
    model = _multitask_model(min(max_len, tasks.max_seq_len))
    return Variant(model, task_sampler(name, tasks.vocab), task=name)


@functools.lru_cache(maxsize=None)
def _multitask_model(n: int):
    tasks = TASK_EXAMPLES[MULTITASK]
    return compile_rasp_to_model(tasks.build(n), set(tasks.vocab), n)


def _compressed(name: str, plain):
    from interp.compress import choose_recipe, compress, exact_match, sampler_for
    sampler = sampler_for(plain, name)
    _, rank = choose_recipe(plain, plain.config.d_model, sampler)
    narrow = compress(plain, max(rank, 1), recipe="pca", example=name, progress=False)
    rng = random.Random(0)
    share = exact_match(narrow, [sampler(rng) for _ in range(EXACT_CHECK_INPUTS)])
    if share < 1:
        raise NotApplicable(f"compressed to the read rank {rank} it is exact on only "
                            f"{share:.1%} of {EXACT_CHECK_INPUTS} inputs")
    return narrow


# ---------------------------------------------------------------- the realism table
def _scored(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("method") and r["edge_auroc"] is not None]


def realism_summary(rows: list[dict], methods) -> str:
    """Methods × variants: mean edge AUROC, [the mean above the noise floor] where it
    differs, (the examples where it is defined)."""
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    lines = ["| method | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    for method in methods:
        cells = []
        for variant in variants:
            mine = [r for r in _scored(rows) if r["method"] == method and r["variant"] == variant]
            if not mine:
                cells.append("-")
                continue
            auroc, above = (mean([r[k] for r in mine])
                            for k in ("edge_auroc", "edge_auroc_above_noise"))
            floor = f" [{above:.2f}]" if round(above, 2) != round(auroc, 2) else ""
            cells.append(f"{auroc:.3f}{floor} ({len(mine)})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def realism_details(rows: list[dict], methods) -> str:
    """Per example and variant: each method's edge AUROC, or why the variant is not scored."""
    lines = ["| example | variant | " + " | ".join(methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    done = set()
    for r in rows:
        key = (r["example"], r["variant"])
        if key in done:
            continue
        done.add(key)
        why = r.get("skipped") or r.get("refused")
        if why:
            label = "not applicable" if r.get("skipped") else "**refused**"
            lines.append(f"| {key[0]} | {key[1]} | {label}: {why} |" + " |" * (len(methods) - 1))
            continue
        auroc = {m["method"]: m["edge_auroc"] for m in rows
                 if (m["example"], m["variant"]) == key and m.get("method")}
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(
            "n/a" if auroc.get(m) is None else f"{auroc[m]:.2f}" for m in methods) + " |")
    return "\n".join(lines)


def plot_realism(rows: list[dict], methods, path: str) -> str:
    """A heatmap of mean edge AUROC, methods × variants, saved as a PNG at `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    variants = [v for v in VARIANTS if any(r["variant"] == v for r in _scored(rows))]
    grid = np.full((len(methods), len(variants)), np.nan)
    counts = np.zeros_like(grid, dtype=int)
    for i, method in enumerate(methods):
        for j, variant in enumerate(variants):
            mine = [r["edge_auroc"] for r in _scored(rows)
                    if r["method"] == method and r["variant"] == variant]
            if mine:
                grid[i, j], counts[i, j] = sum(mine) / len(mine), len(mine)
    fig, ax = plt.subplots(figsize=(1.1 * len(variants) + 2.5, 0.5 * len(methods) + 1.2))
    image = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
    for i in range(len(methods)):
        for j in range(len(variants)):
            if counts[i, j]:
                ax.text(j, i, f"{grid[i, j]:.2f}\n({counts[i, j]})", ha="center",
                        va="center", fontsize=7, color="w" if grid[i, j] < 0.8 else "k")
    ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right")
    ax.set_yticks(range(len(methods)), [m.replace(" (reference)", " (ref.)") for m in methods])
    ax.set_title("mean edge AUROC (examples scored)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.savefig(path, dpi=80, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path
