"""craft.selector_width: head + discretising MLP, every width 0..N in float32.

Layout: position 0 is BOS (`bos` = 1 only), positions 1..N are real tokens
(`one` = 1, `indices` = 0..N-1). The expected width at each query is counted
here from the predicate; the expected output is the one-hot of that count (or
the count itself for a numerical output).

N = 8 and 64 use predicate_form over `indices`: key < query (widths 0..N-1),
key <= query (1..N), everything (N) and nothing (0), through Series.forward.

N = 256 uses a selector on small spaces, because AttentionHead.logits's
unoptimised einsum costs seq² · dim² (one pass with a 256-direction `indices`
space takes ~13 s). Keys carry a class c in 0..8 (class b < 8 on 2^b keys,
class 8 on one key); queries carry nine 0/1 "bit" SOps. The selector is the sum
of nine predicate forms, term i being "key class != i or bit_i = 1", selected at
level 9: a key of class c is selected iff bit_c = 1, so a query whose bits spell
w selects exactly w keys. Two sequences cover every w in 0..256. The numerical
output runs through Series.forward; the categorical output (257 directions)
runs the Series' head on the small residual and its MLP on the residual with the
257 output directions, which is what Series.forward does with one residual.

Errors are held to the compiler's own bound (craft.numerical.discretiser_error_bounds),
and the MLP is also run in every explicit summation order of tests.float_orders.
"""

from __future__ import annotations

import numpy as np
import pytest

from craft.attention import predicate_form
from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import MLP, AttentionHead, BlockInfo, Series
from craft.numerical import discretiser_error_bounds
from craft.selector_width import (fitted_selector_width, scratch_error, scratch_tolerance,
                                  scratch_values, selector_width)
from tests.float_orders import every_order

INFO = BlockInfo(("width",), "selector_width")
F32 = np.float32
SCRATCH = BasisDirection("width.scratch")
NUM = BasisDirection("width_num")
JUNK = BasisDirection("junk")


def width_space(n):
    return VectorSpace.from_values("width", range(n + 1))


def one_hot_width(w):
    """The expected categorical width output."""
    return {BasisDirection("width", w): 1.0}


def numerical_of(w):
    return {NUM: float(w)}


def indices_space(n):
    return VectorSpace.from_values("indices", range(n))


def idx_pred(fn):
    return lambda k, q: k is not None and q is not None and fn(k, q)


PREDICATES = {
    "lt": idx_pred(lambda k, q: k < q),
    "leq": idx_pred(lambda k, q: k <= q),
    "all": lambda k, q: True,
    "none": lambda k, q: False,
}


def index_residual(n, categorical=True):
    """The categorical output space is left out when unused: the head's cost grows as dim²."""
    base = VectorSpace((JUNK, ONE)).join(indices_space(n), VectorSpace((SCRATCH, BOS, NUM)))
    return base.join(width_space(n)) if categorical else base


def index_x(residual, n, pads=0, pad_garbage=None):
    x = np.zeros((1, 1 + n + pads, residual.dim), dtype=F32)
    x[0, 0, residual.index[BOS]] = 1.0
    x[0, :, residual.index[JUNK]] = 3.0
    for i in range(n):
        x[0, i + 1, residual.index[ONE]] = 1.0
        x[0, i + 1, residual.index[BasisDirection("indices", i)]] = 1.0
    if pads:
        x[0, 1 + n:] = pad_garbage
    return x


def index_series(n, case, output_space, output_of):
    space = indices_space(n)
    form = predicate_form(space, space, PREDICATES[case])
    return selector_width(form, 1, n, output_space, output_of, SCRATCH, "width.hidden", INFO)


def width_bounds(n, categorical):
    """The compiler's float32 error bound of the width MLP's output, indexed by width."""
    inputs = [1 / (w + 1) for w in range(n + 1)]
    outputs = np.eye(n + 1) if categorical else np.arange(n + 1.0)
    by_input = discretiser_error_bounds(inputs, outputs)  # rows in ascending 1/(w+1)
    return by_input[::-1]


