"""A causal LayerNorm CompiledModel as a Hugging Face `GPT2LMHeadModel`, and its directory.

`hf_arrays` gives the GPT-2 state dict as numpy (no torch); `to_hf` the torch model;
`save_hf` a `save_pretrained` directory (config, model.safetensors, tokenizer,
generation config) plus our ground_truth.json with each hook's HF module beside it
and rasp_model.npz/.json, so `CompiledModel.load(directory)` gets the exact model back.

GPT-2 has one head width, so the residual is padded: n_embd = n_head × head_dim ≥
d_model + 1, our coordinates first. Padding coordinates stay zero in every position
(no weight writes them), except one: the final LayerNorm's offset sets the first
padding coordinate to exactly 1, the constant the lm_head rows of non-output tokens
read so that they can never win the argmax (see `_lm_head`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from interp.extras import import_extra
from interp.hf_tokens import TokenTable, hf_tokenizer, token_table
from rasp.errors import ModelFileError

GROUND_TRUTH = "ground_truth.json"
HF_MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors")


def check_exportable(config) -> None:
    """Refuse (one ModelFileError line, saying how to compile one) a model GPT-2 cannot run
    exactly: GPT-2 always masks causally and always applies LayerNorm."""
    fix = ("compile it with layer_norm=True and causal=True or form='completion' (raspc: "
           "--layer-norm with --causal or --form completion)")
    if not config.causal:
        raise ModelFileError(f"GPT-2 attention is causal and this model is not: {fix}")
    if config.normalization != "layernorm":
        raise ModelFileError(f"GPT-2 applies LayerNorm and this model has none: {fix}")
    if config.output_numerical:
        raise ModelFileError("the Hugging Face export predicts tokens, and this program's "
                             "output is numerical: export a categorical output (or use "
                             "--format safetensors)")
    if config.activation != "relu":
        raise ModelFileError(f"the MLP activation {config.activation!r} has no GPT-2 name")


# How far a writer's row may be from summing to zero, relative to the sum of its |entries|
# (the compiler's balance coordinate makes it exactly zero; float32 rounding is far below).
BALANCE_TOLERANCE = 2.0 ** -20


def check_mean_zero(params, config) -> None:
    """Refuse a model whose residual does not sum to zero at every position: every row a
    writer adds (embeddings, attention and MLP outputs, their biases) must sum to zero.
    Then LayerNorm's centring is a no-op over d_model or over GPT-2's padded n_embd alike;
    otherwise the two means differ and so would the models."""
    writers = [("token_embed", "embeddings"), ("pos_embed", "embeddings")]
    for i, layer in enumerate(config.layers):
        scope = f"transformer/layer_{i}"
        writers += [(f"{scope}/attn/linear", k) for k in ("w", "b") if layer.num_heads]
        writers += [(f"{scope}/mlp/linear_2", k) for k in ("w", "b") if layer.mlp_hidden]
    for module, name in writers:
        rows = np.atleast_2d(np.asarray(params[module][name], np.float64))
        if np.any(np.abs(rows.sum(-1)) > BALANCE_TOLERANCE * np.abs(rows).sum(-1)):
            raise ModelFileError(f"{module}/{name} writes rows that do not sum to zero, so "
                                 "GPT-2's LayerNorm over its padded width would differ from "
                                 "ours: export a model compiled with layer_norm=True")


def hf_shape(config) -> dict[str, int]:
    """GPT-2's sizes for `config`: n_head = the most heads of a layer, head_dim covers
    every key and value size, n_embd = n_head × head_dim leaves one padding coordinate."""
    n_head = max([1] + [layer.num_heads for layer in config.layers])
    head_dim = max([1] + [max(layer.key_size, layer.value_size) for layer in config.layers])
    head_dim = max(head_dim, -(-(config.d_model + 1) // n_head))
    return {"n_head": n_head, "head_dim": head_dim, "n_embd": n_head * head_dim,
            "n_inner": max([1] + [layer.mlp_hidden for layer in config.layers])}


def hf_config(model, table: TokenTable) -> dict:
    """The GPT2Config fields of `model`'s export (JSON-able)."""
    config = model.config
    shape = hf_shape(config)
    return {
        "vocab_size": len(table.tokens),
        "n_positions": int(model.params["pos_embed"]["embeddings"].shape[0]),
        "n_embd": shape["n_embd"], "n_layer": len(config.layers), "n_head": shape["n_head"],
        "n_inner": shape["n_inner"], "activation_function": config.activation,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "layer_norm_epsilon": _padded_eps(config.layer_norm_eps, config.d_model,
                                          shape["n_embd"]),
        # Our 1/√key_size is folded into W_Q (each layer has its own key size), so HF's
        # own 1/√head_dim is switched off rather than undone.
        "scale_attn_weights": False, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "tie_word_embeddings": False,
        "bos_token_id": table.bos_id, "eos_token_id": table.eos_id,
        "pad_token_id": table.pad_id, "sep_token_id": table.sep_id,
    }


