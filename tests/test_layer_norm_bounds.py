"""The LayerNorm bound holds in every summation order (craft.float_bounds.layer_norm_error
and probed_read_error, as compile_rasp_to_model(..., layer_norm=True) accepts them).

Each test computes LayerNorm, and the reads of its output by the model's own reader
matrices, in numpy float32 with explicit summation orders (forward, reverse, pairwise,
sorted by magnitude) on the residuals of compiled examples, and asserts the observed
error never exceeds the bound the compiler accepted. The exact values are float64 sums
of the float32 residual itself, never the model's LayerNorm.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from craft import float_bounds
from examples.library import EXAMPLES
from rasp_runtime.interventions import run_batch

F32 = np.float32
U = float_bounds.UNIT_ROUNDOFF


def _forward(terms):
    acc = np.zeros(terms.shape[:-1], F32)
    for i in range(terms.shape[-1]):
        acc = (acc + terms[..., i]).astype(F32)
    return acc


def _reverse(terms):
    return _forward(terms[..., ::-1])


def _pairwise(terms):
    if terms.shape[-1] == 1:
        return terms[..., 0].astype(F32)
    half = terms.shape[-1] // 2
    return (_pairwise(terms[..., :half]) + _pairwise(terms[..., half:])).astype(F32)


def _by_magnitude(terms):
    order = np.argsort(np.abs(terms), axis=-1, kind="stable")
    return _forward(np.take_along_axis(terms, order, axis=-1))


ORDERS = (_forward, _reverse, _pairwise, _by_magnitude)


def _layer_norm(x, eps, gain, total):
    """(mean, output) of a float32 LayerNorm of rows x, each sum taken by `total`."""
    d = F32(x.shape[-1])
    mean = (total(x) / d).astype(F32)
    centred = (x - mean[..., None]).astype(F32)
    variance = (total((centred * centred).astype(F32)) / d).astype(F32)
    scale = np.sqrt((variance + F32(eps)).astype(F32)).astype(F32)
    return mean, ((centred / scale[..., None]).astype(F32) * F32(gain)).astype(F32)


def _residuals(name: str, count: int = 40):
    """A LayerNorm model of example `name` at N = 5, and every residual row any of its
    LayerNorms reads (real positions of random inputs)."""
    example = EXAMPLES[name]
    model = compile_rasp_to_model(example.build(5), example.vocab, 5, causal=example.causal,
                                  layer_norm=True)
    rng = random.Random(1)
    batch = [[model.config.bos, *example.sample(rng, 5)] for _ in range(count)]
    run = run_batch(model, batch)
    seq = max(map(len, batch))
    real = np.arange(seq)[None, :] < np.array([len(b) for b in batch])[:, None]
    rows = np.concatenate([np.asarray(r)[:, :seq][real] for r in run["residuals"]])
    return model, rows.astype(F32)


@pytest.fixture(scope="module", params=["sort", "frac_prevs", "dyck1", "count_less_freq"])
def case(request):
    return _residuals(request.param)


def test_every_layer_norm_is_within_the_accepted_bound_in_every_order(case):
    model, rows = case
    proof = model.layer_norm_proof
    d = rows.shape[1]
    exact = rows.astype(np.float64)
    sums = np.array([math.fsum(r) for r in exact])
    # the accepted bound's premises hold on these residuals
    assert np.abs(sums).max() <= proof.residual_sum
    assert np.abs(exact).sum(axis=1).max() <= proof.magnitude
    assert (exact ** 2).sum(axis=1).max() <= proof.square_sum
    gain = math.sqrt(model.config.layer_norm_eps)
    for total in ORDERS:
        mean, out = _layer_norm(rows, model.config.layer_norm_eps, gain, total)
        # per row, the bound from this row's own sums, and the accepted one
        own, scale = float_bounds.layer_norm_error(d, np.abs(exact).sum(axis=1),
                                                   np.abs(sums), (exact ** 2).sum(axis=1),
                                                   model.config.layer_norm_eps)
        assert (np.abs(mean) <= own).all() and (own <= proof.mean).all()
        allowed = proof.mean + (proof.scale + U * (1 + proof.scale)) * (np.abs(exact)
                                                                         + proof.mean)
        assert (np.abs(out - exact) <= allowed).all(), total.__name__


def test_reads_past_the_mean_probe_are_within_the_accepted_bound(case):
    model, rows = case
    proof = model.layer_norm_proof
    eps = model.config.layer_norm_eps
    readers = [w for module, p in model.params.items() for name, w in p.items()
               if name == "w" and (module == "unembed" or module.endswith(
                   ("/query", "/key", "/value", "/linear_1")))]
    exact = rows.astype(np.float64)
    for total in ORDERS:
        _, out = _layer_norm(rows, eps, math.sqrt(eps), total)
        for w in readers:
            w = np.asarray(w, F32)
            body = w.astype(np.float64)
            body[-1] = 0.0  # the probe row (last); the residual holds 0 there
            want = exact @ body
            terms = (out[:, :, None] * w[None]).astype(F32)  # rows, d, columns
            got = total(np.moveaxis(terms, 1, -1)).astype(np.float64)
            count = int((w != 0).sum(axis=0).max(initial=0))
            magnitude = np.abs(exact) @ np.abs(body)
            allowed = proof.absolute * np.abs(body).sum(axis=0) + (
                proof.relative + float_bounds.gamma(count)) * magnitude
            assert (np.abs(got - want) <= allowed).all(), total.__name__


def test_the_bound_holds_for_unbalanced_residuals_too():
    """Large means (no balance coordinate): |μ̂| ≤ M and out = (x̂ − μ̂)(1 + ξ)(1 + τ) with
    |ξ| ≤ u, |τ| ≤ ρ, in every order."""
    rng = np.random.default_rng(0)
    rows = rng.uniform(-3, 5, (200, 37)).astype(F32)
    exact = rows.astype(np.float64)
    eps = 4.0 ** 14
    mean_bound, scale = float_bounds.layer_norm_error(
        37, np.abs(exact).sum(axis=1), np.abs(exact.sum(axis=1)), (exact ** 2).sum(axis=1), eps)
    for total in ORDERS:
        mean, out = _layer_norm(rows, eps, 2.0 ** 14, total)
        assert (np.abs(mean) <= mean_bound).all()
        centred = exact - mean[:, None].astype(np.float64)
        allowed = (U + scale + U * scale)[:, None] * np.abs(centred)
        assert (np.abs(out - centred) <= allowed).all()
