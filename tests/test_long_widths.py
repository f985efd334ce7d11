"""Width heads at N = 1,024: the logit gap that keeps 1/(w+1) inside its window.

At HARDNESS = 100 the any-order float32 bound on a width head's logits (δ ≈ 1.8e-4
relative per logit, doubled) is above the quarter gap 1/(4(N+2)) once N ≥ 1,000, so
the compiler would refuse length, hist, sort_unique and sort there. `width_hardness`
keeps HARDNESS where it fits (so weights are unchanged for N ≤ 256) and otherwise
takes the gap with the smallest bound. Here that head counts widths 1..1,024 (keys
masked as PAD) within the compiler's bound, and the width MLP decodes them exactly
in every summation order.
"""

from __future__ import annotations

import numpy as np
import pytest

from craft.attention import HARDNESS, predicate_form
from craft.bases import BOS, ONE, VectorSpace
from craft.selector_width import (fitted_selector_width, scratch_error, scratch_tolerance,
                                  selector_width, width_hardness)
from tests.test_craft_selector_width import (INFO, SCRATCH, check_mlp_in_every_order,
                                             idx_pred, indices_space, one_hot_width,
                                             width_space)

N = 1024
WIDTHS = [1, 2, 3, 10, 100, 255, 256, 511, 512, 513, 1000, 1022, 1023, 1024]


def everything():
    return predicate_form(VectorSpace(()), VectorSpace(()), lambda k, q: True)


def test_default_gap_kept_where_it_fits():
    for n in (8, 64, 256):
        space = indices_space(n)
        assert width_hardness(predicate_form(space, space, idx_pred(lambda k, q: k < q)),
                              1, n) == HARDNESS
    assert width_hardness(everything(), 1, 512) == HARDNESS


def test_gentler_gap_at_1024_fits_where_the_default_does_not():
    form = everything()
    default = selector_width(form, 1, N, VectorSpace((SCRATCH,)), lambda w: {},
                             SCRATCH, "w.hidden", INFO).blocks[0]
    assert scratch_error(default, N, HARDNESS) > scratch_tolerance(N)
    gap = width_hardness(form, 1, N)
    assert gap < HARDNESS
    head = selector_width(form, 1, N, VectorSpace((SCRATCH,)), lambda w: {}, SCRATCH,
                          "w.hidden", INFO, gap).blocks[0]
    assert scratch_error(head, N, gap) <= scratch_tolerance(N)


@pytest.mark.parametrize("n", [16, N])
def test_fitted_width_is_the_width_at_its_hardness(n):
    """fitted_selector_width builds the scores once; its gap is width_hardness's (the
    default at 16, a gentler one at 1,024) and its blocks are selector_width's at that
    gap, weight for weight."""
    form = everything()
    fitted, gap = fitted_selector_width(form, 1, n, width_space(n), one_hot_width, SCRATCH,
                                        "w.hidden", INFO)
    assert gap == width_hardness(form, 1, n)
    assert (gap == HARDNESS) == (n == 16)
    plain = selector_width(form, 1, n, width_space(n), one_hot_width, SCRATCH, "w.hidden",
                           INFO, gap)

    def weights(series):
        head, mlp = series.blocks
        return [m.matrix.tobytes() for m in (head.w_qk, head.w_ov, mlp.first, mlp.second)]

    assert weights(fitted) == weights(plain)


def counted_scratch(head):
    """Scratch at BOS (row 0's position 0), then at position 1 of a row with w real keys."""
    residual = VectorSpace((ONE, BOS, SCRATCH))
    x = np.zeros((len(WIDTHS), 1 + N, residual.dim), np.float32)
    x[:, 0, residual.index[BOS]] = 1.0
    x[:, 1:, residual.index[ONE]] = 1.0
    valid = np.arange(1 + N)[None, :] <= np.array(WIDTHS)[:, None]  # keys beyond w are PAD
    y = head.forward(residual, x, valid)[..., residual.index[SCRATCH]].astype(np.float64)
    return np.concatenate([y[:1, 0], y[:, 1]])


def test_every_sampled_width_at_1024_decodes_exactly():
    form = everything()
    gap = width_hardness(form, 1, N)
    out = width_space(N)
    series = selector_width(form, 1, N, out, one_hot_width, SCRATCH, "w.hidden", INFO, gap)
    scratch = counted_scratch(series.blocks[0])
    assert abs(scratch[0] - 1.0) < 1e-5  # BOS reads itself: every MLP unit stays off
    exact = 1.0 / (np.array(WIDTHS) + 1)
    relative = np.abs(scratch[1:] - exact) / exact
    assert relative.max() <= scratch_error(series.blocks[0], N, gap) <= scratch_tolerance(N)
    check_mlp_in_every_order(series.blocks[1], scratch.astype(np.float32), WIDTHS, N, out,
                             "N = 1024")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["length", "hist"])
def test_width_examples_compile_and_agree_at_1024(name):
    """End to end: refused at N = 1,024 before the gentler gap; now exact on full-length
    inputs and a few shorter ones (the benchmark checks 200 per example)."""
    import random

    from compiler import compile_rasp_to_model
    from rasp_runtime.verify import find_mismatches
    from examples.library import EXAMPLES

    example, vocab = EXAMPLES[name], tuple("abcde")
    program = example.build(N)
    model = compile_rasp_to_model(program, set(vocab), N)
    rng = random.Random(0)
    inputs = [example.sampler(rng, list(vocab), length) for length in (N, N, N - 1, 1, 700)]
    checked, mismatches = find_mismatches(model, program, inputs, batch_size=len(inputs))
    assert len(inputs[0]) == N and checked == len(inputs) and not mismatches, mismatches[:1]
