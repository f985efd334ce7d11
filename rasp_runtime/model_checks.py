"""Checks that a loaded model's parts agree with each other, before anything runs it.

`check_model` takes a model rebuilt from a file and raises one ModelFileError for the
first disagreement: config vs parameter shapes (layers, heads, key/value sizes, MLP
widths, d_model, vocabulary, max_seq_len, output values), non-finite weights, value
records, components and alignment sites that point outside the model. It runs on
every load, checksummed or not: the checksum says the file is what was saved, these
checks say the forward pass can run it and its ground truth describes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rasp.errors import ModelFileError
from rasp_runtime.config import NORMALIZATIONS

ACTIVATIONS = ("relu",)  # rasp_runtime.forward's (named here: these checks never import jax)

# Far beyond any compiled model (the position embedding has max_seq_len + 1 rows);
# a larger number in a file is corruption, not a model.
MAX_SEQ_LEN_LIMIT = 1 << 20
EMBEDDING_SITES = ("hook_embed", "hook_pos_embed")


def whole_number(value: Any, what: str, low: int = 0, high: int | None = None) -> int:
    """`value` if it is an int (not a bool or float) in [low, high], else ModelFileError."""
    if type(value) is not int or value < low or (high is not None and value > high):
        bounds = f"from {low}" + ("" if high is None else f" to {high}")
        raise ModelFileError(f"{what} must be a whole number {bounds}, not {value!r:.40}")
    return value


def expected_shapes(config) -> dict[str, dict[str, tuple[int, ...]]]:
    """Module -> parameter -> shape, as the forward pass (rasp_runtime.forward) reads them."""
    d = config.d_model
    shapes = {"token_embed": {"embeddings": (config.vocab_size, d)},
              "pos_embed": {"embeddings": (config.max_seq_len + 1, d)}}
    for i, layer in enumerate(config.layers):
        prefix = f"transformer/layer_{i}"
        if layer.num_heads:
            keys, values = layer.num_heads * layer.key_size, layer.num_heads * layer.value_size
            for name, width in (("query", keys), ("key", keys), ("value", values)):
                shapes[f"{prefix}/attn/{name}"] = {"w": (d, width), "b": (width,)}
            shapes[f"{prefix}/attn/linear"] = {"w": (values, d), "b": (d,)}
        if layer.mlp_hidden:
            shapes[f"{prefix}/mlp/linear_1"] = {"w": (d, layer.mlp_hidden),
                                                "b": (layer.mlp_hidden,)}
            shapes[f"{prefix}/mlp/linear_2"] = {"w": (layer.mlp_hidden, d), "b": (d,)}
    if config.normalization == "layernorm":  # one LayerNorm before each sublayer, one final
        norm = {"scale": (d,), "offset": (d,)}
        for i, layer in enumerate(config.layers):
            for name, present in (("ln_1", layer.num_heads), ("ln_2", layer.mlp_hidden)):
                if present:
                    shapes[f"transformer/layer_{i}/{name}"] = dict(norm)
        shapes["transformer/ln_final"] = dict(norm)
    width = 1 if config.output_numerical else len(config.output_values)
    shapes["unembed"] = {"w": (d, width)}
    return shapes


def check_model(model) -> None:
    """Raise ModelFileError, saying what disagrees, unless `model`'s parts agree."""
    _check_config(model.config)
    _check_params(model.params, model.config)
    _check_residual(model)
    _check_records(model)
    _check_components(model)
    _check_alignment(model)


def _check_config(config) -> None:
    if config.normalization not in NORMALIZATIONS or config.activation not in ACTIVATIONS:
        raise ModelFileError(f"config asks for normalisation {config.normalization!r:.40} and "
                             f"activation {config.activation!r:.40}; the forward runs "
                             f"{NORMALIZATIONS} and {ACTIVATIONS}")
    eps = config.layer_norm_eps
    if type(eps) not in (int, float) or not 0 <= eps < float("inf"):
        raise ModelFileError(f"config.layer_norm_eps must be a finite number ≥ 0, not "
                             f"{eps!r:.40}")
    whole_number(config.max_seq_len, "config.max_seq_len", 1, MAX_SEQ_LEN_LIMIT)
    whole_number(config.d_model, "config.d_model", 1)
    for i, layer in enumerate(config.layers):
        heads = whole_number(layer.num_heads, f"config.layers[{i}].num_heads")
        for name in ("key_size", "value_size"):
            whole_number(getattr(layer, name), f"config.layers[{i}].{name}", 1 if heads else 0)
        whole_number(layer.mlp_hidden, f"config.layers[{i}].mlp_hidden")
    tokens = [*config.vocab, config.bos, config.pad]
    if len(set(tokens)) != len(tokens):
        raise ModelFileError("the vocabulary, BOS and PAD tokens are not all distinct")
    if not config.output_numerical and len(set(config.output_values)) != \
            len(config.output_values):
        raise ModelFileError("config.output_values repeats a value")
    _check_form(config)


