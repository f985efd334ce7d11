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

This is a per-read (first-order) bound: it does not follow an error through later layers,
and a reader with a tighter budget than the default (a discretiser at large N) is not seen
here; tests/test_realism.py checks every knobbed example against the evaluator as well.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from compiler.budgets import NUMERIC_BUDGET
from craft.float_bounds import gamma

# How far (in norm) a read's input may move for the read to stay exact: the compiler's
# default error budget of a value (compiler.budgets.NUMERIC_BUDGET).
READ_MARGIN = NUMERIC_BUDGET
# Modules whose weights read the residual (their rows are residual coordinates).
READERS = ("attn/query", "attn/key", "attn/value", "mlp/linear_1", "unembed")


@dataclasses.dataclass(frozen=True)
class ErrorBound:
    """The worst read's error (as an input movement, see `knob_error`) and its margin."""

    read_error: float
    margin: float

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
    embedded = np.abs(params["token_embed"]["embeddings"] @ basis.T).max(0) + \
        np.abs(params["pos_embed"]["embeddings"] @ basis.T).max(0)
    bound = embedded.copy()
    for layer, config in enumerate(model.config.layers):
        prefix = f"transformer/layer_{layer}"
        if config.num_heads:
            v = _read_magnitude(params[f"{prefix}/attn/value"], basis, bound)
            bound = bound + _write_magnitude(params[f"{prefix}/attn/linear"], basis, v)
        if config.mlp_hidden:
            h = _read_magnitude(params[f"{prefix}/mlp/linear_1"], basis, bound)
            bound = bound + _write_magnitude(params[f"{prefix}/mlp/linear_2"], basis, h)
        bound = np.minimum(bound, _recorded(model, d, bound))
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


def _read_magnitude(module, basis, named_bound) -> np.ndarray:
    """[columns]: the largest |x W + b| when each named direction i is at most named_bound[i]."""
    named_w = basis @ module["w"]
    return np.abs(named_w).T @ named_bound + np.abs(module.get("b", 0.0))


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
        is multiplied by the other side's size, up to the softmax hardness).
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
    worst = 0.0
    for module, weights in params.items():
        if not module.endswith(READERS):
            continue
        w = np.abs(np.asarray(weights["w"], np.float64))
        column_norms = np.linalg.norm(w, axis=0)
        live = column_norms > 0
        if not np.any(live):
            continue
        counts = np.full(w.shape[1], d) if scale > 0 else np.count_nonzero(w, axis=0)
        if rotated:  # the smallest of three sound bounds on Σ_k |w_k x_k|
            through = np.abs(truth.direction_vectors()) @ (w + scale)  # per named direction
            terms = np.minimum.reduce([(column_norms + scale * math.sqrt(d)) * norm,
                                       reach @ (w + scale), _active_sum(through, magnitudes,
                                                                        recorded, others)])
        else:
            terms = _active_sum(w + scale, magnitudes, recorded, others)
        error = gamma(counts + 1) * terms + scale * (one_norm + 1)
        worst = max(worst, float(np.max(error[live] / column_norms[live])))
    if scale > 0:
        worst = max(worst, _pattern_error(model, params, truth, scale * (one_norm + 1),
                                          magnitudes, recorded, others))
    return ErrorBound(worst, READ_MARGIN)


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
