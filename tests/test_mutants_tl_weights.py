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
    model = sort_ln
    params = model.params
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
