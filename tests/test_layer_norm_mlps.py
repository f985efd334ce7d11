"""An MLP read through a LayerNorm is bounded with the LayerNorm's common scale.

The LayerNorm proof (craft.float_bounds.layer_norm_error) lets every coordinate an MLP
reads, `one` included, come out scaled by a common 1 + τ with |τ| ≤ ρ. A ReLU MLP whose
offsets come from `one` then writes (1 + τ)·f(x): a clamp or a discretiser writing 1,000
is off by about 1,000·ρ, whatever its inputs' errors. These tests feed each MLP the
residual scaled by 1 + RELATIVE_ALLOWANCE in numpy float32 and compare the error they
observe with ρ·|v| worked out by hand and with the bounds the compiler uses.
"""

from __future__ import annotations

import numpy as np
import pytest

from compiler.layer_norm import NORMED_READ, RELATIVE_ALLOWANCE
from craft import clean_lookup, numerical
from craft.bases import ONE, BasisDirection, VectorSpace
from craft.blocks import BlockInfo

INFO = BlockInfo(("y",), "map")
OUT = VectorSpace((BasisDirection("y"),))


def scaled_output(mlp, setting: dict) -> float:
    """The MLP's float32 output where every read coordinate is scaled by 1 + ρ."""
    reads = np.zeros(mlp.first.input_space.dim, np.float32)
    for direction, value in setting.items():
        reads[mlp.first.input_space.index[direction]] = np.float32(
            value * (1 + RELATIVE_ALLOWANCE))
    hidden = np.maximum(reads @ mlp.first.matrix.astype(np.float32), np.float32(0))
    return float((hidden @ mlp.second.matrix.astype(np.float32))[0])


def test_the_clean_lookup_bound_covers_the_scale_a_layer_norm_may_apply():
    values = {0: 1000.0, 1: -500.0, 2: 7.0}
    space = VectorSpace.from_values("c", list(values))
    mlp = clean_lookup.clean_lookup_mlp(space, OUT, lambda d: {OUT.basis[0]: values[d.value]},
                                        "h", INFO)
    observed = max(abs(scaled_output(mlp, {ONE: 1.0, d: 1.0}) - values[d.value])
                   for d in space.basis)
    by_hand = 1000 * RELATIVE_ALLOWANCE  # 4.3e-4: the scale alone, at the largest value
    assert observed >= 0.9 * by_hand
    assert observed > clean_lookup.error_bound(1000.0)  # the bound without a LayerNorm
    assert observed <= clean_lookup.error_bound(1000.0, norm=NORMED_READ)


@pytest.mark.parametrize("pair", [False, True])
def test_the_layer_norm_clamp_bound_is_never_below_the_plain_one(pair):
    for value in (1.0, 13.0, 1000.0):
        plain = clean_lookup.error_bound(value, pair)
        normed = clean_lookup.error_bound(value, pair, NORMED_READ)
        assert normed >= plain + value * RELATIVE_ALLOWANCE


def test_the_discretiser_bound_covers_the_scale_a_layer_norm_may_apply():
    f = {0.0: 0.0, 1.0: 1000.0, 2.0: -1000.0, 3.0: 250.0}
    x = BasisDirection("x")
    mlp = numerical.discretising_mlp(x, list(f), OUT, lambda v: {OUT.basis[0]: f[v]}, "h", INFO)
    observed = max(abs(scaled_output(mlp, {ONE: 1.0, x: v}) - f[v]) for v in f)
    assert observed >= 0.9 * 1000 * RELATIVE_ALLOWANCE
    assert observed <= numerical.output_error_bound(list(f), list(f.values()),
                                                    norm=NORMED_READ)


def test_a_linear_maps_clamp_charge_covers_the_scale_a_layer_norm_may_apply():
    # compiler.budgets.linear charges a clamp term γ·magnitude·|c·v| of rounding plus
    # extra·|c·v| (clean_lookup.normed_read); fed the scaled residual, a clamp writing
    # c·v = 1,000 is off by about ρ·1,000, which that charge must cover.
    from craft.float_bounds import matmul_error

    values = {0: 1000.0, 1: -3.0}
    space = VectorSpace.from_values("c", list(values))
    mlp = clean_lookup.clean_lookup_mlp(space, OUT, lambda d: {OUT.basis[0]: values[d.value]},
                                        "h", INFO)
    units = mlp.first.output_space.dim
    observed = max(abs(scaled_output(mlp, {ONE: 1.0, d: 1.0}) - values[d.value])
                   for d in space.basis)
    assert observed >= 0.9 * 1000 * RELATIVE_ALLOWANCE

    def charged(norm):
        magnitude, extra = clean_lookup.normed_read(norm)
        return matmul_error(magnitude * 1000, units) + extra * 1000

    assert observed <= charged(NORMED_READ)
