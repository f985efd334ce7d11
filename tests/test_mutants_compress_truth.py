"""interp/compress_truth.py on a ground truth and a projection made by hand, worked out on paper.

Written to kill the mutants `make mutation` found alive (docs/mutation.md). The truth
is test_mutants_granularity's two-layer one (residual 0 `one`, 1 `tokens:a`,
2 `indices:0`, 3 `x`, 4 `y`, 5 `z`; the embeddings write 0-2, layer 0's heads
write x and z, layer 1's MLP writes y), seen through
    W = [[1, 0, 0, 2, 0, 0],
         [0, 1, 0, 0, 3, 0]]
so the features' images are one (1, 0), tokens:a (0, 1), x (2, 0), y (0, 3), and
indices:0 and z are dropped (0, 0). Every expected number below follows from these lines.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from interp.compress_truth import (CompressedGroundTruth, expected_random_max_cosine,
                                   score_dictionary)
from tests.test_mutants_granularity import LABELS, TRUTH

W = [[1, 0, 0, 2, 0, 0],
     [0, 1, 0, 0, 3, 0]]  # ints on purpose: the view keeps W as float64
IMAGES = {"one": (1, 0), "tokens:a": (0, 1), "indices:0": (0, 0), "x": (2, 0), "y": (0, 3),
          "z": (0, 0)}
SQRT_019 = math.sqrt(0.19)
# Candidate 2 has cosine exactly 0.9 (RECOVERED_COSINE) with (1, 0), and sqrt(0.19) with
# (0, 1); candidate 1 has cosines 0.6 and 0.8; candidate 0 points against (0, 1).
CANDIDATES = np.array([[0.0, -2.0], [0.6, 0.8], [0.9, SQRT_019]])


@pytest.fixture(scope="module")
def view():
    return CompressedGroundTruth.viewed_through(TRUTH, W)


def test_the_view_keeps_the_truth_and_holds_w_as_float64(view):
    assert view.narrow_labels == ("narrow:0", "narrow:1")
    assert view.projection.dtype == np.float64
    np.testing.assert_array_equal(view.projection, W)
    assert (view.residual_labels, view.components, view.embeddings) == \
        (LABELS, TRUTH.components, TRUTH.embeddings)
    # residual_basis: each named direction's vector in the narrow stream, column i of W
    assert view.residual_basis == tuple(IMAGES[label] for label in LABELS)


def test_feature_directions_and_interference_by_hand(view):
    directions = view.feature_directions
    assert list(directions) == list(LABELS)
    for label, image in IMAGES.items():
        np.testing.assert_array_equal(directions[label], image)
    # Wᵀ·W: one·x = 2, tokens:a·y = 3, x·x = 4, y·y = 9; the dropped features give 0
    gram = np.zeros((6, 6))
    gram[0, 0] = gram[1, 1] = 1
    gram[0, 3] = gram[3, 0] = 2
    gram[1, 4] = gram[4, 1] = 3
    gram[3, 3], gram[4, 4] = 4, 9
    np.testing.assert_array_equal(view.interference, gram)


def test_a_rotated_truth_is_seen_through_w_after_its_rotation():
    # the basis swaps `one` and `y`: one's vector is e_4, so its image is W's column 4
    swap = np.eye(6)[[4, 1, 2, 3, 0, 5]]
    rotated = dataclasses.replace(TRUTH, residual_basis=tuple(map(tuple, swap.tolist())))
    view = CompressedGroundTruth.viewed_through(rotated, W)
    np.testing.assert_array_equal(view.feature_directions["one"], (0, 3))
    np.testing.assert_array_equal(view.feature_directions["y"], (1, 0))
    np.testing.assert_array_equal(view.feature_directions["x"], (2, 0))
    gram = view.interference
    assert (gram[0, 0], gram[0, 4], gram[3, 4], gram[1, 0]) == (9, 0, 2, 3)


@pytest.mark.parametrize("layer,present", [
    (0, ["one", "tokens:a", "indices:0"]),          # the embeddings
    (1, ["one", "tokens:a", "indices:0", "x", "z"]),  # after layer 0's heads (sublayer 0)
    (3, ["one", "tokens:a", "indices:0", "x", "z"]),  # the MLP is sublayer 3: not yet
    (4, list(LABELS))])
def test_features_at_each_residual_by_hand(view, layer, present):
    assert view.features_at(layer) == tuple(present)


@pytest.mark.parametrize("layer", [-1, 5])
def test_features_at_refuses_a_residual_outside_0_to_2n(view, layer):
    with pytest.raises(ValueError, match=rf"^layer must be a residual index 0\.\.4, got {layer}$"):
        view.features_at(layer)


@pytest.mark.parametrize("layer,best,mean,recovered", [
    # one and x: candidate 2 at exactly 0.9 (recovered); tokens:a and y: candidate 1 at
    # 0.8; indices:0 and z have no image and score 0 (index 0, the first of equal scores)
    (4, {"one": (2, 0.9), "tokens:a": (1, 0.8), "indices:0": (0, 0.0), "x": (2, 0.9),
         "y": (1, 0.8), "z": (0, 0.0)}, 3.4 / 6, 2 / 6),
    (1, {"one": (2, 0.9), "tokens:a": (1, 0.8), "indices:0": (0, 0.0), "x": (2, 0.9),
         "z": (0, 0.0)}, 2.6 / 5, 2 / 5),
    (0, {"one": (2, 0.9), "tokens:a": (1, 0.8), "indices:0": (0, 0.0)}, 1.7 / 3, 1 / 3)])
def test_score_dictionary_by_hand(view, layer, best, mean, recovered):
    score = score_dictionary(view, CANDIDATES, layer)
    assert score.layer == layer
    assert list(score.best) == list(best)
    for label, (index, cosine) in best.items():
        assert score.best[label][0] == index
        assert score.best[label][1] == pytest.approx(cosine, abs=1e-12)
        assert type(score.best[label][0]) is int and type(score.best[label][1]) is float
    assert score.mean_max_cosine == pytest.approx(mean, abs=1e-12)
    assert score.recovered == pytest.approx(recovered, abs=1e-12)


def test_integer_candidates_are_scored_as_reals(view):
    # candidate 1 is (0.6, 0.8) once unit, candidate 2 is (1, 0): one and x at cosine 1
    score = score_dictionary(view, [[0, -2], [3, 4], [1, 0]], 4)
    assert score.best == {"one": (2, 1.0), "tokens:a": (1, 0.8), "indices:0": (0, 0.0),
                          "x": (2, 1.0), "y": (1, 0.8), "z": (0, 0.0)}
    assert (score.mean_max_cosine, score.recovered) == (pytest.approx(0.6), pytest.approx(1 / 3))


def test_score_dictionary_refuses_candidates_that_are_not_k_by_dim(view):
    for bad in (np.ones(2), np.ones((3, 2, 1)), np.ones((3, 3))):
        with pytest.raises(ValueError, match=r"^directions must be k × dim = k × 2, got shape"):
            score_dictionary(view, bad, 0)


def test_to_json_adds_the_narrow_labels_and_w_to_the_truth(view):
    data = json.loads(view.to_json())
    assert data["narrow_labels"] == ["narrow:0", "narrow:1"]
    assert data["projection"] == W
    assert data["residual_labels"] == list(LABELS)
    assert data["residual_basis"] == [list(IMAGES[label]) for label in LABELS]
    assert "\n" in view.to_json(indent=1) and "\n" not in view.to_json()


@pytest.mark.parametrize("dim,candidates,want", [
    # dim 1: each candidate is ±the feature; the max is -1 only if all are -1
    (1, 1, 0.0), (1, 2, 0.5), (1, 3, 0.75),
    # dim 3: a cosine is uniform on [-1, 1] (Archimedes); the max of k has mean (k-1)/(k+1)
    (3, 1, 0.0), (3, 2, 1 / 3), (3, 4, 3 / 5),
    # dim 2: the angle is uniform on [0, π]; the smaller of two has density 2(π-t)/π²,
    # and ∫ cos t · 2(π-t)/π² dt over [0, π] = 4/π²
    (2, 2, 4 / math.pi ** 2)])
def test_expected_random_max_cosine_in_closed_form(dim, candidates, want):
    assert expected_random_max_cosine(dim, candidates) == pytest.approx(want, abs=1e-7)