def _padded_eps(eps: float, d: int, n_embd: int) -> float:
    """LayerNorm's epsilon over n_embd coordinates that gives our normaliser up to a
    constant factor (which `_layer_norm` folds into the gain).

    Every residual sums to zero (`check_mean_zero`), so centring is a no-op over either
    count, and the padding coordinates are zero, so the sum of squares S is the same over
    d and over n_embd coordinates: √(S/n_embd + eps·d/n_embd) = √(d/n_embd)·√(S/d + eps),
    ours times √(d/n_embd), in exact arithmetic. So the normaliser's relative distance from
    √eps, the bound the compiler proved, is unchanged; the float mean only gets smaller
    (the same sum divided by n_embd > d), and the sums add only exact zeros. Rounding
    eps·d/n_embd and the gain to float32 adds at most 1.5 ulp of relative error per LN.
    """
    return float(np.float32(eps * d / n_embd))


def hf_arrays(model, table: TokenTable) -> dict[str, np.ndarray]:
    """The GPT2LMHeadModel state dict of `model` as float32 numpy arrays."""
    config, params = model.config, model.params
    shape = hf_shape(config)
    d, D = config.d_model, shape["n_embd"]
    wte = np.zeros((len(table.tokens), D))
    token_embed = np.asarray(params["token_embed"]["embeddings"])
    wte[:token_embed.shape[0], :d] = token_embed
    pos_embed = np.asarray(params["pos_embed"]["embeddings"])
    wpe = np.zeros((pos_embed.shape[0], D))
    wpe[:, :d] = pos_embed
    out = {"transformer.wte.weight": wte, "transformer.wpe.weight": wpe}
    for i, layer in enumerate(config.layers):
        scope, prefix = f"transformer/layer_{i}", f"transformer.h.{i}"
        for name, ln in (("ln_1", layer.num_heads), ("ln_2", layer.mlp_hidden)):
            found = _ln_params(params, scope, name) if ln else None
            out.update(_layer_norm(f"{prefix}.{name}", found, d, D))
        out.update(_attention(params, f"{scope}/attn", prefix, layer, shape, d))
        out.update(_mlp(params, f"{scope}/mlp", prefix, layer, shape, d))
    out.update(_layer_norm("transformer.ln_f", _ln_params(params, "transformer", "ln_final"),
                           d, D, constant=d))
    out["lm_head.weight"] = _lm_head(params, table, out["transformer.ln_f.weight"],
                                     out["transformer.ln_f.bias"], d)
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def _ln_params(params, scope: str, name: str):
    """A LayerNorm's {"scale", "offset"} (haiku scope `scope/name`, or `scope/attn/ln_1`
    and `scope/mlp/ln_2` where the sublayer's own scope holds it)."""
    for key in (f"{scope}/{name}", f"{scope}/attn/{name}", f"{scope}/mlp/{name}"):
        if key in params:
            return params[key]
    raise ModelFileError(f"the model has no LayerNorm parameters {scope}/{name}; re-save it "
                         "with this version")


