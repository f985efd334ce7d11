"""A CompiledModel's weights in TransformerLens layouts, as numpy arrays (no torch).

`legacy_arrays` gives the HookedTransformer state dict (`embed.W_E`,
`blocks.L.attn.W_Q` as [n_heads, d_model, d_head], ...); `native_arrays` the
TransformerLens 4 bridge's (`blocks.L.attn.q.weight` as nn.Linear [out, in]).
Heads, head widths and MLP widths are padded with zeros to the model's maximum,
and each layer's 1/√key_size is re-expressed exactly in TransformerLens's single
attention scale by folding the ratio into W_Q and b_Q.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rasp_runtime.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class TLShape:
    """The TransformerLens dimensions of one compiled model."""

    n_layers: int
    d_model: int
    d_head: int
    n_heads: int
    d_mlp: int
    n_ctx: int
    d_vocab: int
    d_vocab_out: int
    attn_only: bool
    causal: bool

    @property
    def attn_scale(self) -> float:
        """TransformerLens divides every layer's logits by this (its default, √d_head)."""
        return math.sqrt(self.d_head)


def tl_shape(config: ModelConfig) -> TLShape:
    """The padded TransformerLens shape of a model with this config.

    d_head covers every layer's key and value size; a model whose layers all have
    no MLP is `attn_only`. An output with no possible value still gets one
    (zero) unembedding column, since TransformerLens reads d_vocab_out = 0 as d_vocab.
    """
    layers = config.layers
    d_head = max([1] + [max(l.key_size, l.value_size) for l in layers])
    width = 1 if config.output_numerical else len(config.output_values)
    d_mlp = max([0] + [l.mlp_hidden for l in layers])
    return TLShape(len(layers), config.d_model, d_head, max([1] + [l.num_heads for l in layers]),
                   d_mlp, config.max_seq_len + 1, config.vocab_size, max(width, 1), d_mlp == 0,
                   config.causal)


def bridge_config(config: ModelConfig) -> dict:
    """The `TransformerBridgeConfig` fields (JSON-able) for `boot_native`."""
    s = tl_shape(config)
    fields = {
        "model_name": f"rasp-compiler:{config.output_label}",
        "architecture": "TransformerLensNative",
        "n_layers": s.n_layers, "d_model": s.d_model, "d_head": s.d_head, "n_heads": s.n_heads,
        "n_ctx": s.n_ctx, "d_vocab": s.d_vocab, "d_vocab_out": s.d_vocab_out,
        "act_fn": "relu", "normalization_type": None, "positional_embedding_type": "standard",
        "attention_dir": "causal" if s.causal else "bidirectional", "attn_only": s.attn_only,
        "use_attn_scale": True, "attn_scale": s.attn_scale,
        "default_prepend_bos": False, "tokenizer_prepends_bos": False,
        "init_weights": False,  # every weight is then loaded: no random init needed
    }
    if not s.attn_only:
        fields["d_mlp"] = s.d_mlp
    if config.normalization == "layernorm":  # pre-LN, as ours; plain exports stay as they were
        fields.update(normalization_type="LN", eps=config.layer_norm_eps)
    return fields


# HookedTransformerConfig fields every TransformerLens version since 1.x accepts;
# old versions refuse unknown keys in from_dict, so nothing else goes in.
_LEGACY_FIELDS = ("model_name", "n_layers", "d_model", "d_head", "n_heads", "d_mlp", "n_ctx",
                  "d_vocab", "d_vocab_out", "act_fn", "normalization_type",
                  "positional_embedding_type", "attention_dir", "attn_only", "use_attn_scale",
                  "attn_scale", "default_prepend_bos", "init_weights")


def legacy_config(config: ModelConfig) -> dict:
    """The HookedTransformerConfig dict (as InterpBench pickles it) of the legacy export."""
    fields = bridge_config(config)
    fields["original_architecture"] = "rasp-compiler"
    fields.setdefault("d_mlp", None)
    extra = ("eps",) if "eps" in fields else ()  # a HookedTransformerConfig field since 1.x
    return {k: fields[k] for k in (*_LEGACY_FIELDS, *extra, "original_architecture")}


