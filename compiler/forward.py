"""The compiled transformer's forward pass, as a haiku function.

Attention is standard multi-head attention with logits q·k/√key_size, PAD keys
masked out (and later keys too when causal), no layer norm, ReLU MLPs.
Returns the final residual, the residual after every sublayer, and the logits.
Every matmul runs at full float32 precision (`PRECISION`), whatever the backend's
default (TF32 or bfloat16 passes on GPUs would break exactness).
"""

from __future__ import annotations

import math

import haiku as hk
import jax
import jax.numpy as jnp

from compiler.assemble import ModelConfig

MASKED_LOGIT = -1e30
# Pinned on every dot: the exactness bounds (craft.float_bounds) assume float32 products.
PRECISION = jax.lax.Precision.HIGHEST


def _linear(size: int, name: str, with_bias: bool = True):
    """hk.Linear at full float32 precision."""
    layer = hk.Linear(size, with_bias=with_bias, name=name)
    return lambda x: layer(x, precision=PRECISION)


def make_forward(config: ModelConfig):
    """A haiku-transformable function (token_ids, valid) -> outputs, for `config`."""

    def forward(token_ids: jnp.ndarray, valid: jnp.ndarray):
        batch, seq = token_ids.shape
        d = config.d_model
        x = hk.Embed(config.vocab_size, d, name="token_embed")(token_ids)
        x = x + hk.Embed(config.max_seq_len + 1, d, name="pos_embed")(jnp.arange(seq))[None]
        allowed = valid[:, None, None, :]
        if config.causal:
            allowed = allowed & jnp.tril(jnp.ones((seq, seq), bool))[None, None]
        residuals, layer_outputs, attn_logits = [x], [], []
        with hk.name_scope("transformer"):
            for i, layer in enumerate(config.layers):
                with hk.name_scope(f"layer_{i}"):
                    out, logits = jnp.zeros_like(x), None
                    if layer.num_heads:
                        with hk.name_scope("attn"):
                            out, logits = _attention(x, layer, allowed, d)
                    x = x + out
                    residuals.append(x)
                    layer_outputs.append(out)
                    attn_logits.append(logits)
                    out = jnp.zeros_like(x)
                    if layer.mlp_hidden:
                        with hk.name_scope("mlp"):
                            hidden = jax.nn.relu(_linear(layer.mlp_hidden, "linear_1")(x))
                            out = _linear(d, "linear_2")(hidden)
                    x = x + out
                    residuals.append(x)
                    layer_outputs.append(out)
        width = 1 if config.output_numerical else len(config.output_values)
        unembedded = _linear(width, "unembed", with_bias=False)(x)
        return {"output": unembedded, "residuals": residuals,
                "layer_outputs": layer_outputs, "attn_logits": attn_logits}

    return forward


def _attention(x, layer, allowed, d):
    batch, seq, _ = x.shape
    heads, key_size, value_size = layer.num_heads, layer.key_size, layer.value_size
    q = _linear(heads * key_size, "query")(x).reshape(batch, seq, heads, key_size)
    k = _linear(heads * key_size, "key")(x).reshape(batch, seq, heads, key_size)
    v = _linear(heads * value_size, "value")(x).reshape(batch, seq, heads, value_size)
    logits = jnp.einsum("bqhk,bshk->bhqs", q, k, precision=PRECISION) / math.sqrt(key_size)
    logits = jnp.where(allowed, logits, MASKED_LOGIT)
    weights = jax.nn.softmax(logits, axis=-1)
    mixed = jnp.einsum("bhqs,bshv->bqhv", weights, v, precision=PRECISION)
    mixed = mixed.reshape(batch, seq, heads * value_size)
    return _linear(d, "linear")(mixed), logits
