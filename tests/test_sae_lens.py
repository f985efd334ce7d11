"""SAELens 6 SAEs trained on a compressed model's cached residuals (in the sae-lens venv,
built once by `make sae-lens-venv`) and scored against the known feature directions."""

from __future__ import annotations

import math
import os
import random
import subprocess

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.compress import CompressedModel
from interp.compress_truth import score_dictionary
from interp.extras import MissingExtraError
from interp.sae import ROOT, narrow_activations, sae_lens_spec, train_sae_lens, \
    train_sae_lens_many


@pytest.fixture(scope="module")
def sae_lens_venv():
    """The venv's python; `make` builds it only when it is missing or its pins changed."""
    subprocess.run(["make", "-s", "sae-lens-venv"], cwd=ROOT, check=True)
    return os.path.join(ROOT, ".venvs", "sae-lens", "bin", "python")


@pytest.fixture(scope="module")
def wide():
    """sort_unique (N = 8) squeezed by a random orthonormal W to 28 of its 36 dims: every
    feature keeps a distinct direction, so a good dictionary can find them all."""
    example = EXAMPLES["sort_unique"]
    model = compile_rasp_to_model(example.build(8), example.vocab, 8)
    q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(model.config.d_model,) * 2))
    compressed = CompressedModel(model, q[:, :28].T.astype(np.float32))
    rng = random.Random(0)
    inputs = [example.sample(rng) for _ in range(200)]
    return compressed, narrow_activations(compressed, inputs, 0)


def test_sae_lens_saes_recover_the_known_features(sae_lens_venv, wide):
    """An L1 SAE twice (same seed: identical weights) and a TopK SAE, in one process.
    The random-dictionary bound is test_compress_score's: E[max cosine] ≤
    sqrt(2 ln k / d) = 0.498 for k = 32 latents in d = 28 dims; trained SAEs must
    clear it by 0.2."""
    compressed, activations = wide
    specs = [sae_lens_spec(32, l1=1e-2, steps=800, seed=0)] * 2 + \
        [sae_lens_spec(32, k=4, steps=800, seed=0)]
    relu, again, topk = train_sae_lens_many(activations, specs, python=sae_lens_venv)
    np.testing.assert_array_equal(relu.directions, again.directions)
    random_bound = math.sqrt(2 * math.log(32) / compressed.dim)
    for sae in (relu, topk):
        assert sae.directions.shape == (32, compressed.dim)
        np.testing.assert_allclose(np.linalg.norm(sae.directions, axis=1), 1.0, atol=1e-5)
        codes = sae.encode(activations)
        assert codes.min() >= 0.0
        residual = activations - (codes @ sae.decoder + sae.decoder_bias)
        centred = activations - activations.mean(0)
        assert (residual ** 2).sum() < 0.5 * (centred ** 2).sum()
        assert score_dictionary(compressed, sae.directions, 0).mean_max_cosine >= \
            random_bound + 0.2
    assert ((topk.encode(activations) > 0).sum(1) <= 4).all()


def test_missing_sae_lens_venv_says_how_to_build_it(wide, tmp_path):
    with pytest.raises(MissingExtraError, match="make sae-lens-venv"):
        train_sae_lens(wide[1], 8, python=str(tmp_path / "no-python"))