def legacy_arrays(params, config: ModelConfig) -> dict[str, np.ndarray]:
    """The HookedTransformer state dict (float32 numpy) of a compiled model.

    Includes the causal `mask` and `IGNORE` buffers HookedTransformer's attention
    saves, so a strict `load_state_dict` in old TransformerLens versions accepts it.
    """
    s = tl_shape(config)
    out = {"embed.W_E": np.asarray(params["token_embed"]["embeddings"], np.float32),
           "pos_embed.W_pos": np.asarray(params["pos_embed"]["embeddings"], np.float32)}
    for i, layer in enumerate(config.layers):
        prefix, scope = f"blocks.{i}", f"transformer/layer_{i}"
        attn = _heads(params, f"{scope}/attn", layer, s)
        out.update({f"{prefix}.attn.{name}": array for name, array in attn.items()})
        out[f"{prefix}.attn.mask"] = np.tril(np.ones((s.n_ctx, s.n_ctx), bool))
        out[f"{prefix}.attn.IGNORE"] = np.array(-np.inf, np.float32)
        if not s.attn_only:
            out.update({f"{prefix}.mlp.{name}": array
                        for name, array in _mlp(params, f"{scope}/mlp", layer, s).items()})
        if config.normalization == "layernorm":
            for ln, ours in (("ln1", "ln_1"), ("ln2", "ln_2"))[:1 if s.attn_only else 2]:
                out.update(_norm(params, f"{scope}/{ours}", f"{prefix}.{ln}"))
    if config.normalization == "layernorm":
        out.update(_norm(params, "transformer/ln_final", "ln_final"))
    unembed = np.zeros((s.d_model, s.d_vocab_out), np.float32)
    w = np.asarray(params["unembed"]["w"])
    unembed[:, :w.shape[1]] = w
    out["unembed.W_U"] = unembed
    out["unembed.b_U"] = np.zeros(s.d_vocab_out, np.float32)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def native_arrays(params, config: ModelConfig) -> dict[str, np.ndarray]:
    """The TransformerBridge state dict (float32 numpy, TransformerLens 4 key names)."""
    legacy = legacy_arrays(params, config)
    s = tl_shape(config)
    flat = s.n_heads * s.d_head
    out = {"embed.weight": legacy["embed.W_E"], "pos_embed.weight": legacy["pos_embed.W_pos"]}
    for i in range(s.n_layers):
        p = f"blocks.{i}"
        for side in "QKV":
            w = legacy[f"{p}.attn.W_{side}"]  # [n_heads, d_model, d_head] -> [(h d_head), d_model]
            out[f"{p}.attn.{side.lower()}.weight"] = w.transpose(0, 2, 1).reshape(flat, s.d_model)
            out[f"{p}.attn.{side.lower()}.bias"] = legacy[f"{p}.attn.b_{side}"].reshape(flat)
        out[f"{p}.attn.o.weight"] = legacy[f"{p}.attn.W_O"].reshape(flat, s.d_model).T
        out[f"{p}.attn.o.bias"] = legacy[f"{p}.attn.b_O"]
        if not s.attn_only:
            out[f"{p}.mlp.in.weight"] = legacy[f"{p}.mlp.W_in"].T
            out[f"{p}.mlp.in.bias"] = legacy[f"{p}.mlp.b_in"]
            out[f"{p}.mlp.out.weight"] = legacy[f"{p}.mlp.W_out"].T
            out[f"{p}.mlp.out.bias"] = legacy[f"{p}.mlp.b_out"]
    norms = [k[:-2] for k in legacy if k.endswith(".w") and "ln" in k.rsplit(".", 2)[-2]]
    for norm in norms:  # blocks.L.ln1.w -> blocks.L.ln1.weight, ln_final.w -> ln_final.weight
        out[f"{norm}.weight"], out[f"{norm}.bias"] = legacy[f"{norm}.w"], legacy[f"{norm}.b"]
    out["unembed.weight"] = legacy["unembed.W_U"].T
    out["unembed.bias"] = legacy["unembed.b_U"]
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def _heads(params, scope: str, layer, s: TLShape) -> dict[str, np.ndarray]:
    """W_Q/W_K/W_V [n_heads, d_model, d_head], W_O [n_heads, d_head, d_model] and biases."""
    shapes = {"Q": ("query", layer.key_size), "K": ("key", layer.key_size),
              "V": ("value", layer.value_size)}
    out = {}
    # Our logits are q·k/√key_size; TransformerLens divides by attn_scale = √d_head.
    # Multiplying W_Q and b_Q by √d_head/√key_size (in float64, rounded once) keeps them equal.
    fold = math.sqrt(s.d_head) / math.sqrt(layer.key_size) if layer.key_size else 1.0
    for side, (name, size) in shapes.items():
        w = np.zeros((s.n_heads, s.d_model, s.d_head), np.float32)
        b = np.zeros((s.n_heads, s.d_head), np.float32)
        scale = fold if side == "Q" else 1.0
        for h in range(layer.num_heads):
            cols = slice(h * size, (h + 1) * size)
            w[h, :, :size] = _array(params, scope, name, "w")[:, cols].astype(np.float64) * scale
            b[h, :size] = _array(params, scope, name, "b")[cols].astype(np.float64) * scale
        out[f"W_{side}"], out[f"b_{side}"] = w, b
    w_o = np.zeros((s.n_heads, s.d_head, s.d_model), np.float32)
    b_o = np.zeros(s.d_model, np.float32)
    size = layer.value_size
    for h in range(layer.num_heads):
        w_o[h, :size] = _array(params, scope, "linear", "w")[h * size:(h + 1) * size]
    if layer.num_heads:
        b_o[:] = _array(params, scope, "linear", "b")
    out["W_O"], out["b_O"] = w_o, b_o
    return out


def _mlp(params, scope: str, layer, s: TLShape) -> dict[str, np.ndarray]:
    """W_in [d_model, d_mlp], W_out [d_mlp, d_model] and biases, zero-padded to d_mlp."""
    w_in = np.zeros((s.d_model, s.d_mlp), np.float32)
    b_in = np.zeros(s.d_mlp, np.float32)
    w_out = np.zeros((s.d_mlp, s.d_model), np.float32)
    b_out = np.zeros(s.d_model, np.float32)
    units = layer.mlp_hidden
    if units:
        w_in[:, :units] = _array(params, scope, "linear_1", "w")
        b_in[:units] = _array(params, scope, "linear_1", "b")
        w_out[:units] = _array(params, scope, "linear_2", "w")
        b_out[:] = _array(params, scope, "linear_2", "b")
    return {"W_in": w_in, "b_in": b_in, "W_out": w_out, "b_out": b_out}


def _norm(params, module: str, prefix: str) -> dict[str, np.ndarray]:
    """A LayerNorm's w and b under `prefix`. A sublayer with no heads or no MLP has no
    LayerNorm of ours; TransformerLens's still runs (before zero weights), so it gets
    the final LayerNorm's."""
    norm = params.get(module, params["transformer/ln_final"])
    return {f"{prefix}.w": np.asarray(norm["scale"], np.float32),
            f"{prefix}.b": np.asarray(norm["offset"], np.float32)}


def _array(params, scope: str, module: str, name: str) -> np.ndarray:
    return np.asarray(params[f"{scope}/{module}"][name])
