"""Worst-case float32 rounding bounds that hold for any order of summation.

Takes the magnitudes of what a block's matmuls add up and gives bounds on the
float32 error of the result that hold whatever order, blocking or FMA use a
BLAS kernel or an XLA backend picks. The compiler accepts a construction only
when these bounds fit its margins (craft.numerical, compiler.blocks).

Derivation (standard model of floating point, round to nearest, no overflow or
underflow): every operation gives fl(a ∘ b) = (a ∘ b)(1 + δ) with |δ| ≤ u = 2⁻²⁴.
A sum of n products computed along any binary tree of additions gives
ŝ = Σ aᵢbᵢ(1 + θᵢ), where θᵢ collects at most one product rounding and one
rounding per addition on term i's path, so |θᵢ| ≤ γ_n = n·u/(1 − n·u) and

    |ŝ − Σ aᵢbᵢ| ≤ γ_n · Σ |aᵢbᵢ|.

An FMA rounds once where a multiply-add rounds twice, so it stays inside the
bound. Terms with a zero weight are exactly zero, and adding an exact zero is
exact, so n counts only the non-zero terms. Weights are rounded from float64 to
float32 once, one more factor (1 + δ), hence γ_{n+1} (`matmul_error`). Errors eᵢ
already present in the inputs add Σ|bᵢ|·eᵢ, inflated by the same factor. ReLU
is exact and 1-Lipschitz, so it passes an error through unchanged; a bias or
residual add rounds once more (`add_error`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Unit roundoff of float32 (round to nearest): half the gap between 1 and the next float.
UNIT_ROUNDOFF = 2.0 ** -24


def gamma(n):
    """γ_n = n·u/(1 − n·u): the relative error of n rounded operations in a row.

    Accepts an int or an array of counts. Raises for n·u ≥ 1 (no bound exists).
    """
    if isinstance(n, int):  # the common scalar: the same float64 operations, minus numpy's cost
        nu = n * UNIT_ROUNDOFF
        if nu >= 1:
            raise ValueError(f"γ_n needs n·u < 1, got n = {n}")
        return nu / (1 - nu)
    nu = np.asarray(n, dtype=np.float64) * UNIT_ROUNDOFF
    if np.any(nu >= 1):
        raise ValueError(f"γ_n needs n·u < 1, got n = {np.max(n)}")
    result = nu / (1 - nu)
    return float(result) if np.ndim(result) == 0 else result


def matmul_error(terms, count, input_error=0.0):
    """Error bound of one output of x @ W in float32, for any summation order.

    `terms` bounds Σ|wᵢ|·|xᵢ| over the `count` non-zero weights (inputs taken
    with their errors), `input_error` bounds Σ|wᵢ|·eᵢ, the error the inputs
    already carry. Weights are float64 values rounded to float32 once:

        error ≤ input_error + γ_{count+1} · (terms + input_error).
    Broadcasts over numpy arrays.
    """
    count = count + 1 if isinstance(count, int) else np.asarray(count) + 1
    return input_error + gamma(count) * (terms + input_error)


@dataclasses.dataclass(frozen=True)
class NormedRead:
    """A LayerNorm before a ReLU MLP whose biases come from the `one` coordinate: the
    (A, ρ') of `probed_read_error` (allowances the model is later proved against).

    By `probed_read_error`'s identity, hidden unit j reads (1+τ)·(Σwᵢx̃ᵢ + μ̂·δⱼ·Σwᵢ) plus
    the rounding of its sum with the probe row, where x̃ᵢ = x̂ᵢ + (x̂ᵢ − μ̂)ξᵢ is the
    residual moved once per coordinate (the same x̃ for every unit) and |τ| ≤ ρ. ReLU
    commutes with the factor 1+τ > 0, and x̃'s `one` is 1+ε (|ε| ≤ 1.01u); a ReLU MLP
    is homogeneous in (x, one), so it computes (1+τ)(1+ε)·MLP(x̃/(1+ε)) with every unit
    off by `unit_error` more than without the LayerNorm. x̃/(1+ε) is within 2.03u·|x̂|
    of x̂: the readers of numerical and one-hot inputs already pay that (compiler.
    layer_norm's allowances). What is left is `output_error`."""

    absolute: float  # A: per unit |weight| of a hidden unit's read
    relative: float  # ρ': the common scale (1+τ)(1+ε) − 1 of the output

    def unit_error(self, weights, terms, count):
        """What the LayerNorm adds to a unit's pre-activation error over what
        `matmul_error(terms, count)` charges without it: A·Σ|w| (`weights`) for the mean
        the probe cancels, and one more term in the sum (the probe row), γ's step from
        count + 1 to count + 2 on `terms` (Σ|wᵢx̂ᵢ|; it also covers x̃'s factor 1 + u:
        the rounding relative to the scaled y = (1+τ)·x̃ is, after taking 1+τ out, relative
        to x̃)."""
        return self.absolute * weights + (gamma(count + 2) - gamma(count + 1)) * terms

    def output_error(self, error, magnitude):
        """The error of an output of magnitude ≤ `magnitude` that is within `error` of
        exact without the common scale (its units charged `unit_error`, its second layer
        rounded on hidden values scaled by 1+ρ'): (1+ρ')·error + ρ'·magnitude."""
        return (1 + self.relative) * error + self.relative * magnitude


def add_error(magnitude):
    """Error bound of one float32 addition whose exact result is at most `magnitude`."""
    return UNIT_ROUNDOFF * magnitude


def mean_weight_error(count):
    """Relative error bound ρ of each softmax weight of an attention over `count` keys.

    Each weight exp(ℓᵢ − max)/Σ exp carries the exp's rounding (a library exp is
    within a few ulps; we allow 4u), the division's (u), the subtraction's (u) and
    γ_count from the sum of the exps: ρ = γ_count + 6u.
    """
    return gamma(count) + 6 * UNIT_ROUNDOFF


def mean_error(count, max_abs_value, input_error=0.0):
    """Error bound of an attention average of `count` values of magnitude ≤ `max_abs_value`
    that each carry an error ≤ `input_error`, for any summation order.

    The weights sum to at most 1 + ρ (`mean_weight_error`), the weighted sum adds
    γ_count·Σ pᵢ|vᵢ|, and each weight's error ρ·pᵢ multiplies |vᵢ|:

        error ≤ (1 + ρ)·input_error + (ρ + γ_count·(1 + ρ))·(max|v| + input_error).
    """
    rho = mean_weight_error(count)
    summation = rho + gamma(count) * (1 + rho)
    return (1 + rho) * input_error + summation * (max_abs_value + input_error)



# A library sqrt (or rsqrt) is within this many ulps; IEEE's correctly rounded one is exact
# on the powers of four `layer_norm_error` is used with.
SQRT_ULPS = 2


def layer_norm_error(d, magnitude, residual_sum, square_sum, eps):
    """(M, ρ): every coordinate of LayerNorm(x̂) with gain √eps, offset 0, computed in
    float32 in any summation order, is (x̂ᵢ − μ̂ + ξᵢ)·(1 + τ) with |μ̂| ≤ M, |ξᵢ| ≤ u·|x̂ᵢ − μ̂|,
    |τ| ≤ ρ: the same computed mean μ̂ comes off every coordinate, then one common scale.

    x̂ is a float32 residual of `d` coordinates with Σ|x̂ᵢ| ≤ `magnitude`, |Σx̂ᵢ| ≤
    `residual_sum` (zero in exact arithmetic for a balanced residual: what is left is its
    writers' rounding) and Σx̂ᵢ² ≤ `square_sum`. The steps, as TransformerLens runs them:
      μ̂ = fl(Σx̂/d):  |μ̂| ≤ M = (1+γ₂)·(residual_sum + γ_{d−1}·magnitude)/d (γ₂: a
        division, or a multiplication by a rounded 1/d, as XLA may do);
      cᵢ = fl(x̂ᵢ − μ̂) = (x̂ᵢ − μ̂)(1 + ξ'), |ξ'| ≤ u;
      v̂ = fl(Σcᵢ²/d) ≤ V = (1+γ_{d+2})·(√square_sum + √d·M)²·(1+u)²/d;
      σ = fl(√fl(v̂ + eps)) = √eps·(1+θ), 0 ≤ … ≤ V/(2·eps) + (SQRT_ULPS + ½)·u;
      out = fl(fl(cᵢ/σ)·√eps): two more roundings,
    so ρ = V/(2·eps) + (SQRT_ULPS + 3.01)·u (the 0.01 covers second-order terms).
    Where v̂ < eps·2⁻²⁴ and sqrt is correctly rounded, σ = √eps exactly and τ is 0.
    """
    u = UNIT_ROUNDOFF
    mean = (1 + gamma(2)) * (residual_sum + gamma(max(d - 1, 0)) * magnitude) / d
    variance = (1 + gamma(d + 2)) * (np.sqrt(square_sum) + np.sqrt(d) * mean) ** 2 \
        * (1 + u) ** 2 / d
    return mean, variance / (2 * eps) + (SQRT_ULPS + 3.01) * u


def probed_read_error(count, mean, scale):
    """(A, ρ'): what reading a LayerNorm's output adds to a read's error bound.

    The read is Σwᵢyᵢ over `count` rows of y = LayerNorm(x̂) (`layer_norm_error`'s (M, ρ) =
    (`mean`, `scale`)), with one more row −Σwᵢ (rounded to float32) on a coordinate that is
    0 in the residual, so that yₚ = −μ̂·(1+τ) and the probe row cancels the mean. In float32,
    in any order, it is within A·Σ|wᵢ| + ρ'·Σ|wᵢx̂ᵢ| of Σwᵢx̂ᵢ, on top of the γ_count·Σ|wᵢx̂ᵢ|
    the reader's own bound already charges. Exactly,
      Σwᵢyᵢ + wₚyₚ = (1+τ)·(Σwᵢx̂ᵢ + Σwᵢ(x̂ᵢ − μ̂)ξᵢ + μ̂·δ·Σwᵢ), |ξᵢ|, |δ| ≤ u,
    and the matmul's rounding γ_{count+1}·(Σ|wᵢyᵢ| + |wₚyₚ|) exceeds the reader's own by at
    most γ_{count+1}·2M·Σ|wᵢ|·(1+u)(1+ρ) (the mean on every row) plus u·(1+u)·Σ|wᵢx̂ᵢ| (one
    more term). So ρ' = ρ + (1+ρ)·2.02·u and A = (1+ρ)·M·(2u + 2γ_{count+1}·(1+u)).
    """
    u, g = UNIT_ROUNDOFF, gamma(count + 1)
    relative = scale + (1 + scale) * 2.02 * u
    absolute = (1 + scale) * mean * (2 * u + 2 * g * (1 + u))
    return absolute, relative
