"""Hook-by-hook comparison of a TransformerLens bridge with the compiled haiku model.

`compare(model, bridge, batch)` runs both on the same inputs and asserts the
acceptance tolerances: decoded outputs equal; residuals, per-head results, attention
and MLP outputs within 1e-5 of the largest entry; attention patterns within 1e-6 of
the softmax of our logits (plus softmax's sensitivity to the logits' float32
rounding). Only real (non-PAD) positions are compared. A LayerNorm model's
`ln1`/`ln2`/`ln_final` hook_scale and hook_normalized are checked against a numpy
LayerNorm of our residuals, within RELATIVE too.
"""

from __future__ import annotations

import random

import numpy as np
import torch

import rasp
from interp.transformer_lens import decode_logits, to_tokens
from rasp_runtime.interventions import run_batch
from rasp_runtime.verify import outputs_agree

# The models are tiny: one thread is fastest, and on a shared, overloaded machine
# torch's spinning worker threads can slow a test by orders of magnitude.
torch.set_num_threads(1)

RELATIVE = 1e-5
PATTERN = 1e-6
# Free-running, torch's and XLA's float32 rounding differ and compound through
# near-tied attention logits (worst measured on the library: 2.7e-5 of the largest
# entry); the hook-by-hook checks run teacher-forced at RELATIVE instead.
FREE_RUNNING = 1e-4


def sample_batch(model, example, n: int, count: int = 200, seed: int = 0):
    """`count` valid inputs (BOS first) of lengths 1..n drawn with the example's sampler."""
    rng = random.Random(seed)
    return [[model.config.bos, *example.sample(rng, n)] for _ in range(count)]


def _close(ours: np.ndarray, theirs: np.ndarray, where: np.ndarray, what: str,
           relative: float = RELATIVE):
    where = np.broadcast_to(where.reshape(where.shape + (1,) * (ours.ndim - where.ndim)),
                            ours.shape)
    scale = float(np.abs(ours[where]).max(initial=0.0))
    error = float(np.abs(ours - theirs)[where].max(initial=0.0))
    assert error <= relative * scale or error == 0.0, \
        f"{what}: max error {error:.3g} vs largest entry {scale:.3g}"


def _gamma(n: int) -> float:
    """The float32 bound on the relative error of an n-term dot product: n·u / (1 − n·u)."""
    u = 2.0 ** -24
    return n * u / (1 - n * u)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(shifted.astype(np.float64))
    return weights / weights.sum(axis=-1, keepdims=True)


