"""interp.compress training options for widths below the read rank: per-feature log
scales, a scaled start, the hinge on numerical errors and restarts."""

from __future__ import annotations

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.compress import CompressedModel, compress
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
