"""Training the projection W of a compressed model (jax + optax), compiled weights frozen.

`train_projection` takes a `CompiledModel`, a width and an input sampler and
gives the trained W (dim × d_model) with its loss and validation history. Each
step folds W into the frozen weights and runs the ordinary forward pass of
width dim, so what is trained is exactly the transformer that is returned.
"""

from __future__ import annotations

import dataclasses
import numbers
import random
from collections.abc import Callable, Sequence
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

import rasp
from interp.compress_fold import READERS, fold, initial_projection, narrow_config
from rasp_runtime.batch import encode_batch as encode_ids
from rasp_runtime.forward import make_forward
from rasp_runtime.model import DECODE_THRESHOLD, CompiledModel

Sampler = Callable[[random.Random], list[Any]]

# Categorical outputs: the compiled unembedding gives 1 on the value's column and
# 0 elsewhere, so logits are scaled before the cross-entropy; at scale 10 an
# exact output already has a loss below 0.01.
LOGIT_SCALE = 10.0
GRADIENT_CLIP = 1.0
PCA_INPUTS = 512
RESTART_STRIDE = 7919  # seeds of restarts: far from the seeds a user sweeps by hand
READ_CUTOFF = 1e-13  # metric eigenvalues below this share of the largest read nothing
# Singular values of the read residuals below this share of the largest are rounding
# (the PCA start drops them and is still exact on validation).
RANK_CUTOFF = 1e-4


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How W is trained (see `interp.compress.compress` for the meaning of each)."""

    dim: int
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 3e-3
    seed: int = 0
    residual_weight: float = 1.0
    residual_metric: str = "reads"
    init: str = "pca"
    feature_scales: bool = True
    init_scale: float = 1.0
    margin_weight: float = 0.0
    restarts: int = 1
    validation_size: int = 256
    eval_every: int = 50
    numeric_tolerance: float = 1e-2
    progress: bool = True


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """The trained projection and how training went.

    losses: the loss at every step run. validation: (step, share of validation
    inputs the compressed model gets exactly right). stopped_early: whether every
    validation input agreed before `steps` ran out. starts: how many starts ran
    (see `restarts`); the others' losses are not kept. kept_start: which of them
    (1-based) gave the projection. steps_all_starts: the steps run by every start
    together.
    """

    projection: np.ndarray
    losses: tuple[float, ...]
    validation: tuple[tuple[int, float], ...]
    stopped_early: bool
    starts: int = 1
    kept_start: int = 1
    steps_all_starts: int = 0


def encode_batch(model: CompiledModel, batch: Sequence[Sequence[Any]]) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """(token ids, valid mask) of inputs without BOS, padded to max_seq_len + 1."""
    ids = encode_ids(model, [[model.config.bos, *xs] for xs in batch])
    return ids, ids != model.input_encoder.encoding_map[model.config.pad]


def make_narrow_apply(model: CompiledModel, dim: int):
    """A jitted (W, ids, valid) -> forward outputs of the folded model of width `dim`."""
    forward = hk.without_apply_rng(hk.transform(make_forward(narrow_config(model.config, dim))))
    frozen = jax.tree_util.tree_map(jnp.asarray, model.params)
    return jax.jit(lambda w, ids, valid: forward.apply(fold(frozen, w), ids, valid))


def residual_metric(model: CompiledModel, kind: str) -> np.ndarray:
    """The d_model × d_model metric M in which residual errors e are measured, e·M·eᵀ.

    "euclidean": M = I, plain reconstruction. "reads": M = Σ R·Rᵀ over every
    residual reader R (W_Q, W_K, W_V, W_in, the unembedding), scaled to trace
    d_model: an error counts as much as the readers see of it, so directions
    nothing reads cost nothing and the sharp W_Q/W_K of hard attention dominate.
    """
    d = model.config.d_model
    if kind == "euclidean":
        return np.eye(d)
    if kind != "reads":
        raise ValueError(f"residual_metric must be 'reads' or 'euclidean', got {kind!r}")
    reads = [np.asarray(weights["w"], np.float64) for module, weights in model.params.items()
             if module.rsplit("/", 1)[-1] in READERS]
    metric = sum((r @ r.T for r in reads), np.zeros((d, d)))
    trace = np.trace(metric)
    return metric * (d / trace) if trace > 0 else np.eye(d)  # float64: see read_basis


def make_loss(model: CompiledModel, dim: int, residual_weight: float,
              metric_kind: str = "reads", margin_weight: float = 0.0,
              numeric_tolerance: float = 1e-2):
    """The training loss (W, ids, valid) -> scalar; see `interp.compress.compress`."""
    narrow = hk.without_apply_rng(hk.transform(make_forward(narrow_config(model.config, dim))))
    frozen = jax.tree_util.tree_map(jnp.asarray, model.params)
    metric = jnp.asarray(residual_metric(model, metric_kind), jnp.float32)
    numerical = model.config.output_numerical

    def loss(w, ids, valid):
        reference = model.forward.apply(frozen, ids, valid)
        out = narrow.apply(fold(frozen, w), ids, valid)
        mask = valid.astype(jnp.float32)
        tokens = mask.at[:, 0].set(0.0)  # the output at BOS is not part of the answer
        if numerical:
            error = out["output"][..., 0] - reference["output"][..., 0]
            # the hinge singles out the few positions near the tolerance that the
            # mean squared error averages away
            beyond = jax.nn.relu(jnp.abs(error) - numeric_tolerance / 2)
            per_position = error ** 2 + margin_weight * beyond ** 2
        else:
            target = reference["output"]
            target_index = jnp.where(target.max(-1) > DECODE_THRESHOLD, target.argmax(-1),
                                     target.shape[-1])  # the last class is None
            logits = jnp.concatenate(
                [out["output"], jnp.full(target.shape[:-1] + (1,), DECODE_THRESHOLD)], -1)
            log_p = jax.nn.log_softmax(LOGIT_SCALE * logits, -1)
            per_position = -jnp.take_along_axis(log_p, target_index[..., None], -1)[..., 0]
        output_loss = (per_position * tokens).sum() / jnp.maximum(tokens.sum(), 1.0)
        errors = [z @ w - x for z, x in zip(out["residuals"], reference["residuals"])]
        squared = [((e @ metric) * e).sum(-1) for e in errors]
        residual_loss = sum((e * mask).sum() for e in squared) / (len(squared) * mask.sum())
        return output_loss + residual_weight * residual_loss

    return loss


class Validator:
    """Exact-match agreement of a projection's folded model with reference outputs."""

    def __init__(self, model: CompiledModel, dim: int, inputs: Sequence[Sequence[Any]],
                 expected: Sequence[Sequence[Any]], tolerance: float):
        self.model, self.expected, self.tolerance = model, list(expected), tolerance
        self.ids, self.valid = encode_batch(model, inputs)
        self.apply = make_narrow_apply(model, dim)

    def accuracy(self, w) -> float:
        """The share of inputs whose every output value agrees."""
        if not self.expected:
            return 1.0
        out = np.asarray(self.apply(w, self.ids, self.valid)["output"])
        decode = self.model.output_encoder.decode
        right = sum(outputs_match(want, [decode(r) for r in row[1:len(want) + 1]],
                                  self.tolerance)
                    for row, want in zip(out, self.expected))
        return right / len(self.expected)


