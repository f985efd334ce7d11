"""Worst-case float32 error of a knobbed model's reads (rotated and/or perturbed), sound for
any summation order, and what it is compared with.

A rotation makes every read of the residual a dense dot product, and noise moves every
weight, zeros included. `knob_error` bounds each read column's error (q, k, v, MLP input,
unembedding): rounding γ_{n+1}·Σ_k |w_k x_k| over its n non-zero terms
(craft.float_bounds), plus s·(‖x‖₁ + 1) for noise of at most s on each weight and the
bias. |x| comes from the value sets (`named_magnitudes`): at most one active direction per
categorical value, each numerical value's largest |v|. The error equals moving the read's
input by E/‖w‖₂; it is accepted below READ_MARGIN, the compiler's default error budget.
With noise, each head's logits move too, and so its weights by a factor e^{±2δ}: the
change of its output, (e^{2δ} − 1)·max|v|, is held to the same margin.

With LayerNorm (rotate only) every read is of LayerNorm's output: `norm_statistics`
bounds the mean M and scale error ρ that craft.float_bounds.layer_norm_error gives for the
rotated residual, and each read adds ρ·Σ|w_k x_k| + (1+ρ)·(M·|Σ_k w_k| + u·(Σ|w_k x_k| +
M·Σ|w_k|)): R fixes the all-ones vector, so each rotated read column still sums to about
zero (its mean-probe row) and the computed mean cancels inside the read.

This is a per-read (first-order) bound: it does not follow an error through later layers,
and a reader with a tighter budget than the default (a discretiser at large N) is not seen
here; tests/test_realism.py checks every knobbed example against the evaluator as well.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from compiler.budgets import NUMERIC_BUDGET
from craft.float_bounds import UNIT_ROUNDOFF, gamma, layer_norm_error

# How far (in norm) a read's input may move for the read to stay exact: the compiler's
# default error budget of a value (compiler.budgets.NUMERIC_BUDGET).
READ_MARGIN = NUMERIC_BUDGET
# Modules whose weights read the residual (their rows are residual coordinates).
READERS = ("attn/query", "attn/key", "attn/value", "mlp/linear_1", "unembed")
# The sizes of reads through LayerNorm are bounded assuming its scale error stays below
# NORM_SLACK and its computed mean below MEAN_SLACK; `norm_statistics` then proves half of
# each (compiled models: about 2⁻²¹, and 1e-5 to 1e-4 after rotating), or the knob is
# refused.
NORM_SLACK = 2.0 ** -17
MEAN_SLACK = 2.0 ** -8


@dataclasses.dataclass(frozen=True)
class ErrorBound:
    """The worst read's error (as an input movement, see `knob_error`) and its margin."""

    read_error: float
    margin: float
    # The part of read_error that LayerNorm of the (rotated) residual adds.
    layer_norm: float = 0.0

    @property
    def ratio(self) -> float:
        """read_error / margin: the knob is accepted when this is below 1."""
        return self.read_error / self.margin

    @property
    def accepted(self) -> bool:
        """Whether the bound proves the knobbed model decodes as the plain one does."""
        return bool(self.read_error < self.margin)


