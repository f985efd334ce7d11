"""interp.compress: the folded narrow transformer is the original with W at every read
and write; training lowers the loss and is deterministic; save/load round-trips;
exact_match and layer_cosines equal counts and cosines computed here, below 1."""

from __future__ import annotations

import math
import random

import jax
import numpy as np
import pytest

from compiler import CompiledModel, compile_rasp_to_model
from examples.library import EXAMPLES
from interp.compress import CompressedModel, compress, exact_match, layer_cosines, sampler_for
from interp.compress_fold import initial_projection
from interp.compress_train import encode_batch, make_loss
from rasp_runtime.serialize import ModelFileError

RTOL = 1e-5  # relative to the largest entry of the reference


def compiled(name: str) -> CompiledModel:
    example = EXAMPLES[name]
    return compile_rasp_to_model(example.build(example.max_seq_len), example.vocab,
                                 example.max_seq_len, example.causal)


@pytest.fixture(scope="module")
def sort_unique():
    return compiled("sort_unique")


@pytest.fixture(scope="module")
def frac_prevs():
    return compiled("frac_prevs")


def random_projection(dim: int, d_model: int, seed: int) -> np.ndarray:
    """Random orthonormal rows, the shape of a trained W. (A badly conditioned W makes
    the sharp compiled MLPs and softmaxes amplify float32 rounding past 1e-5.)"""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d_model, d_model)))
    return q[:, :dim].T.astype(np.float32)


# ---------------------------------------------------------------- reference forward
def forward_with_projection(model: CompiledModel, tokens, w: np.ndarray):
    """The ORIGINAL weights, run in float64 numpy, with W inserted by hand: every write
    x goes in as x·Wᵀ, every read of the narrow z sees z·W. Returns (narrow residuals,
    output)."""
    p = {m: {k: np.asarray(a, np.float64) for k, a in ws.items()} for m, ws in model.params.items()}
    w = np.asarray(w, np.float64)
    ids = np.array(model.input_encoder.encode(tokens))
    n = len(ids)
    x = p["token_embed"]["embeddings"][ids] + p["pos_embed"]["embeddings"][np.arange(n)]
    z = x @ w.T
    residuals = [z]
    for i, layer in enumerate(model.config.layers):
        prefix = f"transformer/layer_{i}"
        if layer.num_heads:
            read = z @ w
            h, ks, vs = layer.num_heads, layer.key_size, layer.value_size
            q, k, v = ((read @ p[f"{prefix}/attn/{name}"]["w"] + p[f"{prefix}/attn/{name}"]["b"])
                       .reshape(n, h, size) for name, size in
                       (("query", ks), ("key", ks), ("value", vs)))
            logits = np.einsum("qhk,shk->hqs", q, k) / math.sqrt(ks)
            if model.config.causal:
                logits = np.where(np.tril(np.ones((n, n), bool)), logits, -np.inf)
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            mixed = np.einsum("hqs,shv->qhv", weights, v).reshape(n, h * vs)
            out = mixed @ p[f"{prefix}/attn/linear"]["w"] + p[f"{prefix}/attn/linear"]["b"]
            z = z + out @ w.T
        residuals.append(z)
        if layer.mlp_hidden:
            read = z @ w
            hidden = np.maximum(read @ p[f"{prefix}/mlp/linear_1"]["w"]
                                + p[f"{prefix}/mlp/linear_1"]["b"], 0)
            out = hidden @ p[f"{prefix}/mlp/linear_2"]["w"] + p[f"{prefix}/mlp/linear_2"]["b"]
            z = z + out @ w.T
        residuals.append(z)
    return residuals, (z @ w) @ p["unembed"]["w"]