def _layer_norm(prefix: str, found, d: int, D: int, constant: int | None = None):
    """GPT-2's LayerNorm weight and bias: our gain × √(d/D) (see `_padded_eps`) and offset
    on our coordinates, zero on the padding (offset 1 on `constant`). A LayerNorm we do
    not have (a sublayer without heads or units) gets zeros: its sublayer adds nothing."""
    weight, bias = np.zeros(D), np.zeros(D)
    if found is not None:
        weight[:d] = np.asarray(found["scale"], np.float64) * math.sqrt(d / D)
        bias[:d] = np.asarray(found["offset"])
    if constant is not None:
        bias[constant] = 1.0
    return {f"{prefix}.weight": weight, f"{prefix}.bias": bias}


def _attention(params, scope: str, prefix: str, layer, shape, d: int):
    """c_attn ([D, 3D]: q | k | v, head-major) and c_proj ([D, D]) of one layer, our
    1/√key_size folded into the query weights and bias (in float64, rounded once)."""
    D, width = shape["n_embd"], shape["head_dim"]
    w_qkv, b_qkv = np.zeros((D, 3 * D)), np.zeros(3 * D)
    w_o, b_o = np.zeros((D, D)), np.zeros(D)
    if layer.num_heads:
        fold = 1.0 / math.sqrt(layer.key_size)
        for block, (name, size, scale) in enumerate((("query", layer.key_size, fold),
                                                     ("key", layer.key_size, 1.0),
                                                     ("value", layer.value_size, 1.0))):
            w = np.asarray(params[f"{scope}/{name}"]["w"], np.float64) * scale
            b = np.asarray(params[f"{scope}/{name}"]["b"], np.float64) * scale
            for h in range(layer.num_heads):
                cols = slice(block * D + h * width, block * D + h * width + size)
                w_qkv[:d, cols] = w[:, h * size:(h + 1) * size]
                b_qkv[cols] = b[h * size:(h + 1) * size]
        size = layer.value_size
        w = np.asarray(params[f"{scope}/linear"]["w"])
        for h in range(layer.num_heads):
            w_o[h * width:h * width + size, :d] = w[h * size:(h + 1) * size]
        b_o[:d] = np.asarray(params[f"{scope}/linear"]["b"])
    return {f"{prefix}.attn.c_attn.weight": w_qkv, f"{prefix}.attn.c_attn.bias": b_qkv,
            f"{prefix}.attn.c_proj.weight": w_o, f"{prefix}.attn.c_proj.bias": b_o}


def _mlp(params, scope: str, prefix: str, layer, shape, d: int):
    """c_fc ([D, n_inner]) and c_proj ([n_inner, D]), zero past the layer's units."""
    D, inner = shape["n_embd"], shape["n_inner"]
    w_in, b_in = np.zeros((D, inner)), np.zeros(inner)
    w_out, b_out = np.zeros((inner, D)), np.zeros(D)
    units = layer.mlp_hidden
    if units:
        w_in[:d, :units] = np.asarray(params[f"{scope}/linear_1"]["w"])
        b_in[:units] = np.asarray(params[f"{scope}/linear_1"]["b"])
        w_out[:units, :d] = np.asarray(params[f"{scope}/linear_2"]["w"])
        b_out[:d] = np.asarray(params[f"{scope}/linear_2"]["b"])
    return {f"{prefix}.mlp.c_fc.weight": w_in, f"{prefix}.mlp.c_fc.bias": b_in,
            f"{prefix}.mlp.c_proj.weight": w_out, f"{prefix}.mlp.c_proj.bias": b_out}


