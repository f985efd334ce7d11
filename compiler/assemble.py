"""Layers + residual layout → haiku parameters, config and encoders.

Parameter names follow haiku conventions: `token_embed`, `pos_embed`,
`transformer/layer_{i}/attn/{query,key,value,linear}`,
`transformer/layer_{i}/mlp/{linear_1,linear_2}` and `unembed`. A layer's
attention or MLP half is absent when nothing runs there. W_Q is multiplied by
√key_size so haiku-style 1/√key_size attention reproduces the craft logits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from compiler.graph import ProgramGraph
from compiler.schedule import Schedule
from craft.bases import BOS, ONE, VectorSpace, zeros_matrix
from craft.blocks import combine_mlps
from rasp import expr as rx
from rasp_runtime.config import LayerConfig, Params

def assemble_params(graph: ProgramGraph, spaces: dict[int, VectorSpace], residual: VectorSpace,
                    schedule: Schedule, vocab: tuple[Any, ...],
                    max_seq_len: int) -> tuple[Params, tuple[LayerConfig, ...]]:
    """The haiku parameter dict of the compiled model (float32) and per-layer shapes."""
    params: Params = {
        "token_embed": {"embeddings": _token_embeddings(graph, spaces, residual, vocab)},
        "pos_embed": {"embeddings": _position_embeddings(graph, spaces, residual, max_seq_len)},
    }
    configs = []
    for i, layer in enumerate(schedule.layers):
        prefix = f"transformer/layer_{i}"
        key_size = value_size = hidden_width = 0
        if layer.heads:
            weights, key_size, value_size = _attention(layer.heads, residual)
            params.update({f"{prefix}/attn/{k}": v for k, v in weights.items()})
        # An MLP half with no hidden units (its SOps have no possible value) computes
        # nothing; the config says "no MLP" then, so it gets no parameters either.
        if sum(m.hidden_space.dim for m in layer.mlps):
            # One MLP embeds as it is (combining it would copy it twice to the same weights).
            mlp = layer.mlps[0] if len(layer.mlps) == 1 else combine_mlps(list(layer.mlps))
            hidden = mlp.hidden_space
            hidden_width = hidden.dim
            params[f"{prefix}/mlp/linear_1"] = _linear(
                mlp.first.in_spaces(residual, hidden, np.float32))
            params[f"{prefix}/mlp/linear_2"] = _linear(
                mlp.second.in_spaces(hidden, residual, np.float32))
        configs.append(LayerConfig(len(layer.heads), key_size, value_size, hidden_width))
    params["unembed"] = {"w": residual.project_matrix(spaces[graph.output]).astype(np.float32)}
    return params, tuple(configs)


def weight_count(schedule: Schedule, residual: VectorSpace, output_dim: int, vocab_size: int,
                 max_seq_len: int) -> int:
    """How many weights `assemble_params` would give these layers, without building them."""
    d = residual.dim
    count = (vocab_size + 2 + max_seq_len + 1) * d + d * output_dim  # embeddings, unembed
    for layer in schedule.layers:
        if layer.heads:
            n = len(layer.heads)
            keys = n * max(max(h.w_qk.key_space.dim for h in layer.heads), 1)
            values = n * max(max(h.w_ov.output_space.dim for h in layer.heads), 1)
            count += 2 * (d + 1) * keys + (d + 1) * values + (values + 1) * d
        hidden = sum(m.hidden_space.dim for m in layer.mlps)
        if hidden:
            count += (d + 1) * hidden + (hidden + 1) * d
    return count


def _linear(w: np.ndarray) -> dict[str, np.ndarray]:
    """A haiku Linear's parameters: `w` in float32 (as it is if it is already), zero bias."""
    return {"w": w.astype(np.float32, copy=False), "b": np.zeros(w.shape[1], np.float32)}


def _attention(heads, residual: VectorSpace):
    """Stacked per-head W_Q, W_K, W_V, W_O, and the key and value sizes."""
    key_size = max(max(h.w_qk.key_space.dim for h in heads), 1)
    value_size = max(max(h.w_ov.output_space.dim for h in heads), 1)
    d, n = residual.dim, len(heads)
    # float32 throughout: each float64 entry is rounded once, on assignment
    query = zeros_matrix(d, n * key_size, np.float32)
    key = zeros_matrix(d, n * key_size, np.float32)
    value = zeros_matrix(d, n * value_size, np.float32)
    linear = zeros_matrix(n * value_size, d, np.float32)
    for i, head in enumerate(heads):  # each head's directions placed by index arrays
        qk, ov = head.w_qk, head.w_ov
        keys, values = i * key_size, i * value_size  # the head's first columns
        q_from, q_to = qk.query_space.shared_positions(residual)
        query[q_to, keys:keys + qk.key_space.dim] = qk.matrix[q_from] * math.sqrt(key_size)
        k_from, k_to = qk.key_space.shared_positions(residual)
        key[k_to, keys + k_from] = 1.0
        v_from, v_to = ov.input_space.shared_positions(residual)
        value[v_to, values:values + ov.output_space.dim] = ov.matrix[v_from]
        o_from, o_to = ov.output_space.shared_positions(residual)
        linear[values + o_from, o_to] = 1.0
    return {"query": _linear(query), "key": _linear(key), "value": _linear(value),
            "linear": _linear(linear)}, key_size, value_size


def _embed_values(table: np.ndarray, first_row: int, values, expr, space: VectorSpace,
                  residual: VectorSpace) -> None:
    """Adds `expr`'s value in each row from `first_row` on (None: nothing) to `table`.

    The value's one direction per row (its one-hot, or its number), so every entry is
    added to once: one float32 add per entry, as row by row."""
    if not space.basis:
        return
    index, name = residual.index, space.basis[0].name
    numerical = rx.is_numerical(expr)
    cells = []  # (row, column, amount)
    for row, value in enumerate(values, start=first_row):
        if value is None:
            continue
        # a BasisDirection is the tuple (name, value): it finds its key in the index
        column = index.get(space.basis[0] if numerical else (name, value))
        if column is not None:
            cells.append((row, column, float(value) if numerical else 1.0))
    if cells:
        rows, columns, amounts = zip(*cells)
        table[list(rows), list(columns)] += np.array(amounts, np.float32)


def _token_embeddings(graph, spaces, residual, vocab) -> np.ndarray:
    table = np.zeros((len(vocab) + 2, residual.dim), np.float32)
    table[0, residual.index[BOS]] = 1.0
    if ONE in residual:  # the first write to that column: 0 + 1 is 1
        table[1:len(vocab) + 1, residual.index[ONE]] = 1.0
    for node in graph.order:
        if isinstance(graph.expr(node), rx.TokensType):
            _embed_values(table, 1, vocab, graph.expr(node), spaces[node], residual)
    for node in graph.order:
        if isinstance(graph.expr(node), rx.Full):
            _embed_values(table, 1, [graph.expr(node).fill] * len(vocab), graph.expr(node),
                          spaces[node], residual)
    return table  # the last row, PAD, stays zero


def _position_embeddings(graph, spaces, residual, max_seq_len) -> np.ndarray:
    table = np.zeros((max_seq_len + 1, residual.dim), np.float32)
    for node in graph.order:
        expr = graph.expr(node)
        if isinstance(expr, rx.IndicesType):
            values = range(max_seq_len)
        elif isinstance(expr, rx.ConstantSOp):
            values = [expr.value[p] if p < len(expr.value) else None for p in range(max_seq_len)]
        else:
            continue
        _embed_values(table, 1, values, expr, spaces[node], residual)
    return table