def assert_close(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= RTOL * scale


@pytest.mark.parametrize("name,dim", [("sort_unique", 20), ("frac_prevs", 9), ("hist", 6)])
def test_folded_forward_is_the_original_with_w_at_every_read_and_write(name, dim):
    model = compiled(name)
    w = random_projection(dim, model.config.d_model, seed=dim)
    narrow = CompressedModel(model, w)
    assert narrow.config.d_model == dim and narrow.residual_labels[0] == "narrow:0"
    sample = sampler_for(model, name)
    rng = random.Random(0)
    for _ in range(5):
        tokens = [model.config.bos, *sample(rng)]
        residuals, output = forward_with_projection(model, tokens, w)
        out = narrow.apply(tokens)
        assert len(out.residuals) == len(residuals)
        for got, want in zip(out.residuals, residuals):
            assert got.shape[1] == dim
            assert_close(got, want)
        raw = narrow.forward.apply(narrow.params, *map(np.asarray, encode_batch(
            model, [tokens[1:]])))["output"][0, :len(tokens)]
        assert_close(raw, output)


def test_identity_projection_reproduces_the_original(sort_unique):
    d = sort_unique.config.d_model
    same = CompressedModel(sort_unique, np.eye(d, dtype=np.float32))
    rng = random.Random(1)
    inputs = [EXAMPLES["sort_unique"].sample(rng) for _ in range(50)]
    batch = [["BOS", *xs] for xs in inputs]
    assert same.apply_batch(batch) == sort_unique.apply_batch(batch)
    assert exact_match(same, inputs) == 1.0
    assert layer_cosines(same, inputs) == pytest.approx([1.0] * 5, abs=1e-6)


@pytest.mark.parametrize("init", ["random", "pca"])
def test_full_width_compression_is_exact_at_once(frac_prevs, init):
    # orthonormal rows at dim = d_model: WᵀW = I, so validation agrees before any step
    full = compress(frac_prevs, frac_prevs.config.d_model, steps=50, progress=False,
                    example="frac_prevs", init=init)
    assert full.training["steps_run"] == 0 and full.training["stopped_early"]
    np.testing.assert_allclose(full.projection @ full.projection.T,
                               np.eye(full.dim), atol=1e-5)


def test_pca_start_is_exact_down_to_the_rank_the_readers_see():
    # hist: 15 residual directions, but one-hot values sum to `one`, so the residuals
    # span 12; a PCA start of that width agrees on validation before any step. (It
    # spans what the sampler produced: a value too rare to be sampled, hist = 8 from
    # eight equal tokens, may be lost, hence ≥ 99% on fresh inputs, not 100%.)
    model = compiled("hist")
    narrow = compress(model, 12, steps=10, example="hist", progress=False)
    assert narrow.training["steps_run"] == 0
    rng = random.Random(8)
    assert exact_match(narrow, [EXAMPLES["hist"].sample(rng) for _ in range(300)]) >= 0.99
    assert narrow.apply(["BOS", "a", "b", "a"]).decoded == ["BOS", 2, 1, 2]


def test_training_lowers_the_loss_and_is_deterministic(sort_unique):
    dim, seed = 24, 3
    kwargs = dict(steps=120, batch_size=32, learning_rate=1e-2, seed=seed, eval_every=1000,
                  recipe="pca", init="random",
                  validation_size=16, progress=False, example="sort_unique")
    first = compress(sort_unique, dim, **kwargs)
    again = compress(sort_unique, dim, **kwargs)
    np.testing.assert_array_equal(first.projection, again.projection)
    # the loss on a fixed held-out batch, before and after training
    rng = random.Random(99)
    ids, valid = encode_batch(sort_unique, [EXAMPLES["sort_unique"].sample(rng)
                                            for _ in range(64)])
    loss = jax.jit(make_loss(sort_unique, dim, residual_weight=1.0))
    start = initial_projection(jax.random.PRNGKey(seed), dim, sort_unique.config.d_model)
    assert float(loss(first.projection, ids, valid)) < 0.8 * float(loss(start, ids, valid))
    # and the model that was trained is exactly the folded transformer returned
    residuals, _ = forward_with_projection(sort_unique, ["BOS", 3, 1, 2], first.projection)
    assert_close(first.apply(["BOS", 3, 1, 2]).residuals[-1], residuals[-1])


def test_save_load_round_trips_w_and_the_original(tmp_path, frac_prevs):
    model = CompressedModel(frac_prevs, random_projection(8, frac_prevs.config.d_model, 5),
                            {"note": "hand-made"})
    model.save(tmp_path / "narrow.npz", "frac_prevs squeezed")
    loaded = CompressedModel.load(tmp_path / "narrow.json")
    np.testing.assert_array_equal(loaded.projection, model.projection)
    for module, weights in model.params.items():
        for name, array in weights.items():
            np.testing.assert_array_equal(loaded.params[module][name], array)
    assert loaded.training == {"note": "hand-made"}
    assert loaded.original.residual_labels == frac_prevs.residual_labels
    tokens = ["BOS", "x", "y", "x"]
    np.testing.assert_array_equal(loaded.apply(tokens).residuals[-1],
                                  model.apply(tokens).residuals[-1])
    # the same files load as the original model; an ordinary model is not a compressed one
    assert CompiledModel.load(tmp_path / "narrow.npz").config.d_model == \
        frac_prevs.config.d_model
    frac_prevs.save(tmp_path / "plain.npz")
    with pytest.raises(ModelFileError, match="not a compressed model"):
        CompressedModel.load(tmp_path / "plain.npz")


def test_decode_intermediates_reads_the_reconstructed_residual(frac_prevs):
    same = CompressedModel(frac_prevs, np.eye(frac_prevs.config.d_model, dtype=np.float32))
    tokens = ["BOS", "x", "y", "z", "x"]
    assert same.decode_intermediates(tokens) == frac_prevs.decode_intermediates(tokens)
    rebuilt = same.reconstructed_residuals(tokens)
    np.testing.assert_allclose(rebuilt[-1], frac_prevs.apply(tokens).residuals[-1], atol=1e-6)


def test_bad_projection_is_refused(frac_prevs):
    with pytest.raises(ValueError, match="dim × d_model"):
        CompressedModel(frac_prevs, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="positive integer"):
        compress(frac_prevs, 0)


def test_exact_match_counts_the_inputs_a_damaged_model_gets_wrong(sort_unique):
    # Zeroing the unembedding column of the value 3 makes every position whose answer
    # is 3 decode as None: sort_unique outputs its (distinct) tokens sorted, so
    # exactly the inputs holding a 3 go wrong, counted here without the model.
    damaged = CompressedModel(sort_unique, np.eye(sort_unique.config.d_model, dtype=np.float32))
    column = list(sort_unique.output_encoder.values).index(3)
    damaged.params["unembed"]["w"] = np.array(damaged.params["unembed"]["w"])
    damaged.params["unembed"]["w"][:, column] = 0.0
    rng = random.Random(4)
    inputs = [EXAMPLES["sort_unique"].sample(rng) for _ in range(60)]
    right = sum(3 not in xs for xs in inputs) / len(inputs)
    assert 0.2 < right < 0.8
    assert exact_match(damaged, inputs) == pytest.approx(right)


def test_layer_cosines_are_those_of_the_reference_forward(frac_prevs):
    # The narrow residuals from the float64 reference above, read back through W, and
    # the original model's own residuals: their cosine per real position, pooled.
    w = random_projection(6, frac_prevs.config.d_model, seed=2)
    narrow = CompressedModel(frac_prevs, w)
    rng = random.Random(5)
    inputs = [EXAMPLES["frac_prevs"].sample(rng) for _ in range(8)]
    products = []
    for xs in inputs:
        tokens = ["BOS", *xs]
        residuals, _ = forward_with_projection(frac_prevs, tokens, w)
        original = frac_prevs.apply(tokens).residuals
        products.append([(z @ w.astype(np.float64), np.asarray(x, np.float64))
                         for z, x in zip(residuals, original)])
    expected = []
    for stage in range(len(products[0])):
        recon = np.concatenate([r[stage][0][1:] for r in products])
        x = np.concatenate([r[stage][1][1:] for r in products])
        norms = np.linalg.norm(recon, axis=-1) * np.linalg.norm(x, axis=-1)
        cosine = (recon * x).sum(-1) / norms
        expected.append(float(cosine.mean()))
    assert min(expected) < 0.95  # a squeeze that loses something, so 1.0 would be wrong
    assert layer_cosines(narrow, inputs) == pytest.approx(expected, abs=1e-4)