def named_magnitudes(model, truth) -> np.ndarray:
    """[d]: the largest |value| each named residual direction can hold on any input.

    A recorded value's directions hold its value (1 for a one-hot, max |v| over its value
    set for a number, from the program); any other direction (`one`, BOS, scratch) is
    bounded by what the weights of the embeddings and its writers can put there.
    """
    d = model.config.d_model
    basis = truth.direction_vectors()
    params = _as64(model.params)
    normed = model.config.normalization != "none"
    embedded = np.abs(params["token_embed"]["embeddings"] @ basis.T).max(0) + \
        np.abs(params["pos_embed"]["embeddings"] @ basis.T).max(0)
    bound = embedded.copy()
    for layer, config in enumerate(model.config.layers):
        prefix = f"transformer/layer_{layer}"
        if config.num_heads:
            v = _read_magnitude(params[f"{prefix}/attn/value"], basis, bound, normed)
            bound = bound + _write_magnitude(params[f"{prefix}/attn/linear"], basis, v)
        if config.mlp_hidden:
            h = _read_magnitude(params[f"{prefix}/mlp/linear_1"], basis, bound, normed)
            bound = bound + _write_magnitude(params[f"{prefix}/mlp/linear_2"], basis, h)
        bound = np.minimum(bound, _recorded(model, d, bound))
    if normed:  # the balance holds minus the sum of the rest (compiler.layer_norm)
        balance = d - 2
        others = bound.copy()
        others[balance] = 0.0
        total, rounding = _residual_writes(model, params, basis, bound)
        bound[balance] = min(bound[balance],
                             float(_active_sum(others[:, None], others, *_groups(model, d))[0])
                             + total + rounding)
    return bound


def _recorded(model, d: int, fallback: np.ndarray) -> np.ndarray:
    """Per direction: the largest |value| its record allows (fallback where none)."""
    out = fallback.copy()
    largest = _numerical_largest(model)
    for record in model.value_records.values():
        for i in record.dims:
            out[i] = largest.get(record.label, fallback[i]) if record.numerical else 1.0
    return out


