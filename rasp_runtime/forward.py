"""The compiled transformer's one forward pass, as a haiku function with named hook points.

Attention is standard multi-head attention with logits q·k/√key_size, PAD keys
masked out (and later keys too when causal), and the MLP activation the config names
(today ReLU). With `normalization="layernorm"` the blocks are pre-LN, as GPT-2's: a
LayerNorm before each attention and MLP sublayer and a final one before the unembedding,
each (x − mean) / sqrt(mean((x − mean)²) + eps) · scale + offset, computed as
TransformerLens's LayerNorm (hooks `ln1`, `ln2`, `ln_final`: `hook_scale` [B, S, 1] and
`hook_normalized` [B, S, d], the centred input over the scale, before gain and offset). As in TransformerLens,
`hook_mlp_in` is the residual before ln2; unlike it, `hook_{q,k,v}_input` are ln1's
output split per head (one LayerNorm per layer, not one per head). Returns the final logits, the residual after
every sublayer, what each sublayer added and the attention logits. Every matmul runs
at full float32 precision (`PRECISION`), whatever the backend's default (TF32 or
bfloat16 passes on GPUs would break exactness).

Hooks: `forward(ids, valid, hooks)` takes an optional map from a hook name (the
TransformerLens legacy names `hook_names` lists, e.g. `blocks.0.attn.hook_q`) to a
function of the activation there; what it returns goes on in its place, so one map
reads (return the input), replaces or adds. Without hooks no hook code is traced: the
jitted computation is the plain forward. A hook that returns its very input leaves the
computation exactly as unhooked, so reading a hook never changes a float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import haiku as hk
import jax
import jax.numpy as jnp

from rasp_runtime.config import NORMALIZATIONS, ModelConfig

MASKED_LOGIT = -1e30
# Pinned on every dot: the exactness bounds (craft.float_bounds) assume float32 products.
PRECISION = jax.lax.Precision.HIGHEST

Hooks = Mapping[str, Callable[[jnp.ndarray], jnp.ndarray]]

# Every hook point in forward order; `{L}` is the layer. Shapes [B, S, d] unless said.
EMBED_POINTS = ("hook_embed", "hook_pos_embed")
ATTENTION_POINTS = (
    "hook_q_input", "attn.hook_q",         # each head's input [B, S, H, d]; its query [B, S, H, k]
    "hook_k_input", "attn.hook_k",
    "hook_v_input", "attn.hook_v",         # projections have their bias added
    "attn.hook_attn_scores",               # masked logits, [B, H, S, S]
    "attn.hook_pattern",                   # attention weights, [B, H, S, S]
    "attn.hook_z",                         # mixed values, [B, S, H, v]
    "attn.hook_result",                    # each head's output, [B, S, H, d]
    "hook_attn_out",
)
MLP_POINTS = ("mlp.hook_pre", "mlp.hook_post", "hook_mlp_out")  # pre/post [B, S, h]
OUTPUT_POINTS = ("unembed.hook_out",)      # the output logits, [B, S, out]
LAYER_NORM_POINTS = ("hook_scale", "hook_normalized")  # scale [B, S, 1]; normalised [B, S, d]
ACTIVATIONS = {"relu": jax.nn.relu}


def hook_names(config: ModelConfig) -> list[str]:
    """Every hook name of a model with `config`, in forward order (attention points only
    in layers with heads, MLP points only in layers with an MLP)."""
    ln = config.normalization == "layernorm"
    names = list(EMBED_POINTS)
    for i, layer in enumerate(config.layers):
        attention = _ln_points("ln1", ln) + ATTENTION_POINTS if layer.num_heads else ()
        mlp = ("hook_mlp_in",) + _ln_points("ln2", ln) + MLP_POINTS if layer.mlp_hidden else ()
        points = ("hook_resid_pre",) + attention + ("hook_resid_mid",) + mlp + (
            "hook_resid_post",)
        names += [f"blocks.{i}.{point}" for point in points]
    return names + list(_ln_points("ln_final", ln)) + list(OUTPUT_POINTS)


def _ln_points(name: str, layer_norm: bool) -> tuple[str, ...]:
    return tuple(f"{name}.{point}" for point in LAYER_NORM_POINTS) if layer_norm else ()


def make_forward(config: ModelConfig):
    """A haiku-transformable function (token_ids, valid, hooks=None) -> outputs, for `config`."""
    if config.normalization not in NORMALIZATIONS or config.activation not in ACTIVATIONS:
        raise ValueError(f"this forward runs normalisation {NORMALIZATIONS} and activations "
                         f"{tuple(ACTIVATIONS)}; the config asks for {config.normalization!r} "
                         f"and {config.activation!r}")
    activation = ACTIVATIONS[config.activation]
    ln = config.normalization == "layernorm"

    def normalize(name: str, x, hook, prefix: str):
        """x through the LayerNorm `name` when the config has LayerNorm, else x itself."""
        return _layer_norm(name, x, config.layer_norm_eps, hook, prefix) if ln else x

    def forward(token_ids: jnp.ndarray, valid: jnp.ndarray, hooks: Hooks | None = None):
        hook = _HookCaller(hooks)
        seq = token_ids.shape[1]
        d = config.d_model
        x = hook("hook_embed", _embed("token_embed", config.vocab_size, d, token_ids))
        pos = _embed("pos_embed", config.max_seq_len + 1, d, jnp.arange(seq))[None]
        if "hook_pos_embed" in hook:
            pos = hook("hook_pos_embed", jnp.broadcast_to(pos, x.shape))
        x = x + pos
        allowed = valid[:, None, None, :]
        if config.causal:
            allowed = allowed & jnp.tril(jnp.ones((seq, seq), bool))[None, None]
        residuals, layer_outputs, attn_logits = [x], [], []
        with hk.name_scope("transformer"):
            for i, layer in enumerate(config.layers):
                block = f"blocks.{i}."
                x = hook(block + "hook_resid_pre", x)
                with hk.name_scope(f"layer_{i}"):
                    out, logits = jnp.zeros_like(x), None
                    if layer.num_heads:
                        attn_in = normalize("ln_1", x, hook, block + "ln1.")
                        with hk.name_scope("attn"):
                            out, logits = _attention(attn_in, layer, allowed, d, hook, block)
                        out = hook(block + "hook_attn_out", out)
                    x = hook(block + "hook_resid_mid", x + out)
                    residuals.append(x)
                    layer_outputs.append(out)
                    attn_logits.append(logits)
                    out = jnp.zeros_like(x)
                    if layer.mlp_hidden:
                        # As TransformerLens: hook_mlp_in is the residual, before ln2.
                        mlp_in = normalize("ln_2", hook(block + "hook_mlp_in", x), hook,
                                           block + "ln2.")
                        with hk.name_scope("mlp"):
                            pre = _linear("linear_1", mlp_in, layer.mlp_hidden)
                            hidden = hook(block + "mlp.hook_post",
                                          activation(hook(block + "mlp.hook_pre", pre)))
                            out = hook(block + "hook_mlp_out", _linear("linear_2", hidden, d))
                    x = hook(block + "hook_resid_post", x + out)
                    residuals.append(x)
                    layer_outputs.append(out)
            final = normalize("ln_final", x, hook, "ln_final.")
        width = 1 if config.output_numerical else len(config.output_values)
        unembedded = hook("unembed.hook_out", _linear("unembed", final, width, with_bias=False))
        return {"output": unembedded, "residuals": residuals,
                "layer_outputs": layer_outputs, "attn_logits": attn_logits}

    return forward


class _HookCaller:
    """hook(name, x): hooks[name](x) where `name` is hooked, else x itself (no traced op);
    `name in hook` says whether it is hooked."""

    def __init__(self, hooks: Hooks | None):
        self.hooks = hooks or {}

    def __call__(self, name: str, x):
        return self.hooks[name](x) if name in self.hooks else x

    def __contains__(self, name: str) -> bool:
        return name in self.hooks


def _layer_norm(name: str, x, eps: float, hook, prefix: str):
    """LayerNorm `name` over the last axis, in TransformerLens's order of operations:
    centre, scale = sqrt(mean of squares + eps), divide (hook_normalized, as the
    TransformerLens 4 bridge has it: before the gain), then · gain + offset."""
    d = x.shape[-1]
    with hk.name_scope(name):
        gain = hk.get_parameter("scale", [d], init=jnp.ones)
        offset = hk.get_parameter("offset", [d], init=jnp.zeros)
    centred = x - x.mean(axis=-1, keepdims=True)
    scale = hook(prefix + "hook_scale",
                 jnp.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps))
    return hook(prefix + "hook_normalized", centred / scale) * gain + offset


def _embed(name: str, rows: int, d: int, ids):
    """An embedding lookup (as hk.Embed): the table's rows at `ids`."""
    with hk.name_scope(name):
        table = hk.get_parameter("embeddings", [rows, d], init=hk.initializers.TruncatedNormal())
    return table[ids]