def check_categorical(got, widths, n, label):
    """got: (1 + len(widths), n + 1) rows over width:0..n; row 0 is BOS."""
    assert np.all(np.abs(got[0]) < 1e-6), f"{label}: BOS position wrote {got[0]}"
    bounds = width_bounds(n, True)
    for i, w in enumerate(widths):
        expected = np.zeros(n + 1)
        expected[w] = 1.0
        err = np.abs(got[i + 1] - expected)
        assert np.all(err <= bounds[w]) and int(np.argmax(got[i + 1])) == w, (
            f"{label}: query {i} width {w}: argmax {int(np.argmax(got[i + 1]))}, "
            f"error {err.max():.3g} (bound {bounds[w].max():.3g})")


def check_numerical(got, widths, n, label):
    assert abs(got[0]) < 1e-6, f"{label}: BOS position wrote {got[0]}"
    bounds = width_bounds(n, False)[:, 0]
    for i, w in enumerate(widths):
        assert abs(got[i + 1] - w) <= bounds[w], (
            f"{label}: query {i} width {w}: got {got[i + 1]} (bound {bounds[w]:.3g})")


def check_mlp_in_every_order(mlp, scratch, widths, n, out_space, label):
    """The width MLP alone, on the head's scratch values, in every summation order."""
    residual = VectorSpace((ONE, SCRATCH, BOS)).join(out_space)
    x = np.zeros((1, 1 + len(widths), residual.dim), F32)
    x[0, 0, residual.index[BOS]] = 1.0
    x[0, 1:, residual.index[ONE]] = 1.0
    x[0, :, residual.index[SCRATCH]] = scratch
    columns = [residual.index[d] for d in out_space.basis]
    categorical = out_space.dim > 1
    bounds = width_bounds(n, categorical)[widths]
    expected = np.eye(n + 1)[widths] if categorical else np.array(widths, float)[:, None]
    for order, y in every_order(mlp, residual, x):
        got = y[0][:, columns].astype(np.float64)
        assert np.all(got[0] == 0.0), f"{label}, {order}: BOS wrote {got[0]}"
        err = np.abs(got[1:] - expected)
        assert np.all(err <= bounds), (
            f"{label}, {order}: error {err.max():.3g} > bound {bounds.max():.3g}")


def check_scratch(head, scratch, widths, n, label):
    """The head writes 1/(w+1) within the compiler's bound (`scratch_error`), and inside
    the windows the MLP's bound is computed for."""
    exact = 1.0 / (np.asarray(widths) + 1)
    relative = np.abs(np.asarray(scratch, np.float64) - exact) / exact
    assert relative.max() <= min(scratch_error(head, n), scratch_tolerance(n)), (
        f"{label}: relative error {relative.max():.3g}, bound {scratch_error(head, n):.3g}")


def counted_widths(n, case):
    pred = PREDICATES[case]
    return [sum(bool(pred(k, q)) for k in range(n)) for q in range(n)]


# =========================================================================== N = 8, 64 (indices)


@pytest.mark.parametrize("n", [8, 64])
def test_every_width_index_selectors(n):
    residual = index_residual(n)
    x = index_x(residual, n)
    seen = set()
    for case in ("lt", "leq", "all", "none"):
        widths = counted_widths(n, case)
        seen.update(widths)
        cat = index_series(n, case, width_space(n), one_hot_width)
        y = cat.forward(residual, x)
        assert y.dtype == F32
        check_categorical(y[0][:, [residual.index[d] for d in width_space(n).basis]]
                          .astype(np.float64), widths, n, f"{case} categorical")
        # only the scratch and the output directions are written
        keep = [i for i, d in enumerate(residual.basis) if d not in width_space(n) and d != SCRATCH]
        assert np.all(y[..., keep] == 0.0)
        num = index_series(n, case, VectorSpace((NUM,)), numerical_of)
        small = index_residual(n, categorical=False)
        y = num.forward(small, index_x(small, n))
        check_numerical(y[0, :, small.index[NUM]].astype(np.float64), widths, n,
                        f"{case} numerical")
    assert seen == set(range(n + 1))


@pytest.mark.parametrize("n", [8, 64])
def test_width_zero_only_bos_selected(n):
    """Nothing but BOS selected: width 0 at every query, also through the head's scratch."""
    residual = index_residual(n)
    series = index_series(n, "none", width_space(n), one_hot_width)
    y = series.forward(residual, index_x(residual, n))
    np.testing.assert_allclose(y[0, :, residual.index[SCRATCH]], 1.0, atol=1e-6)
    got = y[0][:, [residual.index[d] for d in width_space(n).basis]].astype(np.float64)
    check_categorical(got, [0] * n, n, "none")


