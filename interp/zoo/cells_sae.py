"""The zoo's dictionary cells: a sparse autoencoder on a zoo model's residual stream,
scored against the features its ground truth knows there.

`dictionary_scores(model_dir, method)` loads the model, caches the middle residual
(index L of 0..2L for L layers: after the first half of the sublayers) at every token
position of its dataset.json inputs, trains an SAE with 2 latents per feature there
(`sae`: interp.sae.train_sae; `sae_lens`: SAELens in its own venv) and scores the
decoder rows with interp.compress_truth.score_dictionary: mean max cosine, the share
of features recovered at cosine ≥ 0.9, and what random directions score.

In the compiled layout every feature is a coordinate axis, which makes the task
trivial, so the residual is first turned by a seeded random rotation (the one
interp.realism.rotate uses, over the whole residual); a `rotate` variant, already
rotated, is taken as it is. A rotation costs nothing where compressing each model
below its read rank (the superposed recipe) costs tens of seconds; the features stay
orthogonal, so this scores finding a known non-axis basis, not undoing superposition
(benchmarks/superposition.py scores that, on compressed models).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

DICTIONARY_METHODS = ("sae", "sae_lens")
LATENTS_PER_FEATURE = 2        # as the baseline of benchmarks/superposition_sae.py
SAE_L1, SAE_STEPS = 1e-2, 1000
ROTATION_SEED = 0
MIN_POSITIONS = 256            # inputs sampled beyond the dataset's, to train on this many


def dictionary_scores(directory: Path, method: str) -> dict:
    """The scored row fields of one dictionary cell (see the module docstring)."""
    from interp.compress_truth import CompressedGroundTruth, expected_random_max_cosine, \
        score_dictionary
    from interp.realism import random_rotation
    from interp.sae import narrow_activations, train_sae, train_sae_lens
    from rasp_runtime.model import CompiledModel

    model = CompiledModel.load(directory)
    truth = model.ground_truth
    layer = len(model.config.layers)
    activations = narrow_activations(model, _inputs(directory, model), layer)
    d = model.config.d_model
    rotated = truth.residual_basis is not None
    rotation = np.eye(d) if rotated else random_rotation(d, ROTATION_SEED)
    view = CompressedGroundTruth.viewed_through(truth, rotation)
    features = view.features_at(layer)
    vectors = (activations.astype(np.float64) @ rotation.T).astype(np.float32)
    latents = LATENTS_PER_FEATURE * len(features)
    train = train_sae if method == "sae" else train_sae_lens
    sae = train(vectors, latents, l1=SAE_L1, steps=SAE_STEPS, seed=0)
    score = score_dictionary(view, sae.directions, layer)
    return {"layer": layer, "features": len(features), "latents": latents, "dim": d,
            "positions": len(vectors), "rotated_here": not rotated,
            "mean_max_cosine": score.mean_max_cosine, "recovered": score.recovered,
            "random_mean_max_cosine": expected_random_max_cosine(d, latents)}


def _inputs(directory: Path, model) -> list[list]:
    """The dataset's clean and corrupted inputs, then sampled ones (seeded by the model's
    directory name) until they hold MIN_POSITIONS token positions."""
    from interp.circuits.dataset_file import export_sampler
    from interp.tl_export import DATASET_FILE
    from interp.zoo.build import dataset_inputs

    inputs = dataset_inputs(model, json.loads((directory / DATASET_FILE).read_text()))
    sampler, _ = export_sampler(model)
    rng = random.Random(f"sae:{directory.name}")
    vocab, n = list(model.config.vocab), model.config.max_seq_len
    while sum(map(len, inputs)) < MIN_POSITIONS:
        inputs.append(sampler(rng, vocab, rng.randint(1, n)))
    return inputs
