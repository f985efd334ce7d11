"""Superposition: compress a compiled model into a narrow residual stream, keep its truth.

`compress(model, dim)` learns one projection W (dim × d_model), compiled weights
frozen, and gives a `CompressedModel`: an ordinary transformer of width dim (W
folded into every read and write) with the `CompiledModel` API, and a ground
truth that knows where every original residual direction went (`W[:, i]`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from interp.compress_fold import fold_numpy, narrow_config, narrow_labels
from interp.compress_train import (PCA_INPUTS, Sampler, TrainingSettings, Validator,
                                   outputs_match, read_rank, reference_outputs,
                                   train_projection)
from rasp_runtime.model import CompiledModel

COMPRESSION_FORMAT = "rasp-compiler-compression"
COMPRESSION_VERSION = 1
VALIDATION_SEED_OFFSET = 1_000_003  # validation inputs never reuse the training stream


class CompressedModel(CompiledModel):
    """A compiled model squeezed into `dim` residual dimensions by a projection W.

    Its parameters are the original's with W folded in; `apply`, `apply_batch`,
    `residuals` (of width dim), `components` and `ablated_params`-style tools
    work as for any `CompiledModel`. `residual_labels` are "narrow:0" …
    "narrow:{dim-1}": narrow dimensions are not features. The features are the
    original residual directions; `value_records` still index them, so
    `decode_intermediates` decodes from the reconstructed residual z·W.

    Attributes: original (the CompiledModel), projection (W, float32),
    training (a JSON-able summary of how W was trained, or None).
    """

    def __init__(self, original: CompiledModel, projection: np.ndarray,
                 training: dict[str, Any] | None = None):
        projection = np.asarray(projection, np.float32)
        d_model = original.config.d_model
        if projection.ndim != 2 or projection.shape[1] != d_model or not projection.shape[0]:
            raise ValueError(f"the projection must be dim × d_model = ? × {d_model}, "
                             f"got shape {projection.shape}")
        dim = projection.shape[0]
        # what else the original carries (a saved ground-truth alignment, its domain)
        carried = {name: getattr(original, name) for name in ("saved_alignment", "domain")
                   if hasattr(original, name)}
        super().__init__(fold_numpy(original.params, projection),
                         narrow_config(original.config, dim), narrow_labels(dim),
                         original.components, list(original.value_records.values()),
                         original.program, **carried)
        self.original = original
        self.projection = projection
        self.training = training

    @property
    def dim(self) -> int:
        """The width of the narrow residual stream."""
        return self.projection.shape[0]

    def reconstructed_residuals(self, tokens: Sequence[Any]) -> list[np.ndarray]:
        """Each narrow residual read back through W: (seq, d_model), comparable with
        `original.apply(tokens).residuals`."""
        return [r @ self.projection for r in self.apply(tokens).residuals]

    def decode_intermediates(self, tokens: Sequence[Any]) -> dict[str, list[Any]]:
        """Each recorded value at positions 1..n, decoded from the reconstructed residual."""
        residuals = self.reconstructed_residuals(tokens)
        return {label: [record.decode(row) for row in residuals[record.sublayer + 1][1:]]
                for label, record in self.value_records.items()}

    @property
    def ground_truth(self):
        """The original ground truth plus `feature_directions` and `interference`
        (interp.compress_truth.CompressedGroundTruth)."""
        from interp.compress_truth import CompressedGroundTruth
        return CompressedGroundTruth.from_compressed(self)

    def to_transformer_lens(self):
        """The narrow transformer as a TransformerLens bridge (interp.transformer_lens)."""
        from interp.transformer_lens import to_transformer_lens
        return to_transformer_lens(self)

    # ------------------------------------------------------------------ files
    def save(self, path, description: str | None = None, format: str = "npz"):
        """Save as the original model's .npz/.json plus a "compression" section (W and
        the training summary) in the JSON; `CompressedModel.load` reads it back.
        Another `format` exports the narrow transformer as `CompiledModel.save` does."""
        if format != "npz":
            return super().save(path, description, format=format)
        from rasp_runtime.serialize import save_model
        return save_model(self.original, path, description, sections={"compression": {
            "format": COMPRESSION_FORMAT, "version": COMPRESSION_VERSION, "dim": self.dim,
            "projection": self.projection.tolist(),  # float32 → float64 repr: exact
            "training": self.training}})

    @classmethod
    def load(cls, path, verify: bool = True) -> CompressedModel:
        """A compressed model saved with `save`, refolded from the original and W
        (checksummed as `CompiledModel.load` does, unless `verify=False`)."""
        from rasp_runtime.serialize import ModelFileError, load_model, read_metadata
        section = read_metadata(path).get("compression")
        if not isinstance(section, dict) or section.get("format") != COMPRESSION_FORMAT:
            raise ModelFileError(f"{path} is not a compressed model (no compression section); "
                                 "load it with CompiledModel.load")
        if section.get("version") != COMPRESSION_VERSION:
            raise ModelFileError(f"{path} has compression version {section.get('version')!r}; "
                                 f"this version reads {COMPRESSION_VERSION}")
        original = load_model(path, verify)
        try:
            return cls(original, np.asarray(section["projection"], np.float32),
                       section.get("training"))
        except (KeyError, ValueError, TypeError) as e:
            raise ModelFileError(f"{path}: malformed compression section: {e}") from None


def sampler_for(model: CompiledModel, example: str | None = None) -> Sampler:
    """Inputs (without BOS) from a library example's sampler, or uniform over the vocab."""
    from examples.library import get_example, uniform
    vocab, n = list(model.config.vocab), model.config.max_seq_len
    if example is not None:
        chosen = get_example(example)
        return lambda rng: chosen.sample(rng, n, vocab)
    return lambda rng: uniform(rng, vocab, rng.randint(1, n))