def _weights(name: str, size_in: int, size: int, with_bias: bool = True):
    """(w, b or None) of a linear layer named `name` (initialised as hk.Linear's)."""
    with hk.name_scope(name):
        w = hk.get_parameter("w", [size_in, size], init=hk.initializers.TruncatedNormal(
            1.0 / math.sqrt(size_in)))
        b = hk.get_parameter("b", [size], init=jnp.zeros) if with_bias else None
    return w, b


def _linear(name: str, x, size: int, with_bias: bool = True):
    """x @ w + b at full float32 precision (the same operations as hk.Linear)."""
    w, b = _weights(name, x.shape[-1], size, with_bias)
    out = jnp.dot(x, w, precision=PRECISION)
    return out if b is None else out + jnp.broadcast_to(b, out.shape)


def _attention(x, layer, allowed, d, hook, block):
    """One layer's attention output [B, S, d] and its masked logits."""
    batch, seq, _ = x.shape
    heads = layer.num_heads
    projected = []
    for side, name, size in (("q", "query", layer.key_size), ("k", "key", layer.key_size),
                             ("v", "value", layer.value_size)):
        y = _projection(x, name, heads, size, hook, f"{block}hook_{side}_input")
        projected.append(hook(f"{block}attn.hook_{side}", y))
    q, k, v = projected
    logits = jnp.einsum("bqhk,bshk->bhqs", q, k, precision=PRECISION) / math.sqrt(layer.key_size)
    logits = hook(block + "attn.hook_attn_scores", jnp.where(allowed, logits, MASKED_LOGIT))
    pattern = hook(block + "attn.hook_pattern", jax.nn.softmax(logits, axis=-1))
    z = hook(block + "attn.hook_z", jnp.einsum("bhqs,bshv->bqhv", pattern, v,
                                               precision=PRECISION))
    w, b = _weights("linear", heads * layer.value_size, d)
    out = jnp.dot(z.reshape(batch, seq, heads * layer.value_size), w, precision=PRECISION)
    result_hook = block + "attn.hook_result"
    if result_hook in hook:  # hooked: each head's result exists
        result = jnp.einsum("bqhv,hvd->bqhd", z, w.reshape(heads, layer.value_size, d),
                            precision=PRECISION)
        hooked = hook(result_hook, result)
        if hooked is not result:  # replaced: the heads' (new) results add up
            out = hooked.sum(axis=2)
    return out + jnp.broadcast_to(b, out.shape), logits


def _projection(x, name, heads, size, hook, input_hook):
    """A q, k or v projection [B, S, H, size]; through each head's own input when
    `input_hook` is hooked and changes it."""
    batch, seq, d = x.shape
    w, b = _weights(name, d, heads * size)
    if input_hook in hook:
        split = jnp.broadcast_to(x[:, :, None], (batch, seq, heads, d))
        hooked = hook(input_hook, split)
        if hooked is not split:
            y = jnp.einsum("bshd,dhk->bshk", hooked, w.reshape(d, heads, size),
                           precision=PRECISION)
            return y + b.reshape(heads, size)
    y = jnp.dot(x, w, precision=PRECISION)
    return (y + jnp.broadcast_to(b, y.shape)).reshape(batch, seq, heads, size)
