"""craft.attention: predicate forms, Aggregate heads, default fill, masking.

Layout of every residual batch: position 0 is BOS (`bos` = 1, nothing else);
positions 1..N are real tokens (`one` = 1); optional PAD positions follow.
Expected outputs are computed here from the predicate itself (which keys are
selected) and plain float64 means, never from the construction.

Sequence tests run in float32 at N = 5, 16, 64 and 256. Two kinds of selector:

* index selectors: predicate_form over an `indices` space (one direction per
  position), for N = 5, 16, 64;
* class selectors: every key has a small categorical "key class" and every
  query a "query class"; one head then covers, in one pass, queries selecting
  1 key, 2 keys, all N keys, nothing, a large subset and the None-valued keys,
  plus a None-valued query. These run at every N including 256.
  (AttentionHead.logits uses an unoptimised three-operand einsum whose cost is
  seq² · dim², so an `indices` space of 256 directions makes one forward pass
  take ~13 s; the class selectors keep the residual small.)

Tolerances in float32: a mean over w keys sums w products in float32, so the
error can reach about w · 2^-24 · max|value| from summation alone (observed
1.07e-6 for a one-hot averaged over 78 keys). The bound used is
1e-6 + 2 · w · 2^-24 · max|value|, i.e. 1e-6 for w ≤ 2 and ~3e-5 for a 0/1
value at w = 256, which still rejects any leak from BOS or unselected keys.
"""

from __future__ import annotations

import numpy as np
import pytest

from craft.attention import (aggregate_head, categorical_ov, default_fill, numerical_ov,
                             predicate_form)
from craft.bases import BOS, ONE, BasisDirection, VectorSpace

from tests.craft_attention_helpers import (
    INFO, SIZES, INDEX_SIZES, F32, VOCAB, TOKENS, AGG, VAL, MEAN, MASS, NUMTOK_VALUES,
    NUMTOK, KC, QC_VALUES, QC, QUERY_CYCLE, class_pred, key_classes, query_classes,
    class_selection, residual_space, fill, col, cols, onehot, tol, index_selection,
    index_selected, class_selected, mean_ov, random_vals, check_only_writes, check_means,
    check_onehots,
)


def test_class_layout_covers_the_cases():
    """The class selector really gives 1, 2, N, 0 and None-related selections."""
    for n in SIZES:
        counts = {q: len(s) for q, s in zip(query_classes(n), class_selected(n))}
        assert counts["one"] == 1 and counts["two"] == 2 and counts["all"] == n
        assert counts["nothing"] == 0 and counts["rest"] >= 1
        if n > 5:
            assert counts["nones"] >= 1 and counts[None] >= 3


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


def test_class_predicate_scores():
    form = class_selection()
    for q in QC_VALUES + [None]:
        for k in [0, 1, 2, None]:
            assert score(form, QC, KC, q, k) == pytest.approx(float(class_pred(k, q)), abs=1e-12)


# =========================================================================== Aggregate: categorical


INDEX_CATEGORICAL_CASES = ["eq", "pair", "all", "none", "next"]