def _layer_norm(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale [.., 1], normalised before the gain) of a numpy LayerNorm with the model's
    eps, in float64 (an independent reference for ours and the bridge's)."""
    x = x.astype(np.float64)
    centred = x - x.mean(-1, keepdims=True)
    scale = np.sqrt((centred ** 2).mean(-1, keepdims=True) + model.config.layer_norm_eps)
    return scale, centred / scale


def _our_head_results(model, layer: int, x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """[batch, seq, heads, d_model]: each head's output, from our parameters and logits
    (and, in a LayerNorm model, ln_1 of the residual `x`)."""
    config = model.config.layers[layer]
    prefix = f"transformer/layer_{layer}/attn"
    if model.config.normalization == "layernorm":
        norm = model.params[f"transformer/layer_{layer}/ln_1"]
        x = (_layer_norm(model, x)[1] * norm["scale"] + norm["offset"]).astype(np.float32)
    value = model.params[f"{prefix}/value"]
    out = model.params[f"{prefix}/linear"]["w"]
    v = x @ np.asarray(value["w"]) + np.asarray(value["b"])
    weights = _softmax(logits).astype(np.float32)
    size = config.value_size
    heads = []
    for h in range(config.num_heads):
        z = np.einsum("bqs,bsv->bqv", weights[:, h], v[..., h * size:(h + 1) * size])
        heads.append(z @ np.asarray(out)[h * size:(h + 1) * size])
    return np.stack(heads, axis=2)


def compare(model, bridge, batch) -> dict:
    """Assert the bridge matches the model on `batch`; returns the teacher-forced cache.

    Free-running, decoded outputs must be equal (and agree with the evaluator) and
    residuals agree within FREE_RUNNING. Then every hook is checked with each block
    reading our residual (`hook_resid_pre`, and `hook_resid_mid` for the MLP), so a
    sublayer's error is its own, not float noise compounded from earlier layers.
    """
    ids, mask = to_tokens(model, batch)
    seq = ids.shape[1]
    lengths = [len(tokens) for tokens in batch]
    real = np.arange(seq)[None, :] < np.array(lengths)[:, None]
    run = run_batch(model, batch)
    residuals = [r[:, :seq] for r in run["residuals"]]
    outputs = [r[:, :seq] for r in run["layer_outputs"]]
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(ids, attention_mask=mask)
    _check_decoded(model, batch, decode_logits(model, logits, lengths))
    for i, hook in enumerate(_residual_hooks(bridge, model)):
        _close(residuals[i], cache[hook].numpy(), real, f"free-running {hook}", FREE_RUNNING)

    forced = [(f"blocks.{layer}.hook_resid_pre", residuals[2 * layer])
              for layer in range(len(model.config.layers))]
    if not bridge.cfg.attn_only:
        forced += [(f"blocks.{layer}.hook_resid_mid", residuals[2 * layer + 1])
                   for layer in range(len(model.config.layers))]
    hooks = [(name, lambda x, hook, ours=torch.from_numpy(np.array(r)): ours)
             for name, r in forced]
    with torch.no_grad(), bridge.hooks(fwd_hooks=hooks):
        _, cache = bridge.run_with_cache(ids, attention_mask=mask)
    for i, hook in enumerate(_residual_hooks(bridge, model)):
        _close(residuals[i], cache[hook].numpy(), real, hook)
    if model.config.normalization == "layernorm":
        _check_layer_norms(model, bridge, cache, residuals, real)
    for layer, shape in enumerate(model.config.layers):
        block = f"blocks.{layer}"
        _close(outputs[2 * layer], cache[f"{block}.hook_attn_out"].numpy(), real,
               f"{block}.hook_attn_out")
        if not bridge.cfg.attn_only:
            _close(outputs[2 * layer + 1], cache[f"{block}.hook_mlp_out"].numpy(), real,
                   f"{block}.hook_mlp_out")
        result = cache[f"{block}.attn.hook_result"].numpy()
        heads = shape.num_heads
        assert not result[:, :, heads:].any(), f"{block}: a padding head writes"
        if heads:
            ours = run["attn_logits"][layer][:, :, :seq, :seq]
            mine = _our_head_results(model, layer, residuals[2 * layer], ours)
            for h in range(heads):
                _close(mine[:, :, h], result[:, :, h], real, f"{block}.attn.hook_result[{h}]")
            _check_pattern(bridge, cache, block, ours, real, heads)
    return cache


def _check_layer_norms(model, bridge, cache, residuals, real):
    """Each LayerNorm's hook_scale and hook_normalized against a numpy LayerNorm of the
    residual it reads (teacher-forced, so ours)."""
    norms = [("ln_final", residuals[-1])]
    for layer in range(len(model.config.layers)):
        norms.append((f"blocks.{layer}.ln1", residuals[2 * layer]))
        if not bridge.cfg.attn_only:
            norms.append((f"blocks.{layer}.ln2", residuals[2 * layer + 1]))
    for name, x in norms:
        scale, normalized = _layer_norm(model, np.asarray(x))
        _close(scale, cache[f"{name}.hook_scale"].numpy(), real, f"{name}.hook_scale")
        _close(normalized, cache[f"{name}.hook_normalized"].numpy(), real,
               f"{name}.hook_normalized")


def _check_decoded(model, batch, theirs):
    ours = model.apply_batch(batch)
    if model.output_encoder.numerical:
        values = np.array([v for row in ours for v in row[1:]], float)
        got = np.array([v for row in theirs for v in row[1:]], float)
        scale = max(float(np.abs(values).max(initial=0.0)), 1.0)
        assert np.abs(values - got).max(initial=0.0) <= RELATIVE * scale
    else:
        assert theirs == ours
    if model.program is not None:  # the evaluator is the reference both must meet
        for tokens, row in zip(batch, theirs):
            expected = rasp.evaluate(model.program, tokens[1:], causal=model.config.causal)
            assert outputs_agree(expected, row[1:]), f"{tokens}: evaluator {expected}, bridge {row}"


def _residual_hooks(bridge, model) -> list[str]:
    """The bridge hooks holding our residuals[0], [1], [2], ... (after each sublayer)."""
    names = ["blocks.0.hook_resid_pre"]
    for layer in range(len(model.config.layers)):
        block = f"blocks.{layer}"
        mid = f"{block}.hook_resid_post" if bridge.cfg.attn_only else f"{block}.hook_resid_mid"
        names += [mid, f"{block}.hook_resid_post"]
    return names


def _check_pattern(bridge, cache, block, ours, real, heads):
    """Logits within RELATIVE of ours; the pattern within PATTERN of softmax(our logits).

    The pattern bound adds softmax's first-order sensitivity to a logit error dz,
    |dp_i| <= 2 p_i max|dz|, where dz is the measured difference of the bridge's
    q·k/scale from ours plus both sides' float32 rounding of that dot product,
    γ_n Σ|q_i k_i| / scale each (n = d_head + 2 roundings). Our logits are scaled
    to about 100 for hardness, so one float32 ulp there (2^-17) moves a tie by 2^-18.
    """
    q = cache[f"{block}.attn.hook_q"].numpy()[:, :, :heads].astype(np.float64)
    k = cache[f"{block}.attn.hook_k"].numpy()[:, :, :heads].astype(np.float64)
    cfg = bridge.cfg  # the native attention's divisor: attn_scale if set, else √d_head
    scale = cfg.attn_scale if cfg.use_attn_scale and cfg.attn_scale > 0 else np.sqrt(cfg.d_head)
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / scale
    rounding = 2 * _gamma(q.shape[-1] + 2) * np.einsum("bqhd,bkhd->bhqk", abs(q), abs(k)) / scale
    visible = (ours > -1e29) & real[:, None, :, None] & real[:, None, None, :]
    _close(ours, scores, visible, f"{block} attention logits")
    dz = np.where(visible, np.abs(scores - ours) + rounding, 0.0).max(axis=-1, keepdims=True)
    expected = _softmax(ours)
    pattern = cache[f"{block}.attn.hook_pattern"].numpy()[:, :heads]
    error = np.abs(pattern - expected) * real[:, None, :, None]
    allowed = PATTERN + 2 * expected * dz
    worst = np.unravel_index(np.argmax(error - allowed), error.shape)
    assert (error <= allowed).all(), \
        f"{block}.attn.hook_pattern: error {error[worst]:.3g} > allowed {allowed[worst]:.3g}"


def ground_truth_hooks(model) -> set[str]:
    """Every hook name the ground truth gives (legacy and bridge spellings), head index dropped."""
    from compiler.hook_names import split_index

    truth = model.ground_truth
    names = {e.hook for e in truth.embeddings}
    for c in truth.components:
        names |= {c.hook, c.tl_bridge_hook, *c.hooks.values(), *c.bridge_hooks.values()}
    for sites in truth.alignment.values():
        names |= {name for s in sites for name in (s.hook, s.tl_bridge_hook)}
    graph = truth.circuit_graph()
    names |= {graph.nodes[node]["hook"] for node in graph}
    names |= set(truth.circuit_graph("hook")) - {"output"}
    return {split_index(name)[0] for name in names}