def reference_outputs(model: CompiledModel, inputs: Sequence[Sequence[Any]]
                      ) -> tuple[list[list[Any]], list[list[Any]]]:
    """(inputs the evaluator accepts, its outputs), or the model's own outputs on
    every input when the model has no program (e.g. loaded from a file)."""
    inputs = [list(xs) for xs in inputs]
    if model.program is None:
        return inputs, [d[1:] for d in model.apply_batch([[model.config.bos, *xs]
                                                          for xs in inputs])]
    kept, expected = [], []
    for xs in inputs:
        try:
            expected.append(rasp.evaluate(model.program, xs, causal=model.config.causal))
        except rasp.EvaluationError:
            continue
        kept.append(xs)
    return kept, expected


def outputs_match(expected: Sequence[Any], got: Sequence[Any], tolerance: float) -> bool:
    """Equal sequences: numbers within `tolerance`, None only where None is expected."""
    return len(expected) == len(got) and all(
        _value_matches(want, value, tolerance) for want, value in zip(expected, got))


def _value_matches(want: Any, got: Any, tolerance: float) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(got, float) and isinstance(want, numbers.Real):
        return abs(float(want) - got) <= tolerance
    return want == got


def read_basis(metric: np.ndarray) -> np.ndarray:
    """An orthonormal basis (d_model × r) of the directions the metric reads: its range."""
    values, vectors = np.linalg.eigh(np.asarray(metric, np.float64))  # float64: the
    return vectors[:, values > values.max() * READ_CUTOFF]  # eigenvalues span ~1e9


def read_residuals(model: CompiledModel, inputs: Sequence[Sequence[Any]],
                   metric: np.ndarray) -> np.ndarray:
    """The original residuals (every layer and real position, stacked, float64)
    projected onto what the metric M reads (its range), in d_model coordinates."""
    ids, valid = encode_batch(model, inputs)
    out = model.forward.apply(model.params, ids, valid)
    stacked = np.concatenate([np.asarray(r)[valid] for r in out["residuals"]]).astype(np.float64)
    read = read_basis(metric)
    return stacked @ read @ read.T


def read_rank(model: CompiledModel, inputs: Sequence[Sequence[Any]]) -> int:
    """The rank of the residuals' image in the read directions (readers' metric) on
    `inputs`: the PCA start of that width is exact on them, and no narrower linear W
    keeps every reader's input exact."""
    singular = np.linalg.svd(read_residuals(model, inputs, residual_metric(model, "reads")),
                             compute_uv=False)
    return int((singular > singular[0] * RANK_CUTOFF).sum()) if singular.size else 0