@pytest.mark.parametrize("n", [8, 64])
def test_head_writes_one_over_w_plus_one(n):
    """The head alone: scratch = 1/(w+1) at real queries, 1 at BOS."""
    residual = index_residual(n, categorical=False)
    series = index_series(n, "lt", VectorSpace((NUM,)), numerical_of)
    head = series.blocks[0]
    assert isinstance(head, AttentionHead)
    y = head.forward(residual, index_x(residual, n))
    scratch = y[0, :, residual.index[SCRATCH]].astype(np.float64)
    assert abs(scratch[0] - 1.0) < 1e-6
    check_scratch(head, scratch[1:], counted_widths(n, "lt"), n, "lt")


@pytest.mark.parametrize("n", [8, 64])
def test_width_pad_masking_and_causal(n):
    residual = index_residual(n, categorical=False)
    pads = 3
    garbage = np.zeros(residual.dim, dtype=F32)
    garbage[residual.index[ONE]] = 1.0
    garbage[residual.index[BOS]] = 1.0
    garbage[residual.index[BasisDirection("indices", 0)]] = 1.0
    x = index_x(residual, n, pads, garbage)
    valid = np.ones((1, 1 + n + pads), dtype=bool)
    valid[0, 1 + n:] = False
    for case in ("lt", "all"):
        series = index_series(n, case, VectorSpace((NUM,)), numerical_of)
        got = series.forward(residual, x, valid)[0, :, residual.index[NUM]].astype(np.float64)
        check_numerical(got[:1 + n], counted_widths(n, case), n, f"padded {case}")
        unmasked = series.forward(residual, x)[0, :, residual.index[NUM]]
        assert np.abs(unmasked[1:1 + n] - got[1:1 + n]).max() > 0.5   # garbage matters unmasked
    # causal: 'all' counts the keys at or before the query
    residual = index_residual(n)
    series = index_series(n, "all", width_space(n), one_hot_width)
    y = series.forward(residual, index_x(residual, n), causal=True)
    got = y[0][:, [residual.index[d] for d in width_space(n).basis]].astype(np.float64)
    check_categorical(got, [i + 1 for i in range(n)], n, "causal all")


# =========================================================================== N = 256 (bit selector)

N_BIG = 256
BITS = 9
KB = VectorSpace.from_values("kclass", range(BITS))
QB = [VectorSpace.from_values(f"qbit{i}", [0, 1]) for i in range(BITS)]


def bit_selection():
    form = None
    for i in range(BITS):
        term = predicate_form(QB[i], KB, lambda k, q, i=i: k != i or q == 1)
        form = term if form is None else form + term
    return form


def key_classes():
    classes = [b for b in range(8) for _ in range(2 ** b)] + [8]
    assert len(classes) == N_BIG
    rng = np.random.default_rng(0)
    return [classes[j] for j in rng.permutation(N_BIG)]


def bits_for(w):
    """Bits whose selected classes have exactly w keys in total."""
    if w == N_BIG:
        return [1] * BITS
    return [(w >> b) & 1 for b in range(8)] + [0]


SEQ_WIDTHS = [list(range(N_BIG)), [N_BIG] + [(N_BIG - 1 - p) for p in range(1, N_BIG)]]


def bit_residual(extra=()):
    base = VectorSpace((JUNK, ONE)).join(KB, *QB, VectorSpace((SCRATCH, BOS, NUM)))
    return base.join(*extra)


def bit_x(residual, pads=0):
    classes = key_classes()
    x = np.zeros((len(SEQ_WIDTHS), 1 + N_BIG + pads, residual.dim), dtype=F32)
    x[:, 0, residual.index[BOS]] = 1.0
    x[:, :, residual.index[JUNK]] = 2.0
    for s, widths in enumerate(SEQ_WIDTHS):
        for j in range(N_BIG):
            x[s, j + 1, residual.index[ONE]] = 1.0
            x[s, j + 1, residual.index[BasisDirection("kclass", classes[j])]] = 1.0
            for i, bit in enumerate(bits_for(widths[j])):
                x[s, j + 1, residual.index[BasisDirection(f"qbit{i}", bit)]] = 1.0
        if pads:   # PAD rows that every query would select
            x[s, 1 + N_BIG:, residual.index[ONE]] = 1.0
            x[s, 1 + N_BIG:, residual.index[BasisDirection("kclass", 0)]] = 1.0
    return x