@pytest.mark.parametrize("n", INDEX_SIZES)
@pytest.mark.parametrize("case", INDEX_CATEGORICAL_CASES)
def test_categorical_aggregate_index_selectors(n, case):
    residual = residual_space(n, with_indices=True)
    if case == "all":
        tokens = ["c"] * n
    elif case == "pair":
        tokens = [VOCAB[(i // 2) % len(VOCAB)] for i in range(n)]
    else:
        tokens = [VOCAB[(i * 3) % len(VOCAB)] for i in range(n)]
    sel = index_selected(n, case)
    head = aggregate_head(index_selection(n, case), 1, categorical_ov(TOKENS, AGG), INFO)
    y = head.forward(residual, fill(residual, n, tokens=tokens))
    assert y.dtype == F32
    check_only_writes(residual, y, AGG)
    expected = []
    for keys in sel:
        values = {tokens[j] for j in keys}
        assert len(values) <= 1   # agreeing values only
        expected.append(values.pop() if values else None)
    check_onehots(cols(residual, y, AGG), expected, [len(s) for s in sel], case)
    counts = {len(s) for s in sel}
    assert counts == {"eq": {1}, "pair": {1, 2} if n % 2 else {2}, "all": {n}, "none": {0},
                      "next": {0, 1}}[case]


@pytest.mark.parametrize("n", SIZES)
def test_categorical_aggregate_class_selector(n):
    """1, 2, N, 0, a large subset, None keys, None query: one head, two sequences.

    Sequence 0: tokens by key class (agreeing within each selected class).
    Sequence 1: every token 'e' (so the select-everything query agrees too)."""
    residual = residual_space(n, with_indices=False)
    by_class = {0: "a", 1: "b", 2: "c", None: "b"}
    tokens = [by_class[k] for k in key_classes(n)]
    x = np.concatenate([fill(residual, n, tokens=tokens, classes=True),
                        fill(residual, n, tokens=["e"] * n, classes=True)])
    head = aggregate_head(class_selection(), 1, categorical_ov(TOKENS, AGG), INFO)
    y = head.forward(residual, x)
    check_only_writes(residual, y, AGG)
    sel = class_selected(n)
    counts = [len(s) for s in sel]
    agreeing = [i for i, s in enumerate(sel) if len({tokens[j] for j in s}) <= 1]
    assert len(agreeing) >= n - (n + 6) // 7   # only the 'all' queries disagree
    got0 = cols(residual, y, AGG, 0)
    assert np.all(np.abs(got0[0]) < 1e-6)
    for i in agreeing:
        value = tokens[sel[i][0]] if sel[i] else None
        np.testing.assert_allclose(got0[i + 1], onehot(AGG, value), atol=tol(counts[i]), rtol=0,
                                   err_msg=f"query {i} ({query_classes(n)[i]}), {counts[i]} selected")
    check_onehots(cols(residual, y, AGG, 1), ["e" if s else None for s in sel], counts, "all e")


# =========================================================================== Aggregate: numerical


INDEX_NUMERIC_CASES = ["eq", "pair", "all", "none", "leq", "lt"]


@pytest.mark.parametrize("n", INDEX_SIZES)
@pytest.mark.parametrize("case", INDEX_NUMERIC_CASES)
def test_numerical_aggregate_index_selectors(n, case):
    """Mean of arbitrary signed numbers for 1, 2, N, 0, prefix (1..N) and 0..N-1 keys."""
    residual = residual_space(n, with_indices=True)
    vals = random_vals(n, n)
    head = aggregate_head(index_selection(n, case), 1, mean_ov(), INFO)
    y = head.forward(residual, fill(residual, n, vals=vals))
    check_only_writes(residual, y, VectorSpace((MEAN,)))
    check_means(col(residual, y, MEAN), vals, index_selected(n, case), label=case)


@pytest.mark.parametrize("n", SIZES)
def test_numerical_aggregate_class_selector(n):
    residual = residual_space(n, with_indices=False)
    vals = random_vals(n, 10 + n)
    head = aggregate_head(class_selection(), 1, mean_ov(), INFO)
    y = head.forward(residual, fill(residual, n, vals=vals, classes=True))
    check_only_writes(residual, y, VectorSpace((MEAN,)))
    check_means(col(residual, y, MEAN), vals, class_selected(n), label="classes")


@pytest.mark.parametrize("n", SIZES)
def test_numerical_aggregate_of_categorical_numbers(n):
    """numerical_ov over a categorical SOp whose values are numbers (None counts as 0)."""
    residual = residual_space(n, with_indices=False)
    numtoks = [NUMTOK_VALUES[(i * 7 + i // 3) % len(NUMTOK_VALUES)] for i in range(n)]
    numtoks[n // 2] = None
    head = aggregate_head(class_selection(), 1, numerical_ov(NUMTOK, MEAN, lambda d: d.value), INFO)
    y = head.forward(residual, fill(residual, n, numtoks=numtoks, classes=True))
    as_numbers = [0.0 if v is None else v for v in numtoks]
    check_means(col(residual, y, MEAN), as_numbers, class_selected(n), label="numtok")


@pytest.mark.parametrize("n", SIZES)
def test_aggregate_conjunction_level_two(n):
    """Two predicate terms summed and selected at level 2: query class AND key parity.

    A key satisfying only one term sits at level 1 and must not leak in; a query
    with no key satisfying both gets zero (BOS at level 1.5 wins)."""
    residual = residual_space(n, with_indices=False)
    parity = [j % 2 for j in range(n)]
    numtoks = [0.0 if p == 0 else 4.0 for p in parity]           # parity as numtok 0 / 4
    second = predicate_form(QC, NUMTOK, lambda k, q: k == 4.0 and q != "two")
    form = class_selection() + second
    vals = random_vals(n, 20 + n)
    head = aggregate_head(form, 2, mean_ov(), INFO)
    y = head.forward(residual, fill(residual, n, vals=vals, numtoks=numtoks, classes=True))
    sel = [[j for j in keys if parity[j] == 1 and q != "two"]
           for keys, q in zip(class_selected(n), query_classes(n))]
    assert any(not s for s in sel) and any(len(s) > 2 for s in sel) or n < 16
    check_means(col(residual, y, MEAN), vals, sel, label="conjunction")


@pytest.mark.parametrize("n", SIZES)
def test_aggregate_causal(n):
    """Causal masking: only keys at or before the query count."""
    residual = residual_space(n, with_indices=False)
    vals = random_vals(n, 30 + n)
    head = aggregate_head(class_selection(), 1, mean_ov(), INFO)
    y = head.forward(residual, fill(residual, n, vals=vals, classes=True), causal=True)
    sel = [[j for j in keys if j <= i] for i, keys in enumerate(class_selected(n))]
    check_means(col(residual, y, MEAN), vals, sel, label="causal")
    # categorical, all tokens equal: one-hot exactly where something is selected
    head_cat = aggregate_head(class_selection(), 1, categorical_ov(TOKENS, AGG), INFO)
    y_cat = head_cat.forward(residual, fill(residual, n, tokens=["a"] * n, classes=True),
                             causal=True)
    check_onehots(cols(residual, y_cat, AGG), ["a" if s else None for s in sel],
                  [len(s) for s in sel], "causal categorical")


@pytest.mark.parametrize("n", INDEX_SIZES)
def test_aggregate_causal_index_selector(n):
    residual = residual_space(n, with_indices=True)
    vals = random_vals(n, 40 + n)
    x = fill(residual, n, vals=vals)
    y = aggregate_head(index_selection(n, "all"), 1, mean_ov(), INFO).forward(residual, x, causal=True)
    check_means(col(residual, y, MEAN), vals, [list(range(i + 1)) for i in range(n)], label="prefix")
    y = aggregate_head(index_selection(n, "next"), 1, mean_ov(), INFO).forward(residual, x, causal=True)
    check_means(col(residual, y, MEAN), vals, [[] for _ in range(n)], label="next, causal")


def garbage_row(residual):
    """A PAD row that would be selected by everything and carry large values."""
    g = np.zeros(residual.dim, dtype=F32)
    for d in (ONE, BOS, BasisDirection("kc", 0), BasisDirection("kc", 1), BasisDirection("kc", 2),
              BasisDirection("tokens", "a"), BasisDirection("indices", 0)):
        if d in residual:
            g[residual.index[d]] = 1.0
    g[residual.index[VAL]] = 1000.0
    return g


@pytest.mark.parametrize("n", SIZES)
def test_aggregate_pad_masking(n):
    """PAD keys full of would-be-selected garbage change nothing when masked out."""
    residual = residual_space(n, with_indices=False)
    pads = 3
    vals = random_vals(n, 50 + n)
    x = fill(residual, n, vals=vals, tokens=["d"] * n, classes=True, pads=pads,
             pad_garbage=garbage_row(residual))
    x_clean = fill(residual, n, vals=vals, tokens=["d"] * n, classes=True)
    valid = np.ones((1, 1 + n + pads), dtype=bool)
    valid[0, 1 + n:] = False
    sel = class_selected(n)
    num = aggregate_head(class_selection(), 1, mean_ov(), INFO)
    got = col(residual, num.forward(residual, x, valid), MEAN)
    clean = col(residual, num.forward(residual, x_clean), MEAN)
    np.testing.assert_allclose(got[:n + 1], clean, atol=1e-6, rtol=0)
    check_means(got, vals, sel, label="padded")
    cat = aggregate_head(class_selection(), 1, categorical_ov(TOKENS, AGG), INFO)
    got_cat = cols(residual, cat.forward(residual, x, valid), AGG)
    check_onehots(got_cat, ["d" if s else None for s in sel], [len(s) for s in sel], "padded")
    # the garbage would matter if it were not masked (a check of the test itself)
    unmasked = col(residual, num.forward(residual, x), MEAN)
    assert abs(unmasked[1 + QUERY_CYCLE.index("all")] - got[1 + QUERY_CYCLE.index("all")]) > 1.0


@pytest.mark.parametrize("n", INDEX_SIZES)
def test_aggregate_pad_masking_index_selector(n):
    residual = residual_space(n, with_indices=True)
    pads = 2
    vals = random_vals(n, 60 + n)
    x = fill(residual, n, vals=vals, pads=pads, pad_garbage=garbage_row(residual))
    valid = np.ones((1, 1 + n + pads), dtype=bool)
    valid[0, 1 + n:] = False
    for case in ("all", "leq", "none", "eq"):
        head = aggregate_head(index_selection(n, case), 1, mean_ov(), INFO)
        got = col(residual, head.forward(residual, x, valid), MEAN)
        check_means(got, vals, index_selected(n, case), label=f"padded {case}")


def test_aggregate_batched_sequences_of_different_lengths():
    """Two sequences in one batch, the shorter padded: each matches its own mean."""
    n_long, n_short = 16, 9
    residual = residual_space(n_long, with_indices=True)
    vals_long, vals_short = random_vals(n_long, 70), random_vals(n_short, 71)
    x = np.concatenate([fill(residual, n_long, vals=vals_long),
                        fill(residual, n_short, vals=vals_short, pads=n_long - n_short)])
    valid = np.ones((2, 1 + n_long), dtype=bool)
    valid[1, 1 + n_short:] = False
    head = aggregate_head(index_selection(n_long, "all"), 1, mean_ov(), INFO)
    y = head.forward(residual, x, valid)
    check_means(col(residual, y, MEAN, 0), vals_long, [list(range(n_long))] * n_long)
    check_means(col(residual, y, MEAN, 1)[:1 + n_short], vals_short, [list(range(n_short))] * n_short)


def test_aggregate_float64_also_exact():
    n = 64
    residual = residual_space(n, with_indices=True)
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
        np.testing.assert_array_equal(ov.matrix[TOKENS.index[d]], onehot(AGG, d.value))
    nov = numerical_ov(NUMTOK, MEAN, lambda d: d.value)
    np.testing.assert_array_equal(nov.matrix[:, 0], NUMTOK_VALUES)
    assert nov.output_space == VectorSpace((MEAN,))


# =========================================================================== default_fill


@pytest.mark.parametrize("n", SIZES)
def test_default_fill_numerical(n):
    residual = residual_space(n, with_indices=False)
    vals = random_vals(n, 80 + n)
    head = aggregate_head(class_selection(), 1, mean_ov(), INFO)
    block = default_fill(head, MASS, {MEAN: -3.5}, "agg.default")
    y = block.forward(residual, fill(residual, n, vals=vals, classes=True))
    check_only_writes(residual, y, VectorSpace((MEAN, MASS)))
    sel = class_selected(n)
    assert any(not s for s in sel) and any(s for s in sel)
    check_means(col(residual, y, MEAN), vals, sel, default=-3.5, label="default fill")


@pytest.mark.parametrize("n", SIZES)
def test_default_fill_categorical(n):
    residual = residual_space(n, with_indices=False)
    head = aggregate_head(class_selection(), 1, categorical_ov(TOKENS, AGG), INFO)
    block = default_fill(head, MASS, {BasisDirection("agg", "dflt"): 1.0}, "agg.default")
    y = block.forward(residual, fill(residual, n, tokens=["b"] * n, classes=True))
    sel = class_selected(n)
    check_onehots(cols(residual, y, AGG), ["b" if s else "dflt" for s in sel],
                  [len(s) for s in sel], "default fill")


@pytest.mark.parametrize("n", INDEX_SIZES)
@pytest.mark.parametrize("case", ["next", "lt", "none", "all"])
def test_default_fill_index_selectors(n, case):
    residual = residual_space(n, with_indices=True)
    vals = random_vals(n, 90 + n)
    block = default_fill(aggregate_head(index_selection(n, case), 1, mean_ov(), INFO),
                         MASS, {MEAN: 2.25}, "agg.default")
    y = block.forward(residual, fill(residual, n, vals=vals))
    check_means(col(residual, y, MEAN), vals, index_selected(n, case), default=2.25, label=case)


@pytest.mark.parametrize("n", [16, 256])
def test_default_fill_with_padding_and_causal(n):
    residual = residual_space(n, with_indices=False)
    vals = random_vals(n, 95 + n)
    pads = 2
    x = fill(residual, n, vals=vals, classes=True, pads=pads, pad_garbage=garbage_row(residual))
    valid = np.ones((1, 1 + n + pads), dtype=bool)
    valid[0, 1 + n:] = False
    block = default_fill(aggregate_head(class_selection(), 1, mean_ov(), INFO),
                         MASS, {MEAN: 5.0}, "agg.default")
    y = block.forward(residual, x, valid, causal=True)
    sel = [[j for j in keys if j <= i] for i, keys in enumerate(class_selected(n))]
    check_means(col(residual, y, MEAN), vals, sel, default=5.0, label="default causal padded")