def _check_form(config) -> None:
    if config.form == "per-position":
        return
    if config.form != "completion":
        raise ModelFileError(f"config.form must be 'per-position' or 'completion', got "
                             f"{config.form!r}")
    missing = [t for t in (config.sep, config.eos, *config.prompt_vocab)
               if t not in config.vocab]
    if missing or not config.prompt_vocab or config.max_seq_len % 2 != 1:
        raise ModelFileError("a completion model needs its SEP, EOS and prompt tokens in "
                             "the vocabulary and an odd max_seq_len (2n + 1), got "
                             f"{missing!r} missing, max_seq_len {config.max_seq_len}")


def _check_params(params, config) -> None:
    expected = expected_shapes(config)
    missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or extra:
        raise ModelFileError(f"config.layers ({len(config.layers)} layers) does not match the "
                             f"parameters: missing {missing[:3] or 'none'}, unexpected "
                             f"{extra[:3] or 'none'}")
    for module, shapes in expected.items():
        if set(params[module]) != set(shapes):
            raise ModelFileError(f"parameter module {module} has {sorted(params[module])}, "
                                 f"expected {sorted(shapes)}")
        for name, shape in shapes.items():
            array = params[module][name]
            if array.dtype != np.float32 or array.shape != shape:
                raise ModelFileError(
                    f"parameter {module}/{name} is {array.dtype} {array.shape}, but the config "
                    f"(d_model {config.d_model}, vocabulary of {len(config.vocab)}, "
                    f"max_seq_len {config.max_seq_len}, the layer shapes, "
                    f"{len(config.output_values)} output values) needs float32 {shape}")
            if not np.isfinite(array).all():
                raise ModelFileError(f"parameter {module}/{name} holds NaN or infinite weights")


def _check_residual(model) -> None:
    labels = model.residual_labels
    if len(labels) != model.config.d_model or not all(isinstance(l, str) for l in labels):
        raise ModelFileError(f"residual_labels has {len(labels)} entries for d_model "
                             f"{model.config.d_model}")
    if len(set(labels)) != len(labels):
        raise ModelFileError("residual_labels repeats a label")


def _check_records(model) -> None:
    d, sublayers = model.config.d_model, 2 * len(model.config.layers)
    for label, record in model.value_records.items():
        what = f"value record {label!r}"
        dims = [whole_number(i, f"{what}: a dim", 0, d - 1) for i in record.dims]
        if len(set(dims)) != len(dims):
            raise ModelFileError(f"{what} repeats a residual dim")
        size = 1 if record.numerical else len(record.values)
        if len(dims) != size:
            raise ModelFileError(f"{what} has {len(dims)} dims for {size} values")
        whole_number(record.sublayer, f"{what}: sublayer", -1, sublayers - 1)
    config = model.config
    output = model.value_records.get(config.output_label)
    if output is None or output.numerical != config.output_numerical:
        raise ModelFileError(f"no {'numerical' if config.output_numerical else 'categorical'} "
                             f"value record for the output {config.output_label!r}")


def _check_components(model) -> None:
    layers, labels = model.config.layers, set(model.residual_labels)
    for c in model.components:
        layer = whole_number(c.layer, "a component's layer", 0, len(layers) - 1)
        shape, what = layers[layer], f"component {c.kind} in layer {layer}"
        if c.kind == "attn":
            whole_number(c.head, f"{what}: head", 0, shape.num_heads - 1)
        elif c.kind == "mlp" and c.head is None and shape.mlp_hidden:
            start, stop = c.hidden if c.hidden is not None else (0, shape.mlp_hidden)
            whole_number(start, f"{what}: first hidden unit", 0, shape.mlp_hidden)
            whole_number(stop, f"{what}: last hidden unit", start, shape.mlp_hidden)
        else:
            raise ModelFileError(f"{what} (head {c.head!r}) is not a head or MLP of the model")
        unknown = sorted((set(c.reads) | set(c.writes)) - labels, key=str)
        if unknown:
            raise ModelFileError(f"{what} reads or writes {unknown[:3]}, not residual labels")


def _check_alignment(model) -> None:
    if model.saved_alignment is None:
        return
    ids, mlps = set(EMBEDDING_SITES), {}
    for c in model.components:  # the ids compiler.ground_truth gives them
        if c.kind == "mlp":
            mlps[c.layer] = mlps.get(c.layer, -1) + 1
        ids.add(f"L{c.layer}.H{c.head}" if c.kind == "attn" else f"L{c.layer}.M{mlps[c.layer]}")
    for label, sites in model.saved_alignment.items():
        for site in sites:
            if site.component not in ids:
                raise ModelFileError(f"the alignment puts {label!r} at {site.component!r}, "
                                     "not a component of the model")