def test_bit_selector_counts():
    """Independent check of the layout: each query's bits select exactly its width."""
    classes = key_classes()
    for widths in SEQ_WIDTHS:
        for w in widths:
            bits = bits_for(w)
            assert sum(1 for c in classes if bits[c] == 1) == w
    assert set(SEQ_WIDTHS[0]) | set(SEQ_WIDTHS[1]) == set(range(N_BIG + 1))


def big_series(output_space, output_of):
    return selector_width(bit_selection(), BITS, N_BIG, output_space, output_of, SCRATCH,
                          "width.hidden", INFO)


def test_every_width_256_numerical_within_its_bound():
    # A numerical width telescopes over N steps, so its any-order float32 bound grows
    # like u·N³ (far above the compiler's budgets at N = 256, where the compiler keeps
    # widths categorical and adds a lookup); the block still meets it in every order.
    residual = bit_residual()
    series = big_series(VectorSpace((NUM,)), numerical_of)
    y = series.forward(residual, bit_x(residual))
    for s, widths in enumerate(SEQ_WIDTHS):
        check_numerical(y[s, :, residual.index[NUM]].astype(np.float64), widths, N_BIG,
                        f"sequence {s}")
        scratch = y[s, :, residual.index[SCRATCH]]
        check_scratch(series.blocks[0], scratch[1:], widths, N_BIG, f"sequence {s}")
        check_mlp_in_every_order(series.blocks[1], scratch, widths, N_BIG, VectorSpace((NUM,)),
                                 f"sequence {s}")


def run_split(series, x_small, small, big_extra):
    """Series.forward with one residual, done as head on `small` then MLP on `small + extra`."""
    head, mlp = series.blocks
    assert isinstance(head, AttentionHead) and isinstance(mlp, MLP)
    after_head = x_small + head.forward(small, x_small)
    big = small.join(big_extra)
    x_big = np.zeros(after_head.shape[:2] + (big.dim,), dtype=x_small.dtype)
    x_big[..., :small.dim] = after_head   # `big` starts with `small`'s directions
    return big, x_big + mlp.forward(big, x_big) - np.pad(x_small, ((0, 0), (0, 0), (0, big.dim - small.dim)))


def test_every_width_256_categorical():
    small = bit_residual()
    out = width_space(N_BIG)
    series = big_series(out, one_hot_width)
    big, y = run_split(series, bit_x(small), small, out)
    for s, widths in enumerate(SEQ_WIDTHS):
        got = y[s][:, [big.index[d] for d in out.basis]].astype(np.float64)
        check_categorical(got, widths, N_BIG, f"sequence {s}")
        check_mlp_in_every_order(series.blocks[1], y[s, :, big.index[SCRATCH]], widths, N_BIG,
                                 out, f"sequence {s}")


def test_256_head_scratch_and_padding():
    """Scratch = 1/(w+1) to float32 precision; masked PAD keys change nothing."""
    residual = bit_residual()
    series = big_series(VectorSpace((NUM,)), numerical_of)
    pads = 4
    x = bit_x(residual, pads)
    valid = np.ones(x.shape[:2], dtype=bool)
    valid[:, 1 + N_BIG:] = False
    y = series.forward(residual, x, valid)
    y_clean = series.forward(residual, bit_x(residual))
    np.testing.assert_allclose(y[:, :1 + N_BIG, residual.index[SCRATCH]],
                               y_clean[:, :, residual.index[SCRATCH]], atol=1e-7, rtol=0)
    for s, widths in enumerate(SEQ_WIDTHS):
        check_numerical(y[s, :1 + N_BIG, residual.index[NUM]].astype(np.float64), widths,
                        N_BIG, f"padded sequence {s}")
        scratch = y[s, :, residual.index[SCRATCH]].astype(np.float64)
        assert abs(scratch[0] - 1.0) < 1e-6
        check_scratch(series.blocks[0], scratch[1:1 + N_BIG], widths, N_BIG,
                      f"padded sequence {s}")
    # unmasked, the PAD keys (selected by every query with bit 0 set) would change the widths
    y_unmasked = series.forward(residual, x)
    assert np.abs(y_unmasked[0, 1:1 + N_BIG, residual.index[NUM]]
                  - y[0, 1:1 + N_BIG, residual.index[NUM]]).max() > 0.5


