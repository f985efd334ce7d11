"""A CompiledModel seen as Tracr's assembled model, for converters written for Tracr.

TransformerLens's `transformer_lens.utilities.tracr` converter reads Tracr's
layout: every layer has attention and MLP parameters of one shape (one key size
for queries, keys and values, one MLP width) and `model_config` has Tracr's
field names. Our parameters keep each layer's own shapes, so `tracr_view(model)`
gives the same weights zero-padded to that layout (numpy, no torch).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from interp import tl_weights


@dataclasses.dataclass(frozen=True)
class TracrModelConfig:
    """Tracr's model_config field names for one compiled model."""

    num_heads: int
    num_layers: int
    key_size: int
    mlp_hidden_size: int
    causal: bool
    dropout_rate: float = 0.0
    layer_norm: bool = False


@dataclasses.dataclass(frozen=True)
class TracrView:
    """What Tracr's AssembledTransformerModel exposes, for one CompiledModel.

    The query weights carry the attention-scale fold of `interp.tl_weights`, so
    a consumer dividing by √key_size (Tracr's haiku model and TransformerLens both
    do) gets our logits exactly.
    """

    params: dict[str, dict[str, np.ndarray]]
    model_config: TracrModelConfig
    residual_labels: list[str]
    input_encoder: Any
    output_encoder: Any


def tracr_view(model) -> TracrView:
    """`model` in Tracr's uniform, zero-padded parameter layout."""
    shape = tl_weights.tl_shape(model.config)
    legacy = tl_weights.legacy_arrays(model.params, model.config)
    # Tracr always has an MLP; an attention-only model gets one unit that stays zero
    # (TransformerLens would read a width of 0 as "4 · d_model").
    width = max(shape.d_mlp, 1)
    flat = shape.n_heads * shape.d_head
    params = {"token_embed": {"embeddings": legacy["embed.W_E"]},
              "pos_embed": {"embeddings": legacy["pos_embed.W_pos"]}}
    for i in range(shape.n_layers):
        attn, scope = f"blocks.{i}.attn", f"transformer/layer_{i}"
        for side, name in (("Q", "query"), ("K", "key"), ("V", "value")):
            w = legacy[f"{attn}.W_{side}"]  # [n_heads, d_model, d_head] -> [d_model, (h d_head)]
            params[f"{scope}/attn/{name}"] = {
                "w": np.ascontiguousarray(w.transpose(1, 0, 2).reshape(shape.d_model, flat)),
                "b": legacy[f"{attn}.b_{side}"].reshape(flat)}
        params[f"{scope}/attn/linear"] = {"w": legacy[f"{attn}.W_O"].reshape(flat, shape.d_model),
                                          "b": legacy[f"{attn}.b_O"]}
        mlp = {name: np.zeros(shape_, np.float32) for name, shape_ in
               (("W_in", (shape.d_model, width)), ("b_in", (width,)),
                ("W_out", (width, shape.d_model)), ("b_out", (shape.d_model,)))}
        if not shape.attn_only:
            mlp = {name: legacy[f"blocks.{i}.mlp.{name}"] for name in mlp}
        params[f"{scope}/mlp/linear_1"] = {"w": mlp["W_in"], "b": mlp["b_in"]}
        params[f"{scope}/mlp/linear_2"] = {"w": mlp["W_out"], "b": mlp["b_out"]}
    params["unembed"] = {"w": np.asarray(model.params["unembed"]["w"])}
    config = TracrModelConfig(shape.n_heads, shape.n_layers, shape.d_head, width,
                              model.config.causal)
    return TracrView(params, config, list(model.residual_labels), model.input_encoder,
                     model.output_encoder)
