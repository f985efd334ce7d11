"""SelectorWidth: an attention head plus a discretising MLP.

The head attends to BOS and the w selected keys with equal logits and copies
BOS's `bos` component, so it writes exactly 1/(w+1) to a scratch direction.
The MLP decodes w from 1/(w+1) with one threshold per gap: the gap between
1/(w+1) and 1/(w+2) is 1/((w+1)(w+2)), and each threshold's slope is sized to
its own gap (craft.numerical), so it is exact for every w in 0..N, N ≤ 256, in
float32 — a single global slope is what fails from N ≈ 10.
At BOS the scratch holds 1 and `one` is 0, so every MLP unit is off there.
`scratch_error` bounds the head's float32 error for any summation order; the
compiler refuses a width whose bound exceeds `scratch_tolerance(N)`, after trying
the logit gap `width_hardness` gives (a gentler one where HARDNESS's rounding is too
coarse for N, e.g. N ≥ 512).
With a `shift` c the head writes (1+c)/(w+1) − c instead (`scratch_values`): the small
gaps then sit near 0, where the discretiser's units round less, so a numerical width
output stays within its budget at a few more lengths (compiler.fusion picks it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from craft import float_bounds
from craft.attention import (HARDNESS, logit_error_bound, selector_width_head, softest_gap,
                             width_head, width_scores)
from craft.bases import BasisDirection, VectorSpace
from craft.blocks import AttentionHead, BlockInfo, Series
from craft.categorical import Output
from craft.maps import BilinearForm
from craft.numerical import QUARTER_GAP, discretising_mlp, gated_discretising_mlp


def selector_width(selection: BilinearForm, selected_level: int, max_seq_len: int,
                   output_space: VectorSpace, output_of: Callable[..., Output],
                   scratch: BasisDirection, hidden_name: str, info: BlockInfo,
                   hardness: float = HARDNESS,
                   side_space: VectorSpace = VectorSpace(())) -> Series:
    """Head + MLP writing `output_of(w)` for every width w in 0..max_seq_len.

    With a categorical `side_space` (exact one-hots, e.g. tokens or indices) the
    MLP writes `output_of(w, side_value)` instead, gating one discretiser per value.
    """
    head = selector_width_head(selection, selected_level, scratch, info, hardness)
    return Series((head, _width_mlp(max_seq_len, output_space, output_of, scratch, hidden_name,
                                    info, side_space)))


def fitted_selector_width(selection: BilinearForm, selected_level: int, max_seq_len: int,
                          output_space: VectorSpace, output_of: Callable[..., Output],
                          scratch: BasisDirection, hidden_name: str, info: BlockInfo,
                          side_space: VectorSpace = VectorSpace(()),
                          shift: float = 0.0, soft: bool = False,
                          extra_logit_error: Callable[[BilinearForm], float] = lambda s: 0.0,
                          extra_scratch_error: float = 0.0) -> tuple[Series, float]:
    """`selector_width` at the logit gap `width_hardness` picks, and that gap (with the
    head's scratch shifted by `shift`, see `scratch_values`). With `soft`, the smallest
    gap whose `scratch_error` (plus `extra_logit_error(scores)` on every logit, and
    `extra_scratch_error`, relative) still fits `scratch_tolerance` instead
    (craft.attention.softest_gap).

    The same blocks as calling the two, with the width scores built once: at gap λ
    they are the unit-gap scores times λ."""
    unit = width_scores(selection, selected_level, 1.0)
    hardness = _hardness(unit, max_seq_len)
    if soft:
        def accepts(gap):
            head = width_head(unit * gap, scratch, info, shift)
            return scratch_error(head, max_seq_len, gap, shift, extra_logit_error(head.w_qk)) \
                + extra_scratch_error <= scratch_tolerance(max_seq_len)
        hardness = softest_gap(accepts, hardness)
    head = width_head(unit * hardness, scratch, info, shift)
    return Series((head, _width_mlp(max_seq_len, output_space, output_of, scratch, hidden_name,
                                    info, side_space, shift))), hardness


def scratch_values(max_seq_len: int, shift: float = 0.0) -> list[float]:
    """What a width head writes for w = 0..N: (1+c)/(w+1) − c for shift c (1/(w+1) at 0)."""
    if not shift:
        return [1.0 / (w + 1) for w in range(max_seq_len + 1)]
    return [(1 + shift) / (w + 1) - shift for w in range(max_seq_len + 1)]


def _width_mlp(max_seq_len, output_space, output_of, scratch, hidden_name, info, side_space,
               shift=0.0):
    """The discretiser from the scratch (`scratch_values`) to `output_of(w)` (gated by
    `side_space`)."""
    inverse = {x: w for w, x in enumerate(scratch_values(max_seq_len, shift))}
    if side_space.dim:
        return gated_discretising_mlp(scratch, list(inverse), side_space, output_space,
                                      lambda x, side: output_of(inverse[x], side),
                                      hidden_name, info)
    return discretising_mlp(scratch, list(inverse), output_space,
                            lambda x: output_of(inverse[x]), hidden_name, info)


def scratch_error(head: AttentionHead, max_seq_len: int, hardness: float = HARDNESS,
                  shift: float = 0.0, extra_logit_error: float = 0.0) -> float:
    """Relative float32 error bound of the scratch 1/(w+1), for every w ≤ N and any order
    (with a `shift` c: of (1+c)/(w+1) − c, relative to (1+c)/(w+1), so that it compares
    with `scratch_tolerance` the same way); `extra_logit_error` is added to every logit's
    error bound (what noise on the head's inputs may add, e.g. a LayerNorm's).

    BOS and the w selected keys share one exact logit, unselected keys sit at least
    `hardness` lower, and each logit errs by at most δ (`logit_error_bound`). The
    BOS weight 1/(1 + Σ e^(ℓᵢ − ℓ_BOS)) is then within a factor e^{2δ}·(1 + N·e^{2δ−λ})
    of 1/(w+1); the softmax's rounding adds ρ (float_bounds.mean_weight_error). Only
    BOS carries the copied `bos` component, so the weighted sum adds exact zeros:

        relative error ≤ (1 + ρ)·e^{2δ}·(1 + N·e^{2δ−λ}) − 1.

    A shift makes every real key carry −c: the weighted sum of N + 1 values then errs
    by at most γ_{N+2}·(x + c) (float_bounds.matmul_error), x = 1/(w+1) ≥ 1/(N+1), so
    relative to (1+c)·x by at most γ_{N+2}·(1 + c·(N+1))/(1 + c), added to the above.
    """
    error = _scratch_error_of(logit_error_bound(head.w_qk) + extra_logit_error,
                              float(hardness), max_seq_len)
    if shift:
        error += float_bounds.gamma(max_seq_len + 2) * (1 + shift * (max_seq_len + 1)) \
            / (1 + shift)
    return error


@functools.lru_cache(maxsize=256)
def _scratch_error_of(logit_error: float, hardness: float, max_seq_len: int) -> float:
    """`scratch_error` from the head's logit error bound δ: a pure function of plain
    numbers, memoised (every compile of a width asks it again)."""
    return float(_scratch_bound(2 * logit_error, hardness, max_seq_len))


def _scratch_bound(spread, hardness, max_seq_len: int):
    """scratch_error's bound for a logit spread 2δ and gap λ (numpy arrays broadcast)."""
    leak = max_seq_len * np.exp(spread - hardness)
    rho = float_bounds.mean_weight_error(max_seq_len + 1)
    return (1 + rho) * np.exp(spread) * (1 + leak) - 1


def width_hardness(selection: BilinearForm, selected_level: int, max_seq_len: int) -> float:
    """The logit gap λ of a width head: HARDNESS when its bound fits the window at N,
    else the whole λ in 1..HARDNESS with the smallest bound.

    δ grows like λ (the rounding of logits near λ·level) while the leak onto
    unselected keys shrinks like N·e^{−λ}, so for large N a gentler gap (about
    ln(N/δ₁) for δ₁ the logit error at λ = 1) bounds the scratch error tighter.
    """
    return _hardness(width_scores(selection, selected_level, 1.0), max_seq_len)


def _hardness(unit_scores: BilinearForm, max_seq_len: int) -> float:
    """`width_hardness` from the width scores at gap 1."""
    return _hardness_of(logit_error_bound(unit_scores), max_seq_len)


@functools.lru_cache(maxsize=256)
def _hardness_of(unit: float, max_seq_len: int) -> float:
    """`width_hardness` from the logit error bound δ₁ at gap 1: a pure function of plain
    numbers, memoised (every compile of a width asks it again)."""
    gaps = np.arange(1.0, HARDNESS + 1)
    bounds = _scratch_bound(2 * unit * gaps, gaps, max_seq_len)
    if bounds[-1] <= scratch_tolerance(max_seq_len):
        return HARDNESS
    return float(gaps[np.argmin(bounds)])


def scratch_tolerance(max_seq_len: int) -> float:
    """The relative scratch error every width's discretiser window absorbs: a quarter of
    the gap from 1/(w+1) to 1/(w+2), relative to 1/(w+1), is 1/(4(w+2)); smallest at w = N."""
    return QUARTER_GAP / (max_seq_len + 2)