def pca_projection(model: CompiledModel, inputs: Sequence[Sequence[Any]], dim: int,
                   metric: np.ndarray) -> np.ndarray:
    """W whose rows are the top-`dim` principal directions (uncentered, every layer) of
    the original residuals projected onto what the metric M reads (its range).
    Their span is the data's image in the read directions, so W is exact at once
    when dim ≥ that image's rank. (Unweighted within the range: M's eigenvalues
    span many orders of magnitude, and weighting by them would drown the gentle
    readers; the loss weighs them during training.)"""
    _, _, vt = np.linalg.svd(read_residuals(model, inputs, metric), full_matrices=False)
    return vt[:dim].astype(np.float32)  # orthonormal rows


def projection_of(params: dict) -> jax.Array:
    """W from the trained parameters: directions times per-feature scales exp(log_scale).

    Exact compiled models need feature norms that differ by orders of magnitude
    (a hard head's BOS or a value stored as a small multiple of another); Adam moves
    each parameter by about the learning rate per step, so a log scale per original
    direction reaches them in hundreds of steps where plain W would need thousands."""
    if "log_scale" not in params:
        return params["w"]
    return params["w"] * jnp.exp(params["log_scale"])[None, :]


def train_projection(model: CompiledModel, settings: TrainingSettings, sampler: Sampler,
                     validator: Validator) -> TrainingResult:
    """Train W by Adam on fresh sampled batches; stop once validation agrees fully.

    With `restarts` > 1, a start that ends inexact is followed by a new one (its
    seed `seed + RESTART_STRIDE·r`) until one is exact; the best by validation is kept."""
    results = []
    for restart in range(max(settings.restarts, 1)):
        start = dataclasses.replace(settings, seed=settings.seed + RESTART_STRIDE * restart)
        results.append(_train_one_start(model, start, sampler, validator))
        if results[-1].stopped_early:
            break
    best = max(range(len(results)),
               key=lambda i: max(score for _, score in results[i].validation))
    return dataclasses.replace(results[best], starts=len(results), kept_start=best + 1,
                               steps_all_starts=sum(len(r.losses) for r in results))


def _initial_params(model: CompiledModel, s: TrainingSettings, sampler: Sampler,
                    rng: random.Random) -> dict:
    if s.init == "pca":
        inputs = [sampler(rng) for _ in range(PCA_INPUTS)]
        w = jnp.asarray(pca_projection(model, inputs, s.dim,
                                       residual_metric(model, s.residual_metric)))
    else:
        w = initial_projection(jax.random.PRNGKey(s.seed), s.dim, model.config.d_model)
    params = {"w": w * s.init_scale}
    if s.feature_scales:
        params["log_scale"] = jnp.zeros(w.shape[1], jnp.float32)
    return params


def _train_one_start(model: CompiledModel, s: TrainingSettings, sampler: Sampler,
                     validator: Validator) -> TrainingResult:
    import optax
    from tqdm import tqdm

    rng = random.Random(s.seed)
    params = _initial_params(model, s, sampler, rng)
    # Clipping tames the steep directions (large compiled weights); the decaying rate
    # lets W settle to the precision an exact model needs.
    schedule = optax.cosine_decay_schedule(s.learning_rate, max(s.steps, 1), alpha=0.01)
    optimizer = optax.chain(optax.clip_by_global_norm(GRADIENT_CLIP), optax.adam(schedule))
    loss_of = make_loss(model, s.dim, s.residual_weight, s.residual_metric, s.margin_weight,
                        s.numeric_tolerance)
    state = optimizer.init(params)
    value_and_grad = jax.value_and_grad(
        lambda p, ids, valid: loss_of(projection_of(p), ids, valid))

    @jax.jit
    def step(params, state, ids, valid):
        loss, grad = value_and_grad(params, ids, valid)
        updates, state = optimizer.update(grad, state, params)
        params = optax.apply_updates(params, updates)
        return params, projection_of(params), state, loss

    w = projection_of(params)
    best_w, best = w, validator.accuracy(w)
    losses, validation = [], [(0, best)]
    bar = tqdm(total=s.steps, disable=not s.progress, desc=f"compress to {s.dim}", leave=False)
    done = best >= 1.0
    while not done and len(losses) < s.steps:
        ids, valid = encode_batch(model, [sampler(rng) for _ in range(s.batch_size)])
        params, w, state, loss = step(params, state, ids, valid)
        losses.append(float(loss))
        bar.update(1)
        if len(losses) % s.eval_every == 0 or len(losses) == s.steps:
            accuracy = validator.accuracy(w)
            validation.append((len(losses), accuracy))
            if accuracy >= best:
                best_w, best = w, accuracy
            done = accuracy >= 1.0
            bar.set_postfix(loss=f"{losses[-1]:.4g}", exact=f"{accuracy:.3f}")
    bar.close()
    return TrainingResult(np.asarray(best_w, np.float32), tuple(losses), tuple(validation),
                          done)