# The two recipes `compress` chooses between; docs/superposition.md says why each is
# what it is. "pca": from the read rank up a linear W keeps every reader exact, and the
# PCA start is that W at step 0 (the training is a fallback). "superposed": below it no
# W reconstructs every residual, so the residual term only pulls W away from exact
# outputs; a small random start keeps hard attention's softmax unsaturated, the hinge
# pushes the last numbers under the tolerance, and restarts retry an unlucky start.
# The budget is steps × restarts: 60,000 steps at most.
RECIPES: dict[str, dict[str, Any]] = {
    "pca": {"init": "pca", "init_scale": 1.0, "residual_weight": 1.0, "margin_weight": 0.0,
            "learning_rate": 3e-3, "steps": 2000, "restarts": 1, "validation_size": 256},
    "superposed": {"init": "random", "init_scale": 0.3, "residual_weight": 0.0,
                   "margin_weight": 100.0, "learning_rate": 1e-2, "steps": 20_000,
                   "restarts": 3, "validation_size": 1000},
}


def choose_recipe(model: CompiledModel, dim: int, sampler: Sampler, seed: int = 0
                  ) -> tuple[str, int]:
    """("pca" or "superposed", the read rank): "pca" when dim ≥ the rank of the
    residuals' image in the read directions, on the inputs the PCA start sees."""
    rng = random.Random(seed)  # the PCA start's inputs (interp.compress_train)
    rank = read_rank(model, [sampler(rng) for _ in range(PCA_INPUTS)])
    return ("pca" if dim >= rank else "superposed"), rank