def _numerical_largest(model) -> dict[str, float]:
    """Label -> max |v| of each numerical SOp's value set (empty without the program)."""
    if model.program is None:
        return {}
    from compiler.graph import extract_graph
    from compiler.values import infer_value_sets
    graph = extract_graph(model.program)
    sets = infer_value_sets(graph, model.config.vocab, model.config.max_seq_len)
    out = {}
    for node, value_set in sets.items():
        numbers = [abs(float(v)) for v in value_set.values
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        out[graph.label(node)] = max(numbers, default=1.0)
    return out


def _read_magnitude(module, basis, named_bound, normed: bool = False) -> np.ndarray:
    """[columns]: the largest |x W + b| when each named direction i is at most named_bound[i];
    normed: x through LayerNorm, whose scale error and mean stay below the slacks."""
    named_w = np.abs(basis @ module["w"])
    read = named_w.T @ named_bound
    if normed:
        read = read * (1 + NORM_SLACK) + MEAN_SLACK * np.abs(module["w"]).sum(0)
    return read + np.abs(module.get("b", 0.0))


def _residual_writes(model, params, basis, named_bound, scale: float = 0.0
                     ) -> tuple[float, float]:
    """(S, δ): |Σ_k x_k| ≤ S for what the writers (embeddings, W_O, the MLP's second
    matrix, their biases) put in the residual, in exact arithmetic, and δ bounds the L1
    norm of their float32 rounding (any order) and of noise of at most `scale` on each of
    their weights: each row's sum is taken exactly (math.fsum) from the float32 weights,
    times the largest input that row sees."""
    normed = model.config.normalization != "none"
    d = model.config.d_model
    noise = d * scale  # per row: the most noise adds to its sum, and to its L1 norm
    total, rounding = 0.0, 0.0
    for name in ("token_embed", "pos_embed"):
        rows = np.asarray(params[name]["embeddings"], np.float64)
        total += max(abs(math.fsum(row)) for row in rows) + noise
        rounding += noise
    for layer, config in enumerate(model.config.layers):
        prefix = f"transformer/layer_{layer}"
        for reader, writer, present in (("attn/value", "attn/linear", config.num_heads),
                                        ("mlp/linear_1", "mlp/linear_2", config.mlp_hidden)):
            if not present:
                continue
            read = {k: np.asarray(a, np.float64) for k, a in params[f"{prefix}/{reader}"].items()}
            inputs = _read_magnitude(read, basis, named_bound, normed)  # ReLU: |relu(h)| ≤ |h|
            w = np.asarray(params[f"{prefix}/{writer}"]["w"], np.float64)
            b = np.asarray(params[f"{prefix}/{writer}"].get("b", np.zeros(w.shape[1])),
                           np.float64)
            sums = np.array([abs(math.fsum(row)) for row in w])
            total += float(inputs @ sums) + abs(math.fsum(b)) + noise * (float(inputs.sum()) + 1)
            rounding += float(gamma(w.shape[0] + 2) * np.sum(inputs @ (np.abs(w) + scale)
                                                             + np.abs(b) + scale)) \
                + noise * (float(inputs.sum()) + 1)
    return total, rounding


def norm_statistics(model, params, truth, magnitudes, scale: float = 0.0
                    ) -> tuple[float, float, float]:
    """(M, ρ, δ) for a LayerNorm model in the basis of `truth`, its weights noised by at
    most `scale`: craft.float_bounds.layer_norm_error's computed-mean bound M and scale
    error ρ for every LayerNorm, and δ, the L1 bound on how far the float residual is from
    the exact one (writers' rounding and noise, `_residual_writes`, and each residual
    addition's u). Σ|x_k| ≤ min(√d‖x‖₂, Σ_k bound_k) + δ, Σx_k² ≤ (‖x‖₂ + δ)²,
    |Σx_k| ≤ S + δ."""
    d = model.config.d_model
    norm = residual_norm(model, magnitudes)
    total, rounding = _residual_writes(model, params, truth.direction_vectors(), magnitudes,
                                       scale)
    additions = 2 * len(model.config.layers) + 1
    spread = min(math.sqrt(d) * norm, float(np.sum(coordinate_bounds(model, truth,
                                                                     magnitudes))))
    magnitude = (spread + rounding) / (1 - additions * UNIT_ROUNDOFF)
    drift = rounding + additions * UNIT_ROUNDOFF * magnitude
    mean, norm_scale = layer_norm_error(d, magnitude, total + drift, (norm + drift) ** 2,
                                        model.config.layer_norm_eps)
    return mean, norm_scale, drift


def _write_magnitude(module, basis, inputs) -> np.ndarray:
    """[d] named: the largest |h W + b| written, for |h_j| ≤ inputs[j]."""
    named_w = module["w"] @ basis.T
    return np.abs(named_w).T @ inputs + np.abs(module.get("b", 0.0) @ basis.T)


def _as64(params) -> dict[str, dict[str, np.ndarray]]:
    return {m: {n: np.asarray(a, np.float64) for n, a in w.items()} for m, w in params.items()}


def _groups(model, d: int) -> tuple[list[list[int]], list[int]]:
    """(each recorded value's directions, the directions in no record)."""
    recorded = [list(r.dims) for r in model.value_records.values() if r.dims]
    in_records = {i for dims in recorded for i in dims}
    return recorded, [i for i in range(d) if i not in in_records]


def residual_norm(model, magnitudes: np.ndarray) -> float:
    """A bound on ‖x‖₂ of the residual at any position, in any orthonormal basis: each
    categorical value has one active direction, so a record adds its largest |value|²
    once; every other direction adds its own bound squared."""
    recorded, others = _groups(model, len(magnitudes))
    squares = sum(float(np.max(magnitudes[dims])) ** 2 for dims in recorded)
    return math.sqrt(squares + float(np.sum(magnitudes[others] ** 2)))


def _active_sum(rows: np.ndarray, magnitudes, recorded, others) -> np.ndarray:
    """[columns]: Σ_i rows[i]·|x_i| at worst, with one active direction per recorded value."""
    total = magnitudes[others] @ rows[others]
    for dims in recorded:
        total = total + float(np.max(magnitudes[dims])) * np.max(rows[dims], axis=0)
    return total


def _reached_norms(through: np.ndarray, magnitudes, recorded, others) -> np.ndarray:
    """[columns]: `residual_norm` over only the named directions that share a coordinate
    with the column (through[i, c] > 0): the others add nothing to its Σ_k |w_k x_k|
    (a LayerNorm model's balance, which stays on its axis and is read by no one)."""
    reached = through > 0
    squares = magnitudes[others] ** 2 @ reached[others]
    for dims in recorded:
        squares = squares + float(np.max(magnitudes[dims])) ** 2 * reached[dims].any(axis=0)
    return np.sqrt(squares)


def coordinate_bounds(model, truth, magnitudes: np.ndarray) -> np.ndarray:
    """[d]: the largest |x_k| of each residual coordinate after a rotation: a value with
    one active direction reaches coordinate k by at most |value|·max over its directions
    of |B_ik|; every other direction by its own bound·|B_ik|."""
    basis = np.abs(truth.direction_vectors())
    recorded, others = _groups(model, len(magnitudes))
    reach = magnitudes[others] @ basis[others]
    for dims in recorded:
        reach = reach + float(np.max(magnitudes[dims])) * np.max(basis[dims], axis=0)
    return reach


def knob_error(model, params, truth, scale: float, magnitudes: np.ndarray) -> ErrorBound:
    """The worst read's extra error from rounding and noise, as an input movement.

    For every read column w of the residual x (q, k, v, MLP input, unembedding), with
    noise of at most s on each weight and the bias:
      - rounding: γ_{n+1}·Σ_k |w_k x_k| over its n non-zero weights (all d with noise);
        in named coordinates Σ_k |w_k x_k| ≤ Σ over values of max_k |w_k|·|value| (one
        active direction per categorical value); after a rotation B the smallest of
        ‖w‖₂‖x‖₂ (Cauchy–Schwarz, the same in every basis), Σ_k |w_k|·`coordinate_bounds`,
        and the named sum with |B||w| in place of |w| (x = Σ_i x_i b_i);
      - noise: s·(‖x‖₁ + 1), with ‖x‖₁ ≤ Σ |value| named, ≤ min(√d‖x‖₂, Σ_k bound_k)
        rotated; and, through each head's logits, `_pattern_error` (noise on W_Q and W_K
        is multiplied by the other side's size, up to the softmax hardness; with
        LayerNorm, noise on its offsets and gains moves every q and k entry too, by
        s·Σ|w| + (s/√eps)·Σ|w_k y_k| for the column w that computes it).
    That error E equals moving x by E/‖w‖₂ along w; the worst over all reads is
    compared with READ_MARGIN.
    """
    d = model.config.d_model
    norm = residual_norm(model, magnitudes)
    recorded, others = _groups(model, d)
    rotated = truth.residual_basis is not None
    if rotated:
        reach = coordinate_bounds(model, truth, magnitudes)
        one_norm = min(math.sqrt(d) * norm, float(np.sum(reach)))
    else:
        one_norm = sum(float(np.max(magnitudes[dims])) for dims in recorded) + \
            float(np.sum(magnitudes[others]))
    normed = model.config.normalization != "none"
    if normed:
        mean, norm_scale, drift = norm_statistics(model, params, truth, magnitudes, scale)
        if mean > MEAN_SLACK / 2 or norm_scale > NORM_SLACK / 2:
            return ErrorBound(math.inf, READ_MARGIN, math.inf)
        # noise on the gains (√eps each) scales each coordinate by 1 ± scale/√eps
        norm_scale = (1 + norm_scale) * (1 + scale / math.sqrt(model.config.layer_norm_eps)) - 1
    worst, worst_norm = 0.0, 0.0
    qk_move = 0.0  # how far LayerNorm's own noise moves any q or k entry
    for module, weights in params.items():
        if not module.endswith(READERS):
            continue
        signed = np.asarray(weights["w"], np.float64)
        w = np.abs(signed)
        column_norms = np.linalg.norm(w, axis=0)
        live = column_norms > 0
        if not np.any(live):
            continue
        counts = np.full(w.shape[1], d) if scale > 0 else np.count_nonzero(w, axis=0)
        if rotated:  # the smallest of three sound bounds on Σ_k |w_k x_k|
            through = np.abs(truth.direction_vectors()) @ (w + scale)  # per named direction
            # (plain models keep the global norm, so their rotations stay as they were)
            norms = _reached_norms(through, magnitudes, recorded, others) if normed else norm
            terms = np.minimum.reduce([(column_norms + scale * math.sqrt(d)) * norms,
                                       reach @ (w + scale), _active_sum(through, magnitudes,
                                                                        recorded, others)])
        else:
            terms = _active_sum(w + scale, magnitudes, recorded, others)
        through_norm = 0.0
        if normed:  # the read of LayerNorm(x̂): scale error, computed mean, x̂'s drift
            terms = terms + (w.max(0) + scale) * drift
            absolute = w.sum(0) + d * scale
            column_sums = np.array([abs(math.fsum(c)) for c in signed.T]) + \
                2.0 ** -52 * absolute + d * scale  # noise moves a column's sum by d·scale
            u = UNIT_ROUNDOFF
            through_norm = norm_scale * terms + (1 + norm_scale) * (
                mean * column_sums + u * (terms + mean * absolute)) \
                + scale * (1 + u) * absolute  # noise on the offsets (zero as compiled)
            terms = (1 + norm_scale) * (1 + u) * (terms + mean * absolute) + scale * absolute
            if module.endswith(("/query", "/key")):  # noise on the offsets (s each) and on
                # the gains (relative s/√eps) moves q_c by s·Σ|w| + (s/√eps)·Σ|w_k y_k|
                gain = scale / math.sqrt(model.config.layer_norm_eps)
                qk_move = max(qk_move, float(np.max(scale * absolute + gain * terms)))
        error = gamma(counts + 1) * terms + scale * (one_norm + 1) + through_norm
        ratios = error[live] / column_norms[live]
        at = int(np.argmax(ratios))
        if ratios[at] > worst:
            worst = float(ratios[at])
            worst_norm = float(np.broadcast_to(through_norm, error.shape)[live][at]
                               / column_norms[live][at])
    if scale > 0:
        worst = max(worst, _pattern_error(model, params, truth,
                                          scale * (one_norm + 1) + qk_move,
                                          magnitudes, recorded, others))
    return ErrorBound(worst, READ_MARGIN, worst_norm)


def _pattern_error(model, params, truth, noise: float, magnitudes, recorded, others) -> float:
    """The largest change noise makes to a head's output, max over heads of
    (e^{2δ} − 1)·max|v|: noise moves every q and k entry by at most `noise`, so every
    logit by δ ≤ Σ_c (|q_c| + |k_c| + noise)·noise / √key_size, and every attention
    weight by a factor within [e^{−2δ}, e^{2δ}]. |q|, |k|, |v| come from the named weights
    with one active direction per value."""
    basis = np.abs(truth.direction_vectors())
    worst = 0.0
    for layer, config in enumerate(model.config.layers):
        if not config.num_heads:
            continue
        prefix = f"transformer/layer_{layer}/attn"
        size = {}
        for name in ("query", "key", "value"):
            w = np.abs(basis @ np.asarray(params[f"{prefix}/{name}"]["w"], np.float64))
            size[name] = _active_sum(w, magnitudes, recorded, others) + \
                np.abs(np.asarray(params[f"{prefix}/{name}"]["b"], np.float64)) + noise
        for head in range(config.num_heads):
            keys = slice(head * config.key_size, (head + 1) * config.key_size)
            values = slice(head * config.value_size, (head + 1) * config.value_size)
            delta = float(np.sum(size["query"][keys] + size["key"][keys] + noise)) * noise \
                / math.sqrt(config.key_size)
            largest = float(np.max(size["value"][values], initial=0.0))
            worst = max(worst, math.expm1(min(2 * delta, 700.0)) * largest)
    return worst
