"""Ground truth of a compressed model: where each original feature lives in the narrow stream.

A feature is one original residual direction (its label, e.g. "tokens:a"); its
image in the narrow stream is the column W[:, i]. `score_dictionary` scores any
candidate directions (an SAE's decoder rows, say) against the features known at
a residual, and `expected_random_max_cosine` is the score random directions get.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from compiler.ground_truth import GroundTruth

RECOVERED_COSINE = 0.9  # a feature counts as recovered when some candidate is this close


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: it holds an array
class CompressedGroundTruth(GroundTruth):
    """The original model's ground truth (components keep their ids and labels; their
    reads/writes index the original residual, `residual_labels`) plus the projection.

    narrow_labels: "narrow:0" … of the compressed residual. projection: W, dim × d_model.
    """

    narrow_labels: tuple[str, ...] = ()
    projection: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0)))

    @classmethod
    def from_compressed(cls, compressed) -> CompressedGroundTruth:
        """The ground truth of a `CompressedModel`."""
        truth = cls.viewed_through(GroundTruth.from_model(compressed.original),
                                   compressed.projection)
        return dataclasses.replace(truth, narrow_labels=tuple(compressed.residual_labels))

    @classmethod
    def viewed_through(cls, truth: GroundTruth, projection) -> CompressedGroundTruth:
        """`truth` seen through a map W (dim × d_model) of its model's residual, x ↦ x·Wᵀ,
        with no model folded: what `score_dictionary` needs to score a dictionary learned
        on such vectors (interp.zoo's sae cell: W a random rotation)."""
        projection = np.asarray(projection, np.float64)
        fields = {f.name: getattr(truth, f.name) for f in dataclasses.fields(GroundTruth)}
        # One convention: residual_basis holds each named direction's vector in this
        # model's own (narrow) stream, W·v (v: its vector in the wide one, after any
        # rotation), so `named` reads a narrow residual back as z·W·V and the circuit
        # tools and feature_directions agree.
        images = truth.direction_vectors() @ projection.T
        fields["residual_basis"] = tuple(map(tuple, images.tolist()))
        return cls(**fields, narrow_labels=tuple(f"narrow:{i}" for i in
                                                 range(projection.shape[0])),
                   projection=projection)

    @property
    def feature_directions(self) -> dict[str, np.ndarray]:
        """Original residual label → its image in the narrow stream (a column of W; after
        a rotation knob, W times the direction's vector), as `residual_basis` holds it."""
        images = self.direction_vectors()
        return {label: images[i] for i, label in enumerate(self.residual_labels)}

    @property
    def interference(self) -> np.ndarray:
        """The Gram matrix of the feature images, WᵀW for an unrotated model (d_model ×
        d_model, rows and columns in `residual_labels` order): entry (i, j) is the inner
        product of feature i's and feature j's images."""
        images = self.direction_vectors()
        return images @ images.T

    def features_at(self, layer: int) -> tuple[str, ...]:
        """The features present in residual `layer` (0: after the embeddings, i: after
        sublayer i − 1, as in `apply(...).residuals[layer]`): the directions written
        by the embeddings or by a component of an earlier sublayer."""
        if not 0 <= layer <= 2 * self.n_layers:
            raise ValueError(f"layer must be a residual index 0..{2 * self.n_layers}, "
                             f"got {layer}")
        written = {i for e in self.embeddings for i, _ in e.writes}
        written |= {i for c in self.components if c.sublayer < layer for i, _ in c.writes}
        return tuple(self.residual_labels[i] for i in sorted(written))

    def to_json(self, **dumps_kwargs) -> str:
        """The original ground truth's JSON plus narrow_labels and the projection."""
        data = json.loads(GroundTruth(**{f.name: getattr(self, f.name)
                                         for f in dataclasses.fields(GroundTruth)}).to_json())
        data["narrow_labels"] = list(self.narrow_labels)
        data["projection"] = self.projection.tolist()
        return json.dumps(data, **dumps_kwargs)


@dataclasses.dataclass(frozen=True)
class DictionaryScore:
    """How well candidate directions recover the known features at one residual.

    best: feature label → (index of its best candidate, that candidate's cosine).
    mean_max_cosine: the mean of the best cosines. recovered: the share of
    features whose best cosine is ≥ RECOVERED_COSINE.
    """

    layer: int
    best: dict[str, tuple[int, float]]
    mean_max_cosine: float
    recovered: float


def score_dictionary(compressed, directions, layer: int) -> DictionaryScore:
    """Score candidate narrow-stream directions (k × dim) against the features at `layer`
    of `compressed` (a CompressedModel, or a CompressedGroundTruth).

    Cosines are signed: a candidate pointing against a feature does not recover
    it (SAE latents are non-negative). A feature whose image is zero (W dropped
    it) scores 0.
    """
    truth = compressed if isinstance(compressed, CompressedGroundTruth) \
        else compressed.ground_truth
    dim = truth.projection.shape[0]
    candidates = np.asarray(directions, np.float64)
    if candidates.ndim != 2 or candidates.shape[1] != dim:
        raise ValueError(f"directions must be k × dim = k × {dim}, "
                         f"got shape {candidates.shape}")
    features = truth.features_at(layer)
    images = np.stack([truth.feature_directions[f] for f in features]).astype(np.float64)
    cosines = _unit(images) @ _unit(candidates).T  # features × candidates
    best_index = cosines.argmax(1)
    best = {f: (int(j), float(cosines[i, j])) for i, (f, j) in enumerate(zip(features,
                                                                              best_index))}
    scores = np.array([cos for _, cos in best.values()])
    return DictionaryScore(layer, best, float(scores.mean()),
                           float((scores >= RECOVERED_COSINE).mean()))


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def expected_random_max_cosine(dim: int, candidates: int, grid: int = 20001) -> float:
    """E[max over `candidates` independent uniform unit vectors of their cosine with a
    fixed unit vector] in R^dim: the mean max cosine a random dictionary scores.

    The angle θ to a fixed vector has density ∝ sin^(dim−2) θ on [0, π]; the
    maximum cosine is cos of the smallest of the angles, integrated numerically.
    """
    if dim == 1:  # each candidate is ±the feature
        return 1.0 - 2.0 * 0.5 ** candidates
    theta = np.linspace(0.0, math.pi, grid)
    density = np.sin(theta) ** (dim - 2)
    step = theta[1] - theta[0]
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2) * step])
    cdf /= cdf[-1]
    survival = (1.0 - cdf) ** candidates  # P(every angle > θ)
    # E[cos θ_min] = ∫ cos θ d(1 − survival) = 1 − ∫ sin θ · survival dθ (by parts)
    integrand = np.sin(theta) * survival
    return float(1.0 - np.sum((integrand[1:] + integrand[:-1]) / 2) * step)