def compress(model: CompiledModel, dim: int, *, recipe: str = "auto",
             steps: int | None = None, batch_size: int = 64,
             learning_rate: float | None = None, seed: int = 0,
             residual_weight: float | None = None, residual_metric: str = "reads",
             init: str | None = None, feature_scales: bool = True,
             init_scale: float | None = None, margin_weight: float | None = None,
             restarts: int | None = None, sampler: Sampler | None = None,
             example: str | None = None, validation_size: int | None = None,
             eval_every: int = 50, numeric_tolerance: float = 1e-2,
             progress: bool = True) -> CompressedModel:
    """Learn W (dim × d_model) so that the folded narrow model matches `model`.

    **Recipe.** `recipe="auto"` (the default) measures the *read rank* (the rank of
    the original residuals' image in the directions anything reads, on the PCA
    start's inputs) and picks:
    - "pca" when dim ≥ the read rank: `init="pca"`, residual_weight 1, learning
      rate 3e-3, up to 2,000 steps, 1 start, 256 validation inputs. The PCA start
      is exact at step 0 there, so usually no step runs.
    - "superposed" below it: `init="random"`, init_scale 0.3, residual_weight 0,
      margin_weight 100, learning rate 1e-2, 1,000 validation inputs, and up to
      3 starts of up to 20,000 steps each (a budget of 60,000 steps), each start
      run only if the ones before ended inexact on validation.
    `recipe="pca"` or `"superposed"` forces one. Every setting given explicitly
    (not None) overrides the recipe's. `training["recipe"]` and
    `training["read_rank"]` record the choice.

    Loss per batch: output loss (cross-entropy on categorical outputs, with None
    as one more class; squared error on numerical ones) + `residual_weight` ×
    the mean over residuals (after the embeddings and every sublayer) of the
    reconstruction error e = z·W − x (z narrow, x the original's), measured as
    e·M·eᵀ: M = I for `residual_metric="euclidean"`, and by default ("reads")
    the readers' metric ΣR·Rᵀ of `interp.compress_train.residual_metric`.
    Adam on W only (gradient clipping, cosine-decayed learning rate). W starts
    (`init="pca"`) from the top principal directions of the original residuals
    as the readers see them, exact at once whenever dim ≥ the read rank, or
    (`init="random"`) from random orthonormal rows drawn from `seed`,
    times `init_scale`: below 1 it softens hard attention's saturated softmax
    at the start, so gradients reach W_Q/W_K. With `feature_scales` (default),
    W = V·diag(exp(s)) and both V and the log scale s of each original direction
    are trained: exact narrow models need feature norms orders of magnitude
    apart, which Adam reaches in log scale within hundreds of steps.
    `margin_weight` adds that weight × (|error| − numeric_tolerance/2)₊² to the
    squared error of numerical outputs, to push the last few positions under
    the tolerance. `restarts` > 1 retries an inexact start from the seed
    `seed + 7919·r` and keeps the best by validation.
    Inputs come from `sampler(rng)` (default: the `example`'s sampler, else
    uniform). Training stops early once all `validation_size` validation inputs
    agree with the evaluator (numbers within `numeric_tolerance`); the W with
    the best validation score is kept. Deterministic for a seed.
    """
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if dim > model.config.d_model:
        raise ValueError(f"dim {dim} is wider than the model (d_model "
                         f"{model.config.d_model}); compress to at most {model.config.d_model}")
    if recipe not in ("auto", *RECIPES):
        raise ValueError(f"recipe must be 'auto', 'pca' or 'superposed', got {recipe!r}")
    sampler = sampler or sampler_for(model, example)
    chosen, rank = choose_recipe(model, dim, sampler, seed)
    chosen = chosen if recipe == "auto" else recipe
    given = {"steps": steps, "learning_rate": learning_rate, "residual_weight": residual_weight,
             "init": init, "init_scale": init_scale, "margin_weight": margin_weight,
             "restarts": restarts, "validation_size": validation_size}
    picked = {**RECIPES[chosen], **{k: v for k, v in given.items() if v is not None}}
    if picked["init"] not in ("random", "pca"):
        raise ValueError(f"init must be 'random' or 'pca', got {picked['init']!r}")
    if (not picked["init_scale"] > 0 or picked["margin_weight"] < 0
            or not isinstance(picked["restarts"], int) or picked["restarts"] < 1):
        raise ValueError("init_scale must be > 0, margin_weight ≥ 0 and restarts a positive "
                         f"integer; got {picked['init_scale']!r}, {picked['margin_weight']!r}, "
                         f"{picked['restarts']!r}")
    settings = TrainingSettings(dim=dim, batch_size=batch_size, seed=seed,
                                residual_metric=residual_metric, feature_scales=feature_scales,
                                eval_every=eval_every, numeric_tolerance=numeric_tolerance,
                                progress=progress, **picked)
    rng = random.Random(seed + VALIDATION_SEED_OFFSET)
    inputs, expected = reference_outputs(model, [sampler(rng)
                                                 for _ in range(settings.validation_size)])
    validator = Validator(model, dim, inputs, expected, numeric_tolerance)
    result = train_projection(model, settings, sampler, validator)
    summary = {"recipe": chosen, "read_rank": rank,
               "settings": {k: v for k, v in dataclasses.asdict(settings).items()
                            if k != "progress"},
               "steps_run": len(result.losses), "starts": result.starts,
               "kept_start": result.kept_start,
               "steps_all_starts": result.steps_all_starts,
               "stopped_early": result.stopped_early,
               "first_loss": result.losses[0] if result.losses else None,
               "final_loss": result.losses[-1] if result.losses else None,
               "validation": [list(v) for v in result.validation]}
    return CompressedModel(model, result.projection, summary)


# ---------------------------------------------------------------- evaluation
def exact_match(compressed: CompiledModel, inputs: Sequence[Sequence[Any]],
                tolerance: float = 1e-2) -> float:
    """The share of inputs (without BOS) on which the model agrees with the evaluator
    (or, for a model without its program, with the original model) at every position."""
    reference = getattr(compressed, "original", compressed)
    kept, expected = reference_outputs(reference, inputs)
    if not kept:
        return 1.0
    decoded = compressed.apply_batch([[compressed.config.bos, *xs] for xs in kept])
    return sum(outputs_match(e, d[1:], tolerance) for e, d in zip(expected, decoded)) / len(kept)


def layer_cosines(compressed: CompressedModel, inputs: Sequence[Sequence[Any]]) -> list[float]:
    """Per residual (embeddings, then after each sublayer): the mean cosine similarity,
    over token positions, of the reconstructed residual z·W with the original's."""
    from rasp_runtime.interventions import run_batch
    batch = [[compressed.config.bos, *xs] for xs in inputs]
    narrow = run_batch(compressed, batch)["residuals"]
    original = run_batch(compressed.original, batch)["residuals"]
    positions = np.zeros(narrow[0].shape[:2], bool)
    for row, xs in enumerate(inputs):
        positions[row, 1:len(xs) + 1] = True
    cosines = []
    for z, x in zip(narrow, original):
        recon, x = (z @ compressed.projection)[positions], x[positions]
        norms = np.linalg.norm(recon, axis=-1) * np.linalg.norm(x, axis=-1)
        cosines.append(float(np.mean((recon * x).sum(-1) / np.maximum(norms, 1e-12))))
    return cosines
