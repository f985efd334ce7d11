"""interp.compress recipes: the default picks the PCA start at or above the read rank
and the superposed recipe below it; that recipe's options (per-feature log scales,
a scaled start, the hinge on numerical errors, restarts)."""

from __future__ import annotations

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.compress import (VALIDATION_SEED_OFFSET, CompressedModel, compress, exact_match,
                             sampler_for)
from interp.compress_fold import initial_projection
from interp.compress_train import encode_batch, make_loss, projection_of
from rasp_runtime.interventions import run_batch


@pytest.fixture(scope="module")
def frac_prevs():
    example = EXAMPLES["frac_prevs"]
    return compile_rasp_to_model(example.build(example.max_seq_len), example.vocab,
                                 example.max_seq_len)


def test_log_scales_multiply_the_columns_of_w():
    w = jnp.arange(6, dtype=jnp.float32).reshape(2, 3)
    scales = jnp.log(jnp.asarray([1.0, 2.0, 0.5]))
    got = np.asarray(projection_of({"w": w, "log_scale": scales}))
    np.testing.assert_allclose(got, [[0, 2, 1], [3, 8, 2.5]], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(projection_of({"w": w})), np.asarray(w))


def test_the_start_is_the_random_rows_times_init_scale(frac_prevs):
    narrow = compress(frac_prevs, 7, steps=0, init="random", init_scale=0.25, seed=4,
                      validation_size=8, progress=False, example="frac_prevs")
    rows = initial_projection(jax.random.PRNGKey(4), 7, frac_prevs.config.d_model)
    np.testing.assert_allclose(narrow.projection, 0.25 * np.asarray(rows), rtol=1e-6)


def test_the_hinge_adds_the_squared_excess_over_half_the_tolerance(frac_prevs):
    rng = random.Random(3)
    inputs = [EXAMPLES["frac_prevs"].sample(rng) for _ in range(32)]
    ids, valid = encode_batch(frac_prevs, inputs)
    w = 0.8 * np.asarray(initial_projection(jax.random.PRNGKey(1), 9,
                                            frac_prevs.config.d_model))
    # the errors, from the folded model and the original through the public API
    batch = [[frac_prevs.config.bos, *xs] for xs in inputs]
    narrow = run_batch(CompressedModel(frac_prevs, w), batch)["output"][..., 0]
    reference = run_batch(frac_prevs, batch)["output"][..., 0]
    excess = [max(abs(float(a) - float(b)) - 0.005, 0.0) ** 2
              for got, want, xs in zip(narrow, reference, inputs)
              for a, b in zip(got[1:len(xs) + 1], want[1:len(xs) + 1])]
    expected = 50.0 * sum(excess) / len(excess)
    assert expected > 1e-4  # the batch does have errors past the tolerance's half
    ids, valid = jnp.asarray(ids), jnp.asarray(valid)
    plain = make_loss(frac_prevs, 9, 0.0)(w, ids, valid)
    hinged = make_loss(frac_prevs, 9, 0.0, margin_weight=50.0, numeric_tolerance=0.01)(
        w, ids, valid)
    assert float(hinged - plain) == pytest.approx(expected, rel=1e-3)


def test_restarts_run_until_one_start_is_exact_and_are_deterministic(frac_prevs):
    kwargs = dict(steps=5, batch_size=8, init="random", seed=2, eval_every=5,
                  validation_size=16, progress=False, example="frac_prevs")
    once = compress(frac_prevs, 3, restarts=1, **kwargs)
    twice = compress(frac_prevs, 3, restarts=2, **kwargs)
    again = compress(frac_prevs, 3, restarts=2, **kwargs)
    assert once.training["starts"] == 1 and twice.training["starts"] == 2
    np.testing.assert_array_equal(twice.projection, again.projection)
    # the second start is the run from seed + 7919, and the better of the two is kept
    second = compress(frac_prevs, 3, restarts=1, **{**kwargs, "seed": 2 + 7919})
    assert not np.array_equal(second.projection, once.projection)
    best = max((once, second), key=lambda c: max(v for _, v in c.training["validation"]))
    np.testing.assert_array_equal(twice.projection, best.projection)
    # a start that is exact at once needs no other
    full = compress(frac_prevs, frac_prevs.config.d_model, restarts=3, **kwargs)
    assert full.training["starts"] == 1 and full.training["stopped_early"]


@pytest.mark.parametrize("bad", [{"init_scale": 0.0}, {"margin_weight": -1.0},
                                 {"restarts": 0}, {"restarts": 1.5}])
def test_bad_training_options_are_refused(frac_prevs, bad):
    with pytest.raises(ValueError, match="init_scale must be > 0"):
        compress(frac_prevs, 4, progress=False, **bad)


def test_the_default_at_the_read_rank_is_the_pca_start_with_no_training(frac_prevs):
    # frac_prevs (d_model 14): its residuals span 11 dimensions as the readers see them
    # (docs/superposition.md); at that width the PCA start agrees before any step
    narrow = compress(frac_prevs, 11, example="frac_prevs", progress=False)
    training = narrow.training
    assert (training["recipe"], training["read_rank"]) == ("pca", 11)
    assert training["steps_run"] == 0 and training["stopped_early"]
    settings = training["settings"]
    assert (settings["init"], settings["residual_weight"], settings["restarts"],
            settings["validation_size"]) == ("pca", 1.0, 1, 256)


def test_the_default_below_the_read_rank_is_the_superposed_recipe_reported_honestly(
        frac_prevs):
    # a step budget far too small to succeed: the summary must say it did not
    narrow = compress(frac_prevs, 10, steps=20, restarts=2, validation_size=64, eval_every=10,
                      example="frac_prevs", progress=False)
    training, settings = narrow.training, narrow.training["settings"]
    assert training["recipe"] == "superposed"
    assert (settings["init"], settings["init_scale"], settings["residual_weight"],
            settings["margin_weight"], settings["learning_rate"]) == (
        "random", 0.3, 0.0, 100.0, 1e-2)  # the recipe's, where no argument overrides
    assert (settings["steps"], settings["restarts"], settings["validation_size"]) == (20, 2, 64)
    # the validation inputs, drawn again here; the kept W's score is what it gets on them
    sample, rng = sampler_for(frac_prevs, "frac_prevs"), random.Random(VALIDATION_SEED_OFFSET)
    validation = [sample(rng) for _ in range(64)]
    best = max(score for _, score in training["validation"])
    assert best == pytest.approx(exact_match(narrow, validation))
    assert best < 1.0 and not training["stopped_early"]
    assert (training["starts"], training["steps_all_starts"]) == (2, 40)


def test_a_named_recipe_overrides_the_choice(frac_prevs):
    forced = compress(frac_prevs, 12, recipe="superposed", steps=0, validation_size=8,
                      example="frac_prevs", progress=False)
    assert forced.training["recipe"] == "superposed"
    assert forced.training["settings"]["init"] == "random"
    with pytest.raises(ValueError, match="recipe must be"):
        compress(frac_prevs, 12, recipe="fast", progress=False)
