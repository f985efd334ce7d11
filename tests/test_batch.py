"""The fast batched path (rasp_runtime.batch): same outputs as one-at-a-time decoding, id-array
inputs, chunking, residuals on request, and clear errors for malformed id arrays."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from rasp.errors import InputError
from rasp_runtime import batch as fast

INPUTS_PER_EXAMPLE = 1000


def reference_decoded(model, batch):
    """The pre-existing path: the full forward pass, every position decoded on its own."""
    ids = model.input_encoder.encode_batch(batch, model.config.max_seq_len + 1)
    pad = model.input_encoder.encoding_map[model.config.pad]
    logits = np.asarray(model._jitted(model.params, ids, ids != pad)["output"])
    return [[model.config.bos] + [model.output_encoder.decode(row) for row in rows[1:len(seq)]]
            for rows, seq in zip(logits, batch)]


@pytest.fixture(scope="module")
def reverse_model():
    return compile_rasp_to_model(EXAMPLES["reverse"].build(6), {"a", "b", "c"}, 6)


def sample_batch(example, n: int, count: int, seed: int = 0):
    rng = random.Random(seed)
    return [[ "BOS", *example.sample(rng, n)] for _ in range(count)]


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_example_decodes_as_the_one_position_path(name):
    example = EXAMPLES[name]
    model = compile_rasp_to_model(example.build(example.max_seq_len), set(example.vocab),
                                  example.max_seq_len, example.causal)
    batch = sample_batch(example, example.max_seq_len, INPUTS_PER_EXAMPLE)
    decoded = model.apply_batch(batch)
    assert decoded == reference_decoded(model, batch)
    assert model.apply_batch(model.input_encoder.encode_batch(batch)) == decoded
    assert [model.apply(xs).decoded for xs in batch[:20]] == decoded[:20]


def test_decoded_values_are_the_models_own_objects(reverse_model):
    values = {id(v) for v in reverse_model.config.output_values}
    decoded = reverse_model.apply_batch([["BOS", "a", "b", "c"]])[0]
    assert decoded == ["BOS", "c", "b", "a"]
    assert all(id(v) in values for v in decoded[1:])


def test_chunks_give_the_same_outputs_with_few_traces(reverse_model, monkeypatch):
    batch = sample_batch(EXAMPLES["reverse"], 6, 37, seed=3)
    expected = reverse_model.apply_batch(batch)
    monkeypatch.setattr(fast, "MAX_CHUNK_ROWS", 4)
    assert fast.chunk_rows(reverse_model) == 4
    before = reverse_model._jitted_outputs._cache_size()
    assert reverse_model.apply_batch(batch) == expected
    # 37 rows in chunks of 4: full chunks of 4, then one of 1 (bucketed to 1).
    assert reverse_model._jitted_outputs._cache_size() - before <= 2


def test_sub_chunks_inside_the_jitted_call_give_the_same_outputs(monkeypatch):
    monkeypatch.setattr(fast, "SUB_CHUNK_FLOATS", 2**12)  # a few rows per sub-chunk
    example = EXAMPLES["sort"]
    model = compile_rasp_to_model(example.build(8), set(example.vocab), 8)
    assert fast.sub_chunk_rows(model.config) < 16
    batch = sample_batch(example, 8, 300, seed=5)
    assert model.apply_batch(batch) == reference_decoded(model, batch)


def test_a_chunk_split_between_threads_gives_the_same_outputs(monkeypatch):
    monkeypatch.setattr(fast, "SUB_CHUNK_FLOATS", 2**12)
    monkeypatch.setattr(fast, "workers", lambda: 4)
    example = EXAMPLES["sort"]
    model = compile_rasp_to_model(example.build(8), set(example.vocab), 8)
    sub = fast.sub_chunk_rows(model.config)
    batch = sample_batch(example, 8, 4 * sub + 3, seed=6)  # bucketed to 8 sub-chunks
    calls = []  # (rows, thread) of each jitted call
    jitted = model._jitted_outputs
    model.__dict__["_jitted_outputs"] = lambda p, ids, valid: calls.append(
        (ids.shape, threading.current_thread())) or jitted(p, ids, valid)
    assert model.apply_batch(batch) == reference_decoded(model, batch)
    assert [shape for shape, _ in calls] == [(2 * sub, 9)] * 4  # two sub-chunks each
    threads = {thread for _, thread in calls}
    assert len(threads) > 1 and threading.main_thread() not in threads  # parts run at once


def test_tuple_and_array_rows_encode_as_lists(reverse_model):
    batch = sample_batch(EXAMPLES["reverse"], 6, 20, seed=4)
    expected = reverse_model.apply_batch(batch)
    assert reverse_model.apply_batch([tuple(row) for row in batch]) == expected
    arrays = [np.array(row, object) for row in batch]
    assert reverse_model.apply_batch(arrays) == expected


def test_chunk_rows_bound_the_activation_memory():
    model = compile_rasp_to_model(EXAMPLES["length"].build(40), {"a", "b"}, 40)
    rows = fast.chunk_rows(model)
    seq = model.config.max_seq_len + 1
    widest = max(model.config.d_model, *(l.mlp_hidden for l in model.config.layers))
    assert rows & (rows - 1) == 0  # a power of two
    assert rows * seq * widest * 4 <= fast.CHUNK_FLOATS


def test_residuals_on_request_match_apply(reverse_model):
    batch = [["BOS", "a"], ["BOS", "c", "a", "b"]]
    out = reverse_model.apply_batch(batch, return_residuals=True)
    assert out.decoded == reverse_model.apply_batch(batch)
    for row, tokens in enumerate(batch):
        single = reverse_model.apply(tokens)
        for mine, theirs in zip(out.residuals, single.residuals):
            np.testing.assert_array_equal(mine[row, :len(tokens)], theirs)


def test_empty_batch(reverse_model):
    assert reverse_model.apply_batch([]) == []
    assert reverse_model.apply_batch(np.zeros((0, 3), np.int32)) == []


@pytest.mark.parametrize("ids, message", [
    (np.array([[1, 1, 2]]), "start with the BOS id"),
    (np.array([[0, 4, 1]]), "a token follows a PAD"),
    (np.array([[0, 1, 0]]), "only in the first column"),
    (np.array([[0, 9]]), "must lie in"),
    (np.zeros((1, 9), np.int32), "more than max_seq_len"),
    (np.array([0, 1]), "2-D"),
    (np.array([[0.0, 1.0]]), "2-D integers"),
])
def test_malformed_id_arrays_are_refused(reverse_model, ids, message):
    with pytest.raises(InputError, match=message):
        reverse_model.apply_batch(ids)


def test_bad_token_lists_name_the_problem(reverse_model):
    with pytest.raises(InputError, match="not in the vocabulary"):
        reverse_model.apply_batch([["BOS", "a"], ["BOS", "z"]])
    with pytest.raises(InputError, match="BOS"):
        reverse_model.apply_batch([["a", "b"]])
    with pytest.raises(InputError, match="max_seq_len"):
        reverse_model.apply_batch([["BOS"] + ["a"] * 7])
    with pytest.raises(InputError, match="list of token lists"):
        reverse_model.apply_batch("BOS a")
    with pytest.raises(InputError, match="position 2 is not in the vocabulary"):
        reverse_model.apply_batch([["BOS", "a"], ["BOS", "a", "BOS"]])
    with pytest.raises(InputError, match="BOS"):
        reverse_model.apply_batch([["BOS", "a"], []])
    with pytest.raises(InputError, match="list"):
        reverse_model.apply_batch([["BOS", "a"], "BOS"])