def _lm_head(params, table: TokenTable, ln_weight, ln_bias, d: int) -> np.ndarray:
    """[tokens, D]: an output token's row is its unembedding column; every other token's
    row is -M on the constant coordinate (exactly 1 after ln_f), so its logit is exactly -M.

    Any LayerNorm output coordinate i has |y_i| ≤ √D·|weight_i| + |bias_i| (a centred
    coordinate is at most √D standard deviations), so every output logit is at most
    L = max over output rows of Σ_i |W_ji|·(√D·|weight_i| + |bias_i|) in size, whatever
    the input; M is a power of two above 2L + 1, so no other token can win the argmax
    (float rounding moves a logit by far less than L)."""
    unembed = np.asarray(params["unembed"]["w"], np.float64)  # [d, outputs]
    D = ln_weight.shape[0]
    head = np.zeros((len(table.tokens), D))
    for column, token_id in enumerate(table.output_ids):
        head[token_id, :d] = unembed[:, column]
    reach = math.sqrt(D) * np.abs(ln_weight) + np.abs(ln_bias)
    largest = float(np.max(np.abs(head) @ reach, initial=0.0))
    never = -(2.0 ** math.ceil(math.log2(2 * largest + 2)))
    others = sorted(set(range(len(table.tokens))) - set(table.output_ids))
    head[others, d] = never
    return head


def to_hf(model):
    """`model` as a `transformers.GPT2LMHeadModel` in float32 (eval mode; the hf extra).

    Its logits at each position are the lm_head over the token table
    (`interp.hf_tokens.token_table`): argmax gives the program's output there."""
    config, generation, arrays = _export_parts(model)  # refuses first, then needs transformers
    torch = import_extra("torch")
    transformers = import_extra("transformers")
    with torch.device("meta"):  # no random initialisation: every weight is loaded below
        hf_model = transformers.GPT2LMHeadModel(config)
    state = {k: torch.from_numpy(v) for k, v in arrays.items()}
    hf_model.load_state_dict(state, strict=True, assign=True)
    hf_model.generation_config = generation
    return hf_model.eval()


def _export_parts(model):
    """(GPT2Config, GenerationConfig, state dict as numpy) of `model`, refused (one line)
    unless GPT-2 runs it exactly."""
    check_exportable(model.config)
    check_mean_zero(model.params, model.config)
    transformers = import_extra("transformers")
    table = token_table(model.config)
    config = transformers.GPT2Config(architectures=["GPT2LMHeadModel"], dtype="float32",
                                     **hf_config(model, table))
    generation = transformers.GenerationConfig(**_generation(model, table))
    return config, generation, hf_arrays(model, table)


def _generation(model, table: TokenTable) -> dict:
    """Greedy decoding and the special ids. A completion model writes at most one output
    per prompt token, then EOS; a per-position model's next token is the program's output
    at the last position, so it generates one."""
    config = model.config
    if getattr(config, "form", "per-position") == "completion":
        new_tokens = (config.max_seq_len - 1) // 2 + 1  # the longest prompt's outputs + EOS
    else:
        new_tokens = 1
    return {"do_sample": False, "num_beams": 1, "bos_token_id": table.bos_id,
            "eos_token_id": table.eos_id, "pad_token_id": table.pad_id,
            "max_new_tokens": new_tokens}


def save_hf(model, directory: str | os.PathLike, description: str | None = None) -> list[Path]:
    """Write `model`'s Hugging Face directory (see the module docstring); returns the files.
    Deterministic: the same model gives byte-identical files."""
    from interp.tl_export import write_safetensors, write_ground_truth
    from rasp_runtime.checksum import export_manifest
    from rasp_runtime.serialize import EXPORT_MODEL_NAME, save_model

    config, generation, arrays = _export_parts(model)
    directory = Path(directory)
    if directory.suffix in (".npz", ".json") or directory.is_file():
        raise ModelFileError(f"{directory} must be a directory for format 'hf'")
    directory.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(directory)
    generation.save_pretrained(directory)
    write_safetensors(directory / "model.safetensors", arrays)
    written = [directory / name for name in HF_MODEL_FILES]
    tokenizer = hf_tokenizer(token_table(model.config), config.n_positions)
    written += [Path(p) for p in tokenizer.save_pretrained(directory)]
    written.append(directory / GROUND_TRUTH)
    write_ground_truth(written[-1], model.ground_truth, model.config)
    ours = save_model(model, directory / EXPORT_MODEL_NAME, description,
                      sections={"export_files": export_manifest(written)})
    return written + list(ours)
