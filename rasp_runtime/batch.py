"""The fast batched path: token lists or id arrays → decoded outputs, in bounded chunks.

Encoding checks every token once with one dict lookup; the jitted function returns
only what decoding needs (the best column and whether it clears the threshold, or
the number), so the residuals never leave XLA; decoding indexes an object array.
Batch sizes are rounded up to powers of two, so jit traces at most log2(chunk) times.
Inside the jitted call a chunk runs as a loop over cache-sized sub-chunks, and a chunk
of several sub-chunks is split between one thread per core (`workers`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from rasp.errors import InputError
from rasp_runtime.fork_safety import check_can_run
from rasp_runtime.representable import fast_types, unmatched_kind

if TYPE_CHECKING:
    from rasp_runtime.model import CompiledModel

# Floats of activation memory one chunk may use (about 1 GiB in float32), and the most
# rows per chunk: beyond that throughput no longer grows on a CPU.
CHUNK_FLOATS = 2**28
MAX_CHUNK_ROWS = 4096
# Floats of the widest activation one sub-chunk may use inside the jitted call (4 MiB):
# the compiled models are narrow, so their matmuls are memory-bound on whole chunks;
# run on sub-chunks that stay in a core's cache they reach about twice the FLOP rate
# (measured at N = 16 by benchmarks/run.py: the best sub-chunk was 64-256 rows).
SUB_CHUNK_FLOATS = 2**20
# Threads a chunk is split between, at most: XLA's own threads leave these narrow models'
# cores partly idle, and jax releases the GIL while a call runs, so one call per core on
# part of the chunk is faster (1.1-1.4x on 2 cores at N = 16, benchmarks/run.py).
MAX_WORKERS = 4


@dataclasses.dataclass(frozen=True)
class BatchOutput:
    """`apply_batch(..., return_residuals=True)`: the decoded outputs and, per sublayer,
    the residual stream of every sequence (batch, max_seq_len + 1, d_model), PAD included."""

    decoded: list[list[Any]]
    residuals: list[np.ndarray]


def encode_batch(model: CompiledModel, batch) -> np.ndarray:
    """Token lists (each starting with BOS) or an int array of ids → (batch, max_seq_len + 1)
    int32 ids padded with PAD. Raises InputError naming the first bad sequence."""
    config = model.config
    width = config.max_seq_len + 1
    pad = len(config.vocab) + 1
    if isinstance(batch, np.ndarray) or hasattr(batch, "__array__"):
        return _checked_ids(np.asarray(batch), width, pad)
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence):
        raise InputError(f"apply_batch takes a list of token lists or an int array of ids, "
                         f"got {type(batch).__name__}")
    lookup = {token: i for i, token in enumerate(config.vocab, 1)}
    plain = fast_types(config.vocab, (config.bos, config.pad))
    ids = _encode_lists(batch, {config.bos: 0, **lookup}, width, pad, plain)
    return ids if ids is not None else _encode_rows(model, batch, lookup, width, pad)


def _encode_lists(batch, lookup: dict, width: int, pad: int,
                  plain_types: frozenset[type] | None) -> np.ndarray | None:
    """Every row at once (one dict lookup per token, BOS included, and no per-row numpy
    call), or None when a row is not a list or tuple, holds a token of a type whose kind
    must be checked (not in `plain_types`, unless that is None: True equals 1), or is
    malformed: then _encode_rows says which."""
    if not batch or not all(type(tokens) in (list, tuple) for tokens in batch):
        return None
    if plain_types is not None and \
            not set(map(type, chain.from_iterable(batch))) <= plain_types:
        return None
    lengths = np.fromiter(map(len, batch), np.intp, len(batch))
    try:
        flat = np.fromiter(map(lookup.__getitem__, chain.from_iterable(batch)), np.int32,
                           int(lengths.sum()))
    except (KeyError, TypeError):
        return None
    starts = np.cumsum(lengths) - lengths
    if (lengths.min() < 1 or lengths.max() > width or np.any(flat[starts] != 0)
            or np.count_nonzero(flat == 0) != len(batch)):  # BOS first, and only there
        return None
    ids = np.full((len(batch), width), pad, np.int32)
    ids[np.arange(width) < lengths[:, None]] = flat
    return ids


def _encode_rows(model: CompiledModel, batch, lookup: dict, width: int, pad: int) -> np.ndarray:
    """Row by row (`lookup`: the vocabulary's ids, BOS excluded), each token also of
    the kind of the token it equals, raising InputError (from `model._encode`) at the
    first bad row."""
    config = model.config
    ids = np.full((len(batch), width), pad, np.int32)
    for row, tokens in enumerate(batch):
        try:
            if isinstance(tokens, (str, bytes)) or tokens[0] != config.bos or len(tokens) > width:
                raise KeyError
            row_ids = [lookup[t] for t in tokens[1:]]
            if any(unmatched_kind(t, config.vocab[i - 1]) for t, i in zip(tokens[1:], row_ids)):
                raise KeyError
            ids[row, 1:len(tokens)] = row_ids
        except (KeyError, TypeError, IndexError):  # say exactly what is wrong with it
            model._encode(tokens)
            raise  # _encode accepted what the fast path refused: a bug, not user input
    ids[:, 0] = 0
    return ids


def _checked_ids(ids: np.ndarray, width: int, pad: int) -> np.ndarray:
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"an id array must be 2-D integers (batch, length), got shape "
                         f"{ids.shape} of {ids.dtype}; see model.input_encoder.encoding_map")
    if ids.shape[1] > width:
        raise InputError(f"the id array has {ids.shape[1]} columns, more than max_seq_len + 1 "
                         f"= {width} this model was compiled for")
    if ids.size and (ids.min() < 0 or ids.max() > pad):
        raise InputError(f"ids must lie in 0..{pad} (BOS = 0, PAD = {pad})")
    if len(ids) and np.any(ids[:, 0] != 0):
        raise InputError("every row of the id array must start with the BOS id 0")
    body = ids[:, 1:]
    if np.any(body == 0):
        raise InputError("the BOS id 0 may appear only in the first column")
    is_pad = body == pad
    if np.any(is_pad[:, :-1] & ~is_pad[:, 1:]):
        raise InputError(f"PAD ({pad}) may only end a row: a token follows a PAD")
    out = np.full((len(ids), width), pad, np.int32)
    out[:, :ids.shape[1]] = ids
    return out


def chunk_rows(model: CompiledModel) -> int:
    """Rows per chunk: a power of two whose activations fit in CHUNK_FLOATS."""
    return _rows_within(model.config, CHUNK_FLOATS // 4, MAX_CHUNK_ROWS)


def sub_chunk_rows(config) -> int:
    """Rows per sub-chunk inside the jitted call: a power of two within SUB_CHUNK_FLOATS."""
    return _rows_within(config, SUB_CHUNK_FLOATS, MAX_CHUNK_ROWS)


def _rows_within(config, floats: int, most: int) -> int:
    """The largest power of two ≤ `most` rows whose widest activation fits in `floats`."""
    seq = config.max_seq_len + 1
    widest = max([config.d_model] + [max(l.mlp_hidden, l.num_heads * seq,
                                         l.num_heads * max(l.key_size, l.value_size))
                                     for l in config.layers])
    rows = max(1, min(most, floats // (seq * widest)))
    return 1 << (rows.bit_length() - 1)


def make_decoder_outputs(forward_apply, numerical: bool, threshold: float, sub_rows: int):
    """A jitted (params, ids, valid) → (index, is_set) or numbers; nothing else leaves XLA.

    A batch of more than `sub_rows` rows (both powers of two) runs as a loop over
    sub-chunks of `sub_rows`: the same forward on each, in cache. (Splitting the rows
    between two independent loops, one per core, measured no faster on 2 cores.)"""
    def decoded(params, ids, valid):
        out = forward_apply(params, ids, valid)["output"]
        if numerical:
            return out[..., 0]
        if out.shape[-1] == 0:
            return jnp.zeros(out.shape[:-1], jnp.int32), jnp.zeros(out.shape[:-1], bool)
        return jnp.argmax(out, axis=-1).astype(jnp.int32), jnp.max(out, axis=-1) > threshold

    def outputs(params, ids, valid):
        rows, width = ids.shape
        if rows <= sub_rows or rows % sub_rows:  # run_batch's buckets always divide
            return decoded(params, ids, valid)
        shape = (rows // sub_rows, sub_rows, width)
        out = jax.lax.map(lambda part: decoded(params, *part),
                          (ids.reshape(shape), valid.reshape(shape)))
        return jax.tree_util.tree_map(lambda x: x.reshape(rows, width), out)
    return jax.jit(outputs)


def workers() -> int:
    """Threads a chunk is split between: the cores this process may use, up to MAX_WORKERS."""
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count() or 1)
    return max(1, min(MAX_WORKERS, usable))


@functools.cache
def _pool(size: int, pid: int) -> ThreadPoolExecutor:
    """One pool per size and process: a forked child has none of its parent's threads."""
    return ThreadPoolExecutor(size, thread_name_prefix="apply_batch")


def _outputs(model: CompiledModel, ids: np.ndarray, valid: np.ndarray):
    """The jitted outputs of one chunk (rows a power of two), in equal parts on
    `workers()` threads when each part still holds at least one sub-chunk."""
    parts = min(workers(), len(ids) // sub_chunk_rows(model.config))
    parts = 1 << (max(parts, 1).bit_length() - 1)  # a power of two divides the chunk
    if parts == 1:
        return model._jitted_outputs(model.params, ids, valid)
    step, pool = len(ids) // parts, _pool(parts, os.getpid())
    futures = [pool.submit(_run_part, model, ids[i:i + step], valid[i:i + step])
               for i in range(0, len(ids), step)]
    pieces = [future.result() for future in futures]
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *pieces)


def _run_part(model: CompiledModel, ids: np.ndarray, valid: np.ndarray):
    # Waits inside the thread, so the parts run at once rather than queue on one stream.
    return jax.tree_util.tree_map(np.asarray, model._jitted_outputs(model.params, ids, valid))


def run_batch(model: CompiledModel, batch, return_residuals: bool = False):
    """Decoded outputs of a batch (BOS first in each row), chunked; see CompiledModel.apply_batch."""
    check_can_run()
    ids = encode_batch(model, batch)
    pad = len(model.config.vocab) + 1
    lengths = (ids != pad).sum(axis=1)
    decoded: list[list[Any]] = []
    residuals: list[list[np.ndarray]] = []
    step = chunk_rows(model)
    for start in range(0, len(ids), step):
        chunk = ids[start:start + step]
        bucket = 1 << max(0, (len(chunk) - 1).bit_length())  # few shapes: few traces
        padded = np.full((bucket, ids.shape[1]), pad, np.int32)
        padded[:, 0] = 0
        padded[:len(chunk)] = chunk
        if return_residuals:
            out = model._jitted(model.params, padded, padded != pad)
            values = _decode_rows(model, np.asarray(out["output"])[:len(chunk)])
            residuals.append([np.asarray(r)[:len(chunk)] for r in out["residuals"]])
        else:
            values = _table_values(model, _outputs(model, padded, padded != pad), len(chunk))
        bos = model.config.bos
        decoded += [[bos] + row[1:n] for row, n in zip(values, lengths[start:start + step])]
    if not return_residuals:
        return decoded
    stacked = [np.concatenate(parts) for parts in zip(*residuals)] if residuals else []
    return BatchOutput(decoded, stacked)


def _table_values(model: CompiledModel, out, rows: int) -> list[list[Any]]:
    """Device outputs → per-row lists of Python values, by indexing an object table."""
    if model.config.output_numerical:
        return np.asarray(out)[:rows].tolist()
    best, is_set = (np.asarray(x)[:rows] for x in out)
    values = model.config.output_values
    table = np.empty(len(values) + 1, object)  # filled one by one: values may be tuples
    for i, value in enumerate(values):
        table[i] = value
    return table[np.where(is_set, best, len(values))].tolist()


def _decode_rows(model: CompiledModel, logits: np.ndarray) -> list[list[Any]]:
    decode = model.output_encoder.decode
    return [[decode(position) for position in row] for row in logits]