def test_width_series_structure_and_bos():
    """Series of (head, MLP); at BOS alone nothing but the scratch is written."""
    n = 8
    residual = index_residual(n)
    series = index_series(n, "all", width_space(n), one_hot_width)
    assert isinstance(series, Series) and len(series.blocks) == 2
    x = np.zeros((1, 1, residual.dim), dtype=F32)
    x[0, 0, residual.index[BOS]] = 1.0
    y = series.forward(residual, x)
    assert abs(y[0, 0, residual.index[SCRATCH]] - 1.0) < 1e-6
    others = [i for i, d in enumerate(residual.basis) if d != SCRATCH]
    assert np.all(np.abs(y[0, 0, others]) < 1e-6)


def test_width_heads_are_accepted_by_their_bound():
    """The compiler's acceptance test for width heads: a one-term selector counts to 256
    within the window of every width; the nine-term bit selector has logits near 900,
    whose float32 rounding could (in some order) blur w and w + 1, so it is refused."""
    simple = index_series(N_BIG, "lt", VectorSpace((NUM,)), numerical_of).blocks[0]
    assert scratch_error(simple, N_BIG) <= scratch_tolerance(N_BIG)
    bits = big_series(VectorSpace((NUM,)), numerical_of).blocks[0]
    assert scratch_error(bits, N_BIG) > scratch_tolerance(N_BIG)
    assert scratch_error(bits, 16) <= scratch_tolerance(16)


# =========================================================================== shifted scratch


@pytest.mark.parametrize("n", [6, 7])
def test_a_shifted_scratch_counts_every_width_within_its_smaller_bound(n):
    """The shift compiler.fusion picks where 1/(w+1) rounds too much for a numerical
    output: the head writes (1+c)/(w+1) − c (every real key carrying −c) and the MLP
    decodes it within its own bound, through Series.forward and in every summation order
    of the MLP; the bound is below the unshifted one (the point of the shift)."""
    shift = 1 / n
    widths_all = np.arange(n + 1)
    xs = scratch_values(n, shift)
    np.testing.assert_allclose(xs, (1 + shift) / (widths_all + 1) - shift, rtol=0, atol=1e-15)
    bounds = discretiser_error_bounds(xs, widths_all.astype(float))[::-1, 0]  # by width
    assert bounds.max() < width_bounds(n, False).max()
    small, space = index_residual(n, categorical=False), indices_space(n)
    seen = set()
    for case in PREDICATES:
        widths = counted_widths(n, case)
        seen.update(widths)
        series, hardness = fitted_selector_width(
            predicate_form(space, space, PREDICATES[case]), 1, n, VectorSpace((NUM,)),
            numerical_of, SCRATCH, "width.hidden", INFO, shift=shift)
        head, mlp = series.blocks
        x = index_x(small, n)
        got = series.forward(small, x)[0, :, small.index[NUM]].astype(np.float64)
        assert abs(got[0]) < 1e-6, f"{case}: BOS wrote {got[0]}"
        for i, w in enumerate(widths):
            assert abs(got[i + 1] - w) <= bounds[w], (case, w, got[i + 1], bounds[w])
        scratch = head.forward(small, x)[0, :, small.index[SCRATCH]].astype(np.float64)
        assert abs(scratch[0] - 1.0) < 1e-6  # BOS reads only itself
        exact = (1 + shift) / (np.asarray(widths) + 1)
        relative = np.abs(scratch[1:] - (exact - shift)) / exact
        assert relative.max() <= min(scratch_error(head, n, hardness, shift),
                                     scratch_tolerance(n))
        residual = VectorSpace((ONE, SCRATCH, BOS, NUM))
        fed = np.zeros((1, 1 + len(widths), residual.dim), F32)
        fed[0, 0, residual.index[BOS]] = 1.0
        fed[0, 1:, residual.index[ONE]] = 1.0
        fed[0, :, residual.index[SCRATCH]] = scratch
        for order, y in every_order(mlp, residual, fed):
            out = y[0][:, residual.index[NUM]].astype(np.float64)
            assert out[0] == 0.0 and np.all(np.abs(out[1:] - widths) <= bounds[widths]), order
    assert seen == set(range(n + 1))
