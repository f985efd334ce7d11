"""interp/compress_fold.py on hand-made parameters (d_model 3, width 2), worked out on paper.

Written to kill the mutants `make mutation` found alive (docs/mutation.md). With
    W = [[1, 0,  2],
         [0, 1, -1]]
whatever wrote x into the residual now writes x·Wᵀ, whatever read it reads through
W·w; every product below is done by hand. The random start is checked against
Gram–Schmidt on the same Gaussian matrix, not against another QR.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from interp.circuits import example_model
from interp.compress_fold import (fold, fold_numpy, initial_projection, narrow_config,
                                  narrow_labels)

W = np.array([[1, 0, 2], [0, 1, -1]], np.float32)
READ = np.array([[1, 0], [0, 1], [1, 1]], np.float32)  # d_model × 2
PARAMS = {
    "token_embed": {"embeddings": np.array([[1, 2, 3], [0, 1, 0]], np.float32)},
    "pos_embed": {"embeddings": np.array([[0, 0, 1]], np.float32)},
    "transformer/layer_0/attn/query": {"w": READ, "b": np.array([5, 6], np.float32)},
    "transformer/layer_0/attn/key": {"w": READ, "b": np.array([7, 8], np.float32)},
    "transformer/layer_0/attn/value": {"w": READ, "b": np.array([0, 1], np.float32)},
    "transformer/layer_0/attn/linear": {"w": np.array([[1, 1, 1], [0, 0, 1]], np.float32),
                                        "b": np.array([1, 0, 1], np.float32)},
    "transformer/layer_0/mlp/linear_1": {"w": READ, "b": np.array([2, 3], np.float32)},
    "transformer/layer_0/mlp/linear_2": {"w": np.array([[0, 1, 0]], np.float32),
                                         "b": np.array([0, 0, 2], np.float32)},
    "unembed": {"w": READ},
}
READ_FOLDED = [[3, 2], [-1, 0]]  # W·READ
WANT = {
    "token_embed": {"embeddings": [[7, -1], [0, 1]]},
    "pos_embed": {"embeddings": [[2, -1]]},
    "transformer/layer_0/attn/query": {"w": READ_FOLDED, "b": [5, 6]},
    "transformer/layer_0/attn/key": {"w": READ_FOLDED, "b": [7, 8]},
    "transformer/layer_0/attn/value": {"w": READ_FOLDED, "b": [0, 1]},
    "transformer/layer_0/attn/linear": {"w": [[3, 0], [2, -1]], "b": [3, -1]},
    "transformer/layer_0/mlp/linear_1": {"w": READ_FOLDED, "b": [2, 3]},
    "transformer/layer_0/mlp/linear_2": {"w": [[0, 1]], "b": [4, -2]},
    "unembed": {"w": READ_FOLDED},
}


def assert_params_equal(got, want):
    assert {m: set(weights) for m, weights in got.items()} == \
        {m: set(weights) for m, weights in want.items()}
    for module, weights in want.items():
        for name, value in weights.items():
            np.testing.assert_array_equal(np.asarray(got[module][name]), value,
                                          err_msg=f"{module}/{name}")


def test_fold_by_hand():
    assert_params_equal(fold(PARAMS, W), WANT)


def test_fold_numpy_gives_float32_numpy_arrays():
    folded = fold_numpy(PARAMS, W.astype(np.float64))
    assert_params_equal(folded, WANT)
    assert all(type(a) is np.ndarray and a.dtype == np.float32
               for weights in folded.values() for a in weights.values())


def test_a_module_that_is_neither_a_reader_nor_a_writer_is_refused():
    params = {**PARAMS, "transformer/layer_0/ln1": {"scale": np.ones(3, np.float32)}}
    with pytest.raises(ValueError, match=r"^cannot fold parameter module "
                                         r"'transformer/layer_0/ln1': it is neither an "
                                         r"embedding nor a known residual reader or writer$"):
        fold(params, W)


def test_narrow_config_changes_only_the_width():
    config = example_model("reverse").config
    narrow = narrow_config(config, 7)
    assert narrow.d_model == 7
    assert {f.name: getattr(narrow, f.name) for f in dataclasses.fields(config)
            if f.name != "d_model"} == \
        {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
         if f.name != "d_model"}


def test_narrow_labels():
    assert narrow_labels(3) == ["narrow:0", "narrow:1", "narrow:2"]


@pytest.mark.parametrize("dim", [1, 3, 4])
def test_the_random_start_is_gram_schmidt_on_a_gaussian(dim):
    key = jax.random.PRNGKey(5)
    gaussian = np.asarray(jax.random.normal(key, (4, 4)), np.float64)
    rows = []
    for column in gaussian.T:  # Gram–Schmidt: the QR whose R has a positive diagonal
        v = column - sum((q @ column) * q for q in rows)
        rows.append(v / np.linalg.norm(v))
    w = np.asarray(initial_projection(key, dim, 4))
    assert w.shape == (dim, 4) and w.dtype == np.float32
    np.testing.assert_allclose(w, np.array(rows[:dim]), atol=1e-5)
    np.testing.assert_allclose(w @ w.T, np.eye(dim), atol=1e-5)
