"""craft.attention: predicate forms, Aggregate heads, default fill, masking.

Layout of every residual batch: position 0 is BOS (`bos` = 1, nothing else);
positions 1..N are real tokens (`one` = 1) with `indices` = 0..N-1; optional PAD
positions follow. Expected outputs are computed here from the predicate itself
(which keys are selected) and plain means, never from the construction.
All sequence-level tests run in float32 at N = 5, 16, 64 and 256.
"""

from __future__ import annotations

import numpy as np
import pytest

from craft.attention import (aggregate_head, categorical_ov, default_fill, numerical_ov,
                             predicate_form)
from craft.bases import BOS, ONE, BasisDirection, VectorSpace
from craft.blocks import BlockInfo

INFO = BlockInfo(("agg",), "aggregate")
SIZES = [5, 16, 64, 256]
F32 = np.float32

VOCAB = ["a", "b", "c", "d", "e"]
TOKENS = VectorSpace.from_values("tokens", VOCAB)
AGG = VectorSpace.from_values("agg", list(reversed(VOCAB)) + ["dflt"])   # own order on purpose
VAL = BasisDirection("val")
MEAN = BasisDirection("mean")
MASS = BasisDirection("agg.selected")
GROUPS = 3
GRP_VALUES = list(range(GROUPS))
NUMTOK_VALUES = [-2.5, 0.0, 1.0, 4.0, 10.0]
NUMTOK = VectorSpace.from_values("numtok", NUMTOK_VALUES)


def indices_space(n):
    return VectorSpace.from_values("indices", range(n))


def grp_space():
    return VectorSpace.from_values("grp", GRP_VALUES)


def residual_space(n):
    return VectorSpace((BasisDirection("junk"), VAL)).join(
        indices_space(n), VectorSpace((ONE,)), TOKENS, AGG, grp_space(), NUMTOK,
        VectorSpace((MEAN, BOS, MASS)))


# --------------------------------------------------------------------------- helpers


def fill(residual, n, tokens=None, vals=None, grps=None, numtoks=None, pads=0, dtype=F32,
         pad_garbage=None):
    """Residual for BOS + n real positions (+ pads). Lists are per real position."""
    x = np.zeros((1, 1 + n + pads, residual.dim), dtype=dtype)
    x[0, 0, residual.index[BOS]] = 1.0
    x[0, :, residual.index[BasisDirection("junk")]] = 7.0   # an unrelated direction
    for i in range(n):
        p = i + 1
        x[0, p, residual.index[ONE]] = 1.0
        x[0, p, residual.index[BasisDirection("indices", i)]] = 1.0
        if tokens is not None and tokens[i] is not None:
            x[0, p, residual.index[BasisDirection("tokens", tokens[i])]] = 1.0
        if vals is not None:
            x[0, p, residual.index[VAL]] = vals[i]
        if grps is not None and grps[i] is not None:
            x[0, p, residual.index[BasisDirection("grp", grps[i])]] = 1.0
        if numtoks is not None and numtoks[i] is not None:
            x[0, p, residual.index[BasisDirection("numtok", numtoks[i])]] = 1.0
    if pads and pad_garbage is not None:
        x[0, 1 + n:] = pad_garbage
    return x


def col(residual, y, direction):
    return y[0, :, residual.index[direction]].astype(np.float64)


def cols(residual, y, space):
    return y[0][:, [residual.index[d] for d in space.basis]].astype(np.float64)


def onehot(space, value):
    out = np.zeros(space.dim)
    if value is not None:
        out[[d.value for d in space.basis].index(value)] = 1.0
    return out


def selected_keys(n, query_vals, key_vals, pred):
    """For each real query i, the real key indices j with pred(key_val[j], query_val[i])."""
    return [[j for j in range(n) if pred(key_vals[j], query_vals[i])] for i in range(n)]


def idx_pred(fn):
    """A predicate on index values that tolerates None (indices are never None here)."""
    return lambda k, q: k is not None and q is not None and fn(k, q)


