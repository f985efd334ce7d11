"""The TransformerLens weight layouts (interp.tl_weights), checked where the bridge tests cannot.

Written to kill the mutants `make mutation` left alive (docs/mutation.md): the
LayerNorm weights of both layouts (which LayerNorm of ours each TransformerLens
LayerNorm takes, by hand from the model's layers) and the configs' fields written
out by hand. That TransformerLens 4 computes our model from them is
tests/test_layer_norm_export.py's (the real consumer, hook by hook).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.tl_weights import bridge_config, legacy_arrays, legacy_config, native_arrays

# What every export declares, whatever the model (TransformerLens's names for our choices).
COMMON = {"act_fn": "relu", "positional_embedding_type": "standard", "use_attn_scale": True,
          "default_prepend_bos": False, "init_weights": False}


@pytest.fixture(scope="module")
def sort_ln():
    """sort with LayerNorm: layer 0 has no heads, layer 2 no MLP, so neither has that
    LayerNorm of ours (TransformerLens's gets the final one)."""
    example = EXAMPLES["sort"]
    return compile_rasp_to_model(example.build(5), example.vocab, 5, layer_norm=True)


def test_each_transformer_lens_layer_norm_takes_ours(sort_ln):
    """Compiled LayerNorms all share one gain and a zero offset; a perturbed model's
    (interp.realism) differ, so each is drawn at random here to tell them apart."""
    model = sort_ln
    rng = np.random.default_rng(1)
    params = {module: ({k: rng.normal(size=v.shape).astype(np.float32) for k, v in w.items()}
                       if "/ln" in module else w) for module, w in model.params.items()}
    ours = {"blocks.0.ln1": "transformer/ln_final",  # no heads in layer 0
            "blocks.0.ln2": "transformer/layer_0/ln_2",
            "blocks.1.ln1": "transformer/layer_1/ln_1",
            "blocks.1.ln2": "transformer/layer_1/ln_2",
            "blocks.2.ln1": "transformer/layer_2/ln_1",
            "blocks.2.ln2": "transformer/ln_final",  # no MLP in layer 2
            "ln_final": "transformer/ln_final"}
    assert params["transformer/ln_final"]["scale"].shape == (model.config.d_model,)
    legacy = legacy_arrays(params, model.config)
    native = native_arrays(params, model.config)
    assert {k for k in legacy if k.rsplit(".", 1)[0] in ours} == \
        {f"{tl}.{x}" for tl in ours for x in "wb"}
    assert {k for k in native if k.rsplit(".", 1)[0] in ours} == \
        {f"{tl}.{x}" for tl in ours for x in ("weight", "bias")}
    for tl, module in ours.items():
        for legacy_name, native_name, ours_name in (("w", "weight", "scale"),
                                                    ("b", "bias", "offset")):
            expected = np.asarray(params[module][ours_name])
            for got in (legacy[f"{tl}.{legacy_name}"], native[f"{tl}.{native_name}"]):
                assert got.dtype == np.float32 and np.array_equal(got, expected), \
                    (tl, legacy_name)


def test_configs_field_by_field():
    """frac_prevs, causal: one layer, one head, key size 7, no MLP, a numerical output."""
    example = EXAMPLES["frac_prevs"]
    model = compile_rasp_to_model(example.build(5), example.vocab, 5, causal=True)
    d_model = model.params["token_embed"]["embeddings"].shape[1]
    label = model.config.output_label
    expected = {**COMMON, "model_name": f"rasp-compiler:{label}", "n_layers": 1,
                "d_model": d_model, "d_head": 7, "n_heads": 1, "n_ctx": 6, "d_vocab": 5,
                "d_vocab_out": 1, "normalization_type": None, "attention_dir": "causal",
                "attn_only": True, "attn_scale": math.sqrt(7)}
    assert bridge_config(model.config) == {
        **expected, "architecture": "TransformerLensNative", "tokenizer_prepends_bos": False}
    # InterpBench's pickle: the HookedTransformerConfig fields, d_mlp None when attention-only
    assert legacy_config(model.config) == {**expected, "d_mlp": None,
                                           "original_architecture": "rasp-compiler"}


def test_layer_norm_configs_carry_its_epsilon(sort_ln):
    model = sort_ln
    eps = model.config.layer_norm_eps
    for config in (bridge_config(model.config), legacy_config(model.config)):
        assert (config["normalization_type"], config["eps"], config["d_mlp"]) == ("LN", eps, 20)
        assert (config["attention_dir"], config["attn_only"]) == ("bidirectional", False)


def _heads_of(params, layer: int, config):
    """Our per-head (W_Q, b_Q, W_K, b_K, W_V, b_V, W_O), sliced from haiku's flat projections."""
    scope, spec = f"transformer/layer_{layer}/attn", config.layers[layer]
    if not spec.num_heads:
        return
    w = {name: np.asarray(params[f"{scope}/{name}"]["w"], np.float64)
         for name in ("query", "key", "value", "linear")}
    b = {name: np.asarray(params[f"{scope}/{name}"]["b"], np.float64)
         for name in ("query", "key", "value")}
    for h in range(spec.num_heads):
        qk, ov = slice(h * spec.key_size, (h + 1) * spec.key_size), \
            slice(h * spec.value_size, (h + 1) * spec.value_size)
        yield (w["query"][:, qk], b["query"][qk], w["key"][:, qk], b["key"][qk],
               w["value"][:, ov], b["value"][ov], w["linear"][ov])


@pytest.mark.parametrize("name", ["reverse", "sort", "shuffle_dyck2"])
def test_each_heads_scores_and_outputs_are_ours(name):
    """On any residual x, TransformerLens's scores (q·k / √d_head, d_head the padded width)
    equal ours (q·k / √key_size), head by head, and so does each head's output (x·W_V + b_V)·W_O;
    padding heads are zero. reverse and sort have layers whose key size is below d_head.
    Compiled biases are zero; a perturbed model's are not (interp.realism), so they are
    drawn at random here."""
    example = EXAMPLES[name]
    model = compile_rasp_to_model(example.build(5), example.vocab, 5)
    config, rng = model.config, np.random.default_rng(0)
    params = {module: {k: (rng.normal(size=v.shape).astype(np.float32) if k == "b" else v)
                       for k, v in weights.items()} for module, weights in model.params.items()}
    legacy = legacy_arrays(params, config)
    d_head = max(max(l.key_size, l.value_size) for l in config.layers)
    x = rng.normal(size=(7, config.d_model))
    for layer, spec in enumerate(config.layers):
        tl = {side: legacy[f"blocks.{layer}.attn.{side}"].astype(np.float64)
              for side in ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O")}
        heads = list(_heads_of(params, layer, config))
        for h, (wq, bq, wk, bk, wv, bv, wo) in enumerate(heads):
            ours = (x @ wq + bq) @ (x @ wk + bk).T / math.sqrt(spec.key_size)
            q, k = x @ tl["W_Q"][h] + tl["b_Q"][h], x @ tl["W_K"][h] + tl["b_K"][h]
            theirs = q @ k.T / math.sqrt(d_head)
            assert np.allclose(theirs, ours, rtol=1e-5, atol=1e-5 * np.abs(ours).max()), \
                (layer, h)
            ours = (x @ wv + bv) @ wo
            theirs = (x @ tl["W_V"][h] + tl["b_V"][h]) @ tl["W_O"][h]
            assert np.allclose(theirs, ours, rtol=1e-5, atol=1e-5 * np.abs(ours).max())
        for side in tl:  # heads beyond this layer's are zero
            assert not tl[side][len(heads):].any(), (layer, side)


def test_legacy_arrays_are_float32_with_hooked_transformers_buffers():
    """HookedTransformer's own state dict holds, per layer, `mask` (lower-triangular bool,
    n_ctx = N + 1 square) and `IGNORE` (-inf); every weight is float32."""
    example = EXAMPLES["shuffle_dyck2"]  # 3 heads beside a head-less layer, MLPs of 3 widths
    model = compile_rasp_to_model(example.build(5), example.vocab, 5)
    legacy = legacy_arrays(model.params, model.config)
    lower = np.array([[j <= i for j in range(6)] for i in range(6)])
    for layer in range(3):
        mask, ignore = legacy[f"blocks.{layer}.attn.mask"], legacy[f"blocks.{layer}.attn.IGNORE"]
        assert mask.dtype == np.bool_ and np.array_equal(mask, lower)
        # one element (torch loads a 1-element array into the 0-d buffer)
        assert ignore.dtype == np.float32 and ignore.size == 1 and ignore.item() == -np.inf
    weights = {k: v for k, v in legacy.items() if not k.endswith(("mask", "IGNORE"))}
    assert {k: v.dtype for k, v in weights.items()} == dict.fromkeys(weights, np.float32)


def test_an_attention_only_layer_norm_model_has_no_ln2():
    example = EXAMPLES["frac_prevs"]  # one layer, one head, no MLP
    model = compile_rasp_to_model(example.build(5), example.vocab, 5, causal=True,
                                  layer_norm=True)
    legacy = legacy_arrays(model.params, model.config)
    assert {k for k in legacy if ".ln" in f".{k}"} == {
        "blocks.0.ln1.w", "blocks.0.ln1.b", "ln_final.w", "ln_final.b"}


def test_a_model_without_attention_still_has_one_head():
    """A program of one Map compiles to an MLP alone; TransformerLens still gets one
    (zero) head of width 1, and the model is not attention-only."""
    model = compile_rasp_to_model(rasp.categorical(rasp.Map(str.upper, rasp.tokens)),
                                  ["a", "b"], 3)
    assert [l.num_heads for l in model.config.layers] == [0]
    config = bridge_config(model.config)
    assert (config["n_heads"], config["d_head"], config["attn_only"]) == (1, 1, False)
    assert config["d_mlp"] == model.params["transformer/layer_0/mlp/linear_1"]["w"].shape[1]
    assert config["d_vocab_out"] == 2  # A and B
