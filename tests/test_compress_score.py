"""Compressed ground truth and score_dictionary on known answers; the baseline SAE;
`raspc compress`."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.compress import CompressedModel
from interp.compress_truth import expected_random_max_cosine, score_dictionary
from interp.sae import narrow_activations, train_sae
from raspc.cli import main


@pytest.fixture(scope="module")
def squeezed():
    example = EXAMPLES["sort_unique"]
    model = compile_rasp_to_model(example.build(8), example.vocab, 8)
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(model.config.d_model, model.config.d_model)))
    return CompressedModel(model, q[:, :12].T.astype(np.float32))


def test_feature_directions_are_the_columns_of_w(squeezed):
    truth = squeezed.ground_truth
    w = squeezed.projection
    labels = squeezed.original.residual_labels
    assert list(truth.feature_directions) == labels
    for i, label in enumerate(labels):
        np.testing.assert_array_equal(truth.feature_directions[label], w[:, i])
    a, b = labels.index("tokens:1"), labels.index("indices:3")
    gram = truth.interference
    assert gram.shape == (len(labels), len(labels))
    assert gram[a, b] == pytest.approx(float(np.dot(w[:, a], w[:, b])), abs=1e-6)
    assert gram[a, a] == pytest.approx(float(np.dot(w[:, a], w[:, a])), abs=1e-6)
    # components keep their ids and labels from the original model
    assert [c.id for c in truth.components] == \
        [c.id for c in squeezed.original.ground_truth.components]
    assert truth.narrow_labels[-1] == "narrow:11"
    assert '"projection"' in truth.to_json()


def test_features_at_a_layer_are_those_already_written(squeezed):
    truth = squeezed.ground_truth
    embedded = {label for e in truth.embeddings for _, label in e.writes}
    assert set(truth.features_at(0)) == embedded
    assert "one" in embedded and not any(x.startswith("sort:") for x in embedded)
    final = truth.features_at(2 * truth.n_layers)
    assert set(final) > embedded and any(x.startswith("sort:") for x in final)
    with pytest.raises(ValueError, match="residual index"):
        truth.features_at(99)


def test_true_directions_score_one(squeezed):
    truth = squeezed.ground_truth
    layer = 2 * truth.n_layers
    features = truth.features_at(layer)
    true = np.stack([truth.feature_directions[f] for f in features])
    score = score_dictionary(squeezed, true, layer)
    assert score.mean_max_cosine == pytest.approx(1.0, abs=1e-6)
    assert score.recovered == 1.0
    assert all(index == i for i, (index, _) in enumerate(score.best.values()))
    # and scaled, negated-and-reordered copies: scale does not matter, sign does
    assert score_dictionary(squeezed, 3.0 * true[::-1], layer).mean_max_cosine == \
        pytest.approx(1.0, abs=1e-6)
    assert score_dictionary(squeezed, -true, layer).recovered < 1.0


def monte_carlo_max_cosine(dim: int, k: int, trials: int, rng) -> float:
    """E[max_j cos(e_1, u_j)] over k uniform unit vectors u_j in R^dim, by sampling."""
    u = rng.normal(size=(trials, k, dim))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return float(u[..., 0].max(-1).mean())


@pytest.mark.parametrize("dim,k", [(3, 1), (5, 4), (12, 30), (40, 10)])
def test_expected_random_max_cosine_matches_sampling(dim, k):
    rng = np.random.default_rng(dim * 100 + k)
    assert expected_random_max_cosine(dim, k) == pytest.approx(
        monte_carlo_max_cosine(dim, k, 40_000, rng), abs=0.01)
    if k == 1:  # one random direction: cosine 0 on average
        assert expected_random_max_cosine(dim, k) == pytest.approx(0.0, abs=1e-6)


def test_random_directions_score_what_chance_predicts(squeezed):
    # random candidates: each feature's best cosine has the distribution of the max of
    # k cosines of uniform unit vectors in R^dim (rotation invariance), whatever W is
    layer, k, dim = 2 * squeezed.ground_truth.n_layers, 30, squeezed.dim
    rng = np.random.default_rng(11)
    scores = [score_dictionary(squeezed, rng.normal(size=(k, dim)), layer).mean_max_cosine
              for _ in range(100)]
    expected = monte_carlo_max_cosine(dim, k, 40_000, np.random.default_rng(12))
    assert np.mean(scores) == pytest.approx(expected, abs=0.02)
    assert expected < 0.75  # far from recovery at dim 12 with 30 candidates


def test_score_dictionary_refuses_wrong_shapes(squeezed):
    with pytest.raises(ValueError, match="k × dim"):
        score_dictionary(squeezed, np.zeros((3, squeezed.dim + 1)), 0)


def test_baseline_sae_trains_and_is_scored(squeezed):
    rng = random.Random(0)
    inputs = [EXAMPLES["sort_unique"].sample(rng) for _ in range(200)]
    activations = narrow_activations(squeezed, inputs, 0)
    assert activations.shape == (sum(map(len, inputs)), squeezed.dim)
    sae = train_sae(activations, latents=32, steps=300, seed=0)
    assert np.mean(sae.losses[-20:]) < 0.5 * np.mean(sae.losses[:20])
    np.testing.assert_allclose(np.linalg.norm(sae.directions, axis=1), 1.0, atol=1e-5)
    assert sae.encode(activations).min() >= 0.0
    again = train_sae(activations, latents=32, steps=300, seed=0)
    np.testing.assert_array_equal(again.directions, sae.directions)


def test_trained_sae_beats_random_directions_by_a_margin(squeezed):
    """A random dictionary of k unit vectors in R^d scores, per feature f, max_j <f, u_j>.
    Each <f, u_j> is one coordinate x of a uniform unit vector, with E[x^2m] =
    (2m−1)!! / (d(d+2)…(d+2m−2)) ≤ (2m−1)!!/d^m, so E[e^(λx)] ≤ Σ (λ²/2d)^m/m! =
    e^(λ²/2d). By Jensen, E[max_j] ≤ (1/λ)·ln(k·e^(λ²/2d)), which is sqrt(2 ln k / d)
    at the best λ: 0.498 for k = 32, d = 28 (the exact value is 0.384, and draws of
    the mean over the 18 features spread by about ±0.03). The trained SAE must clear
    the bound by 0.2: at seed 0 it scores 0.81; random directions score about 0.38.
    """
    original, dim, latents = squeezed.original, 28, 32
    q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(original.config.d_model,) * 2))
    wider = CompressedModel(original, q[:, :dim].T.astype(np.float32))
    rng = random.Random(0)
    inputs = [EXAMPLES["sort_unique"].sample(rng) for _ in range(200)]
    sae = train_sae(narrow_activations(wider, inputs, 0), latents=latents, steps=1000, seed=0)
    random_bound = math.sqrt(2 * math.log(latents) / dim)
    assert score_dictionary(wider, sae.directions, 0).mean_max_cosine >= random_bound + 0.2


def test_raspc_compress_reports_accuracy_and_cosines(capsys, tmp_path):
    out = tmp_path / "fp.npz"
    assert main(["compress", "frac_prevs", "--dim", "14", "--steps", "20", "--inputs", "50",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recipe pca (auto): dim 14 is at or above the read rank 11" in text
    assert "exact match with the evaluator on 50 inputs: 100.0%" in text
    assert "after layer 0 attn" in text and "1.0000" in text
    assert CompressedModel.load(out).dim == 14


def test_raspc_compress_takes_the_below_read_rank_options(capsys, tmp_path):
    out = tmp_path / "fp.npz"
    assert main(["compress", "frac_prevs", "--dim", "3", "--steps", "10", "--inputs", "20",
                 "--init", "random", "--init-scale", "0.3", "--residual-weight", "0",
                 "--margin-weight", "100", "--restarts", "2", "--validation-size", "16",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recipe superposed (auto): dim 3 is below the read rank 11" in text
    assert "trained 10 steps in start " in text and "of 2 run (up to 2; 20 steps in all)" in text
    settings = CompressedModel.load(out).training["settings"]
    assert (settings["init_scale"], settings["residual_weight"], settings["margin_weight"],
            settings["restarts"], settings["validation_size"]) == (0.3, 0.0, 100.0, 2, 16)


def test_raspc_compress_errors_are_one_line(capsys):
    assert main(["compress", "frac_prevs", "--dim", "500"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("raspc: error: --dim 500 is wider") and err.count("\n") == 1


def test_ablation_commutes_with_folding(squeezed):
    # ablating a component of the compressed model = compressing the ablated original
    from compiler import CompiledModel
    from rasp_runtime.interventions import ablated_params, run_batch
    original, batch = squeezed.original, [["BOS", 3, 1, 2], ["BOS", 5, 8]]
    for component in ("L0.M0", "L1.H0"):
        ablated_original = CompiledModel(ablated_params(original, [component]),
                                         original.config, original.residual_labels,
                                         original.components,
                                         list(original.value_records.values()))
        expected = run_batch(CompressedModel(ablated_original, squeezed.projection), batch)
        got = run_batch(squeezed, batch, ablated_params(squeezed, [component]))
        np.testing.assert_allclose(got["output"], expected["output"], atol=1e-5)
        assert not np.allclose(got["output"], run_batch(squeezed, batch)["output"])