PREDICATES = {
    "eq": idx_pred(lambda k, q: k == q),                     # 1 key
    "pair": idx_pred(lambda k, q: k // 2 == q // 2),         # 2 keys (1 for a lone last one)
    "all": lambda k, q: True,                                # N keys
    "none": lambda k, q: False,                              # nothing
    "leq": idx_pred(lambda k, q: k <= q),                    # 1..N keys
    "lt": idx_pred(lambda k, q: k < q),                      # 0..N-1 keys
    "next": idx_pred(lambda k, q: k == q + 1),               # 1 key, none for the last
}


def index_selection(n, name):
    space = indices_space(n)
    return predicate_form(space, space, PREDICATES[name])


# =========================================================================== predicate_form


def score(form, q_space, k_space, q_value, k_value, q_one=1.0, k_one=1.0, q_bos=0.0, k_bos=0.0):
    """query · M · key with explicit vectors over (one, bos, values...)."""
    q_full = VectorSpace((ONE, BOS)).join(q_space)
    k_full = VectorSpace((ONE, BOS)).join(k_space)
    q = np.zeros(q_full.dim)
    k = np.zeros(k_full.dim)
    q[0], q[1], k[0], k[1] = q_one, q_bos, k_one, k_bos
    if q_value is not None:
        q[q_full.index[BasisDirection(q_space.basis[0].name, q_value)]] = 1.0
    if k_value is not None:
        k[k_full.index[BasisDirection(k_space.basis[0].name, k_value)]] = 1.0
    return q @ form.in_spaces(q_full, k_full) @ k


PREDICATE_TABLES = {
    "eq": lambda k, q: k == q,
    "lt_none_low": lambda k, q: (k is None) or (q is not None and k < q),   # None key always
    "query_none": lambda k, q: q is None and k in (1, 3),                    # only None queries
    "both_none": lambda k, q: k is None and q is None,
    "ne": lambda k, q: k != q,                                                # None != 2 etc.
    "parity": lambda k, q: k is not None and q is not None and (k + q) % 2 == 0,
    "everything": lambda k, q: True,
    "nothing": lambda k, q: False,
}


@pytest.mark.parametrize("name", list(PREDICATE_TABLES))
def test_predicate_form_scores_every_pair_including_none(name):
    pred = PREDICATE_TABLES[name]
    q_space = VectorSpace.from_values("q", [4, 1, 3, 0, 2])
    k_space = VectorSpace.from_values("k", [3, 0, 1, 5])
    asked = set()

    def recording(k, q):
        asked.add((k, q))
        return pred(k, q)

    form = predicate_form(q_space, k_space, recording)
    q_values = [d.value for d in q_space.basis] + [None]
    k_values = [d.value for d in k_space.basis] + [None]
    assert {(k, q) for k in k_values for q in q_values} <= asked   # None is asked too
    for q in q_values:
        for k in k_values:
            expected = 1.0 if pred(k, q) else 0.0
            assert score(form, q_space, k_space, q, k) == pytest.approx(expected, abs=1e-12), (k, q)


@pytest.mark.parametrize("name", ["everything", "lt_none_low", "both_none"])
def test_predicate_form_silent_at_bos(name):
    """The BOS vector (one = 0, no value) scores 0 as a key and as a query."""
    pred = PREDICATE_TABLES[name]
    q_space = VectorSpace.from_values("q", [0, 1, 2, 3])
    k_space = VectorSpace.from_values("k", [0, 1, 2, 3])
    form = predicate_form(q_space, k_space, pred)
    for v in [None, 0, 2]:
        assert score(form, q_space, k_space, v, None, k_one=0.0, k_bos=1.0) == pytest.approx(0, abs=1e-12)
        assert score(form, q_space, k_space, None, v, q_one=0.0, q_bos=1.0) == pytest.approx(0, abs=1e-12)


def test_predicate_form_same_space_and_empty_spaces():
    space = VectorSpace.from_values("indices", range(6))
    form = predicate_form(space, space, lambda k, q: k is not None and q is not None and k <= q)
    for q in range(6):
        for k in range(6):
            assert score(form, space, space, q, k) == pytest.approx(float(k <= q), abs=1e-12)
    # with no inputs at all (Length's selector): one · one = 1 for every real pair
    always = predicate_form(VectorSpace(()), VectorSpace(()), lambda k, q: True)
    assert always.query_space == VectorSpace((ONE,)) and always.key_space == VectorSpace((ONE,))
    np.testing.assert_array_equal(always.matrix, [[1.0]])


# =========================================================================== Aggregate


def check_bos_silent(residual, y, dirs):
    for d in dirs:
        assert abs(y[0, 0, residual.index[d]]) < 1e-6, f"BOS position wrote {d}"


def check_only_writes(residual, y, allowed):
    keep = [i for i, d in enumerate(residual.basis) if d not in allowed]
    assert np.all(y[..., keep] == 0.0)


CATEGORICAL_CASES = ["eq", "pair", "all", "none", "next", "group"]


def categorical_case(n, case):
    """(selection form, tokens, expected value per query)."""
    idx = list(range(n))
    if case == "group":
        grps = [i % GROUPS for i in idx]
        tokens = [VOCAB[g] for g in grps]
        form = predicate_form(grp_space(), grp_space(), lambda k, q: k == q)
        sel = selected_keys(n, grps, grps, lambda k, q: k == q)
        return form, tokens, grps, sel
    if case == "all":
        tokens = ["c"] * n
    elif case == "pair":
        tokens = [VOCAB[(i // 2) % len(VOCAB)] for i in idx]
    else:
        tokens = [VOCAB[(i * 3) % len(VOCAB)] for i in idx]
    sel = selected_keys(n, idx, idx, PREDICATES[case])
    return index_selection(n, case), tokens, None, sel


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", CATEGORICAL_CASES)
def test_categorical_aggregate(n, case):
    residual = residual_space(n)
    form, tokens, grps, sel = categorical_case(n, case)
    head = aggregate_head(form, 1, categorical_ov(TOKENS, AGG), INFO)
    x = fill(residual, n, tokens=tokens, grps=grps)
    y = head.forward(residual, x)
    assert y.dtype == F32
    got = cols(residual, y, AGG)
    check_bos_silent(residual, y, AGG.basis)
    check_only_writes(residual, y, AGG)
    counts = set()
    for i in range(n):
        values = {tokens[j] for j in sel[i]}
        assert len(values) <= 1  # the cases select agreeing values only
        expected = onehot(AGG, values.pop() if values else None)
        counts.add(len(sel[i]))
        np.testing.assert_allclose(got[i + 1], expected, atol=1e-6, rtol=0,
                                   err_msg=f"query {i}, {len(sel[i])} selected")
    expected_counts = {"eq": {1}, "pair": {1, 2} if n % 2 else {2}, "all": {n}, "none": {0},
                       "next": {0, 1}, "group": None}[case]
    if expected_counts is not None:
        assert counts == expected_counts


NUMERIC_CASES = ["eq", "pair", "all", "none", "leq", "lt", "group"]


def numeric_case(n, case):
    idx = list(range(n))
    if case == "group":
        grps = [None if i % 7 == 3 else i % GROUPS for i in idx]  # some None groups
        form = predicate_form(grp_space(), grp_space(), lambda k, q: k == q)  # None == None too
        return form, grps, selected_keys(n, grps, grps, lambda k, q: k == q)
    return index_selection(n, case), None, selected_keys(n, idx, idx, PREDICATES[case])


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", NUMERIC_CASES)
def test_numerical_aggregate_mean(n, case):
    """Mean of arbitrary (signed, non-0/1) numbers in a numerical direction."""
    residual = residual_space(n)
    form, grps, sel = numeric_case(n, case)
    rng = np.random.default_rng(n)
    vals = np.round(rng.uniform(-10, 10, size=n), 2).astype(F32)
    head = aggregate_head(form, 1, numerical_ov(VectorSpace((VAL,)), MEAN, lambda d: 1.0), INFO)
    y = head.forward(residual, fill(residual, n, vals=vals, grps=grps))
    got = col(residual, y, MEAN)
    check_bos_silent(residual, y, [MEAN])
    check_only_writes(residual, y, VectorSpace((MEAN,)))
    v64 = vals.astype(np.float64)
    for i in range(n):
        expected = float(np.mean(v64[sel[i]])) if sel[i] else 0.0
        assert abs(got[i + 1] - expected) <= 1e-5, (i, len(sel[i]), got[i + 1], expected)


@pytest.mark.parametrize("n", SIZES)
def test_numerical_aggregate_of_categorical_numbers(n):
    """numerical_ov over a categorical SOp whose values are numbers: the prefix mean."""
    residual = residual_space(n)
    numtoks = [NUMTOK_VALUES[(i * 7 + i // 3) % len(NUMTOK_VALUES)] for i in range(n)]
    numtoks[n // 2] = None   # a None value counts as 0 in a numerical mean
    head = aggregate_head(index_selection(n, "leq"), 1,
                          numerical_ov(NUMTOK, MEAN, lambda d: d.value), INFO)
    y = head.forward(residual, fill(residual, n, numtoks=numtoks))
    got = col(residual, y, MEAN)
    check_bos_silent(residual, y, [MEAN])
    for i in range(n):
        expected = sum(0.0 if v is None else v for v in numtoks[:i + 1]) / (i + 1)
        assert abs(got[i + 1] - expected) <= 1e-5, (i, got[i + 1], expected)


@pytest.mark.parametrize("n", SIZES)
def test_aggregate_conjunction_level_two(n):
    """Two predicate terms summed, selected at level 2: key ≤ query AND same group.

    A key satisfying only one term sits at level 1 and must not leak in, and a
    query with no key satisfying both gets zero (BOS at level 1.5 wins)."""
    residual = residual_space(n)
    idx = list(range(n))
    grps = [(i * i) % GROUPS for i in idx]
    form = index_selection(n, "lt") + predicate_form(grp_space(), grp_space(), lambda k, q: k == q)
    rng = np.random.default_rng(100 + n)
    vals = np.round(rng.uniform(-5, 5, size=n), 3).astype(F32)
    head = aggregate_head(form, 2, numerical_ov(VectorSpace((VAL,)), MEAN, lambda d: 1.0), INFO)
    got = col(residual, head.forward(residual, fill(residual, n, vals=vals, grps=grps)), MEAN)
    assert abs(got[0]) < 1e-6
    v64 = vals.astype(np.float64)
    empty = 0
    for i in idx:
        sel = [j for j in idx if j < i and grps[j] == grps[i]]
        empty += not sel
        expected = float(np.mean(v64[sel])) if sel else 0.0
        assert abs(got[i + 1] - expected) <= 1e-5, (i, sel[:5], got[i + 1], expected)
    assert empty >= 1


@pytest.mark.parametrize("n", SIZES)
def test_aggregate_causal(n):
    """Causal masking: the 'all' selector becomes a prefix mean; 'next' selects nothing."""
    residual = residual_space(n)
    rng = np.random.default_rng(200 + n)
    vals = np.round(rng.uniform(-10, 10, size=n), 2).astype(F32)
    v64 = vals.astype(np.float64)
    x = fill(residual, n, vals=vals)
    ov = numerical_ov(VectorSpace((VAL,)), MEAN, lambda d: 1.0)
    got = col(residual, aggregate_head(index_selection(n, "all"), 1, ov, INFO)
              .forward(residual, x, causal=True), MEAN)
    assert abs(got[0]) < 1e-6
    for i in range(n):
        assert abs(got[i + 1] - v64[:i + 1].mean()) <= 1e-5, i
    got_next = col(residual, aggregate_head(index_selection(n, "next"), 1, ov, INFO)
                   .forward(residual, x, causal=True), MEAN)
    assert np.all(np.abs(got_next) <= 1e-6)


@pytest.mark.parametrize("n", SIZES)
def test_aggregate_pad_masking(n):
    """PAD keys full of would-be-selected garbage change nothing when masked out."""
    residual = residual_space(n)
    pads = 3
    rng = np.random.default_rng(300 + n)
    vals = np.round(rng.uniform(-10, 10, size=n), 2).astype(F32)
    tokens = ["d"] * n
    garbage = np.zeros(residual.dim, dtype=F32)
    garbage[residual.index[ONE]] = 1.0
    garbage[residual.index[BOS]] = 1.0
    garbage[residual.index[BasisDirection("indices", 0)]] = 1.0
    garbage[residual.index[BasisDirection("tokens", "a")]] = 1.0
    garbage[residual.index[VAL]] = 1000.0
    x = fill(residual, n, vals=vals, tokens=tokens, pads=pads, pad_garbage=garbage)
    valid = np.ones((1, 1 + n + pads), dtype=bool)
    valid[0, 1 + n:] = False
    x_clean = fill(residual, n, vals=vals, tokens=tokens)
    v64 = vals.astype(np.float64)
    for case in ("all", "leq", "none"):
        sel = selected_keys(n, range(n), range(n), PREDICATES[case])
        num = aggregate_head(index_selection(n, case), 1,
                             numerical_ov(VectorSpace((VAL,)), MEAN, lambda d: 1.0), INFO)
        got = col(residual, num.forward(residual, x, valid), MEAN)
        clean = col(residual, num.forward(residual, x_clean), MEAN)
        np.testing.assert_allclose(got[:n + 1], clean, atol=1e-6, rtol=0)
        for i in range(n):
            expected = float(np.mean(v64[sel[i]])) if sel[i] else 0.0
            assert abs(got[i + 1] - expected) <= 1e-5
        cat = aggregate_head(index_selection(n, case), 1, categorical_ov(TOKENS, AGG), INFO)
        got_cat = cols(residual, cat.forward(residual, x, valid), AGG)
        for i in range(n):
            np.testing.assert_allclose(got_cat[i + 1], onehot(AGG, "d" if sel[i] else None),
                                       atol=1e-6, rtol=0)
        # the garbage would matter if it were not masked (sanity check of the test itself)
        if case == "all":
            unmasked = col(residual, num.forward(residual, x), MEAN)
            assert abs(unmasked[1] - got[1]) > 1.0


def test_aggregate_batched_sequences_of_different_lengths():
    """Two sequences in one batch, the shorter padded: each matches its own run."""
    n_long, n_short = 16, 9
    residual = residual_space(n_long)
    rng = np.random.default_rng(7)
    vals_long = np.round(rng.uniform(-3, 3, size=n_long), 2).astype(F32)
    vals_short = np.round(rng.uniform(-3, 3, size=n_short), 2).astype(F32)
    x = np.concatenate([fill(residual, n_long, vals=vals_long),
                        fill(residual, n_short, vals=vals_short, pads=n_long - n_short)])
    valid = np.ones((2, 1 + n_long), dtype=bool)
    valid[1, 1 + n_short:] = False
    head = aggregate_head(index_selection(n_long, "all"), 1,
                          numerical_ov(VectorSpace((VAL,)), MEAN, lambda d: 1.0), INFO)
    y = head.forward(residual, x, valid)
    got = y[:, :, residual.index[MEAN]].astype(np.float64)
    np.testing.assert_allclose(got[0, 1:], vals_long.astype(np.float64).mean(), atol=1e-5)
    np.testing.assert_allclose(got[1, 1:1 + n_short], vals_short.astype(np.float64).mean(), atol=1e-5)
    assert abs(got[0, 0]) < 1e-6 and abs(got[1, 0]) < 1e-6


def test_aggregate_float64_also_exact():
    n = 64
    residual = residual_space(n)
    tokens = [VOCAB[(i // 2) % len(VOCAB)] for i in range(n)]
    head = aggregate_head(index_selection(n, "pair"), 1, categorical_ov(TOKENS, AGG), INFO)
    got = cols(residual, head.forward(residual, fill(residual, n, tokens=tokens, dtype=np.float64)),
               AGG)
    assert np.all(np.abs(got[0]) < 1e-12)
    for i in range(n):
        np.testing.assert_allclose(got[i + 1], onehot(AGG, tokens[i]), atol=1e-12, rtol=0)


def test_categorical_ov_and_numerical_ov_maps():
    ov = categorical_ov(TOKENS, AGG)
    for d in TOKENS.basis:
        row = ov.matrix[TOKENS.index[d]]
        np.testing.assert_array_equal(row, onehot(AGG, d.value))
    nov = numerical_ov(NUMTOK, MEAN, lambda d: d.value)
    np.testing.assert_array_equal(nov.matrix[:, 0], NUMTOK_VALUES)
    assert nov.output_space == VectorSpace((MEAN,))


# =========================================================================== default_fill


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", ["next", "lt", "none", "all"])
def test_default_fill_numerical(n, case):
    residual = residual_space(n)
    sel = selected_keys(n, range(n), range(n), PREDICATES[case])
    rng = np.random.default_rng(400 + n)
    vals = np.round(rng.uniform(-10, 10, size=n), 2).astype(F32)
    head = aggregate_head(index_selection(n, case), 1,
                          numerical_ov(VectorSpace((VAL,)), MEAN, lambda d: 1.0), INFO)
    block = default_fill(head, MASS, {MEAN: -3.5}, "agg.default")
    y = block.forward(residual, fill(residual, n, vals=vals))
    got = col(residual, y, MEAN)
    assert abs(got[0]) < 1e-6, "BOS position"
    v64 = vals.astype(np.float64)
    for i in range(n):
        expected = float(np.mean(v64[sel[i]])) if sel[i] else -3.5
        assert abs(got[i + 1] - expected) <= 1e-5, (i, len(sel[i]), got[i + 1], expected)
    check_only_writes(residual, y, VectorSpace((MEAN, MASS)))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", ["next", "lt", "none", "eq"])
def test_default_fill_categorical(n, case):
    residual = residual_space(n)
    sel = selected_keys(n, range(n), range(n), PREDICATES[case])
    tokens = [VOCAB[(i * 2) % len(VOCAB)] for i in range(n)]
    if case == "lt":
        tokens = ["b"] * n   # agreeing values for multi-key selections
    head = aggregate_head(index_selection(n, case), 1, categorical_ov(TOKENS, AGG), INFO)
    block = default_fill(head, MASS, {BasisDirection("agg", "dflt"): 1.0}, "agg.default")
    y = block.forward(residual, fill(residual, n, tokens=tokens))
    got = cols(residual, y, AGG)
    assert np.all(np.abs(got[0]) < 1e-6), "BOS position"
    for i in range(n):
        expected = onehot(AGG, tokens[sel[i][0]] if sel[i] else "dflt")
        np.testing.assert_allclose(got[i + 1], expected, atol=1e-6, rtol=0,
                                   err_msg=f"query {i}, {len(sel[i])} selected")
