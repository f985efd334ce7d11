"""Running a compiled model against its ground truth: every intermediate value decoded
from the residual stream, the raw forward outputs of a batch, and components ablated.

These take a `CompiledModel` and give plain values; `compiler.ground_truth` says what
each component computes, this module runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from rasp_runtime.batch import encode_batch
from rasp_runtime.fork_safety import check_can_run


def decode_intermediates(model, tokens: Sequence[Any]) -> dict[str, list[Any]]:
    """Every recorded expression's value at positions 1..n, decoded from the residual.

    Each value is read from the residual just after the sublayer that writes it
    (`ValueRecord.decode` on `apply(tokens).residuals[sublayer + 1]`).
    """
    return _decode(model, model.apply(tokens).residuals, len(tokens))


def decode_intermediates_batch(model, batch: Sequence[Sequence[Any]],
                               params=None) -> list[dict[str, list[Any]]]:
    """`decode_intermediates` of many inputs (each starting with BOS) in one forward pass."""
    residuals = run_batch(model, batch, params)["residuals"]
    return [_decode(model, [r[row] for r in residuals], len(tokens))
            for row, tokens in enumerate(batch)]


def _decode(model, residuals, length: int) -> dict[str, list[Any]]:
    if model.knobs:  # a rotated residual: back to the named coordinates the records index
        named = model.ground_truth.named
        residuals = [named(r) for r in residuals]
    return {label: [record.decode(row) for row in residuals[record.sublayer + 1][1:length]]
            for label, record in model.value_records.items()}


def run_batch(model, batch: Sequence[Sequence[Any]], params=None) -> dict[str, Any]:
    """The raw forward outputs (numpy) of a batch of inputs, each starting with BOS.

    `params` (default: the model's) may be e.g. `ablated_params(...)`; the model's
    jitted function is reused, so equal batch sizes trace once.
    """
    check_can_run()
    ids = encode_batch(model, batch)  # validates each input
    pad = model.input_encoder.encoding_map[model.config.pad]
    out = model._jitted(model.params if params is None else params, ids, ids != pad)
    return jax.tree_util.tree_map(np.asarray, out)  # None logits (no heads) stay None


def ablated_params(model, component_ids: Sequence[str]):
    """A copy of model.params with the given components zeroed.

    A head loses its W_V columns (it then writes nothing); an MLP block loses
    its hidden units (their linear_1 columns and linear_2 rows).
    """
    truth = model.ground_truth
    params = {name: dict(p) for name, p in model.params.items()}

    def zero(name, key, index):
        array = np.array(params[name][key])
        array[index] = 0.0
        params[name][key] = array

    for component_id in component_ids:
        c = truth.component(component_id)
        if c.kind == "attn":
            size = model.config.layers[c.layer].value_size
            cols = slice(c.head * size, (c.head + 1) * size)
            name = f"transformer/layer_{c.layer}/attn/value"
            zero(name, "w", (slice(None), cols))
            zero(name, "b", cols)
        else:
            if c.hidden is None:
                raise ValueError(f"{c.id}: its hidden-unit range was not recorded")
            units = slice(*c.hidden)
            zero(f"transformer/layer_{c.layer}/mlp/linear_1", "w", (slice(None), units))
            zero(f"transformer/layer_{c.layer}/mlp/linear_1", "b", units)
            zero(f"transformer/layer_{c.layer}/mlp/linear_2", "w", (units, slice(None)))
    return params
