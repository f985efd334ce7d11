"""Property tests of the reference evaluator against brute-force definitions.

The brute-force side is plain Python written here, independently of `rasp`:
a truth table per comparison, counting loops, exact means with `Fraction`,
and a tiny interpreter for selector trees.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction

from hypothesis import given, settings, strategies as st

import rasp

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None)

# predicate(key, query), spelt out independently of rasp.Comparison
REFERENCE = {
    "EQ": lambda key, query: key == query,
    "LT": lambda key, query: key < query,
    "LEQ": lambda key, query: key <= query,
    "GT": lambda key, query: key > query,
    "GEQ": lambda key, query: key >= query,
    "NEQ": lambda key, query: key != query,
    "TRUE": lambda key, query: True,
    "FALSE": lambda key, query: False,
}
COMPARISONS = sorted(REFERENCE)

small_ints = st.integers(-3, 3)
token_lists = st.lists(small_ints, min_size=1, max_size=8)


@st.composite
def keys_and_queries(draw):
    n = draw(st.integers(1, 8))
    keys = draw(st.lists(small_ints, min_size=n, max_size=n))
    queries = draw(st.lists(small_ints, min_size=n, max_size=n))
    return keys, queries


@st.composite
def matrices(draw, n):
    return [draw(st.lists(st.booleans(), min_size=n, max_size=n)) for _ in range(n)]


def brute_select(keys, queries, predicate):
    """matrix[q][k] = predicate(keys[k], queries[q])."""
    return [[bool(predicate(key, query)) for key in keys] for query in queries]


# ------------------------------------------------------------------------- Select


@SETTINGS
@given(st.sampled_from(COMPARISONS), keys_and_queries())
def test_select_matches_predicate_on_all_pairs(name, kq):
    keys, queries = kq
    sel = rasp.Select(rasp.tokens, rasp.ConstantSOp(queries), getattr(rasp.Comparison, name))
    got = rasp.evaluate(sel, keys)
    n = len(keys)
    assert len(got) == n and all(len(row) == n for row in got)
    for q in range(n):
        for k in range(n):
            assert got[q][k] == REFERENCE[name](keys[k], queries[q]), (q, k)


@SETTINGS
@given(st.sampled_from(COMPARISONS), token_lists)
def test_select_tokens_against_tokens(name, xs):
    sel = rasp.Select(rasp.tokens, rasp.tokens, getattr(rasp.Comparison, name))
    assert rasp.evaluate(sel, xs) == brute_select(xs, xs, REFERENCE[name])


@SETTINGS
@given(st.integers(1, 3), st.integers(-2, 2), st.integers(2, 4), token_lists)
def test_select_with_callable_predicate(a, b, m, xs):
    predicate = lambda key, query: (a * key + b * query) % m == 0  # noqa: E731
    sel = rasp.Select(rasp.tokens, rasp.indices, predicate)
    assert rasp.evaluate(sel, xs) == brute_select(xs, list(range(len(xs))), predicate)


@SETTINGS
@given(st.sampled_from(COMPARISONS), st.lists(st.one_of(st.none(), small_ints),
                                              min_size=1, max_size=8))
def test_none_is_never_selected(name, xs):
    sel = rasp.Select(rasp.tokens, rasp.tokens, getattr(rasp.Comparison, name))
    got = rasp.evaluate(sel, xs)
    for q, query in enumerate(xs):
        for k, key in enumerate(xs):
            expected = key is not None and query is not None and REFERENCE[name](key, query)
            assert got[q][k] == expected


# ------------------------------------------------------------------ SelectorWidth


@SETTINGS
@given(st.sampled_from(COMPARISONS), keys_and_queries())
def test_selector_width_counts(name, kq):
    keys, queries = kq
    sel = rasp.Select(rasp.tokens, rasp.ConstantSOp(queries), getattr(rasp.Comparison, name))
    got = rasp.evaluate(rasp.SelectorWidth(sel), keys)
    expected = []
    for query in queries:
        count = 0
        for key in keys:
            if REFERENCE[name](key, query):
                count += 1
        expected.append(count)
    assert got == expected


@SETTINGS
@given(st.data())
def test_selector_width_of_constant_selector(data):
    n = data.draw(st.integers(1, 8))
    matrix = data.draw(matrices(n))
    got = rasp.evaluate(rasp.SelectorWidth(rasp.ConstantSelector(matrix)), [0] * n)
    assert got == [row.count(True) for row in matrix]


# ---------------------------------------------------------------------- Aggregate


def exact_mean(values):
    return Fraction(sum(values), len(values))


@SETTINGS
@given(st.data())
def test_numerical_aggregate_is_mean_of_selected(data):
    n = data.draw(st.integers(1, 8))
    matrix = data.draw(matrices(n))
    values = data.draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n))
    agg = rasp.numerical(rasp.Aggregate(rasp.ConstantSelector(matrix),
                                        rasp.ConstantSOp(values), default=0))
    got = rasp.evaluate(agg, ["x"] * n)
    for q in range(n):
        chosen = [values[k] for k in range(n) if matrix[q][k]]
        if not chosen:
            assert got[q] == 0
        else:
            assert math.isclose(got[q], exact_mean(chosen), rel_tol=1e-12, abs_tol=1e-12)


@SETTINGS
@given(st.data())
def test_numerical_aggregate_is_exact_on_fractions(data):
    n = data.draw(st.integers(1, 8))
    matrix = data.draw(matrices(n))
    values = data.draw(st.lists(st.fractions(min_value=-5, max_value=5, max_denominator=9),
                                min_size=n, max_size=n))
    agg = rasp.numerical(rasp.Aggregate(rasp.ConstantSelector(matrix),
                                        rasp.ConstantSOp(values), default=None))
    got = rasp.evaluate(agg, [0] * n)
    for q in range(n):
        chosen = [values[k] for k in range(n) if matrix[q][k]]
        assert got[q] == (sum(chosen, Fraction(0)) / len(chosen) if chosen else None)


@SETTINGS
@given(st.sampled_from(COMPARISONS), token_lists)
def test_numerical_aggregate_of_map_of_tokens(name, xs):
    squares = rasp.numerical(rasp.Map(lambda x: x * x - 1, rasp.tokens))
    sel = rasp.Select(rasp.tokens, rasp.tokens, getattr(rasp.Comparison, name))
    agg = rasp.numerical(rasp.Aggregate(sel, squares, default=-7))
    got = rasp.evaluate(agg, xs)
    for q, query in enumerate(xs):
        chosen = [key * key - 1 for key in xs if REFERENCE[name](key, query)]
        if chosen:
            assert math.isclose(got[q], exact_mean(chosen), rel_tol=1e-12, abs_tol=1e-12)
        else:
            assert got[q] == -7


@SETTINGS
@given(st.data())
def test_categorical_aggregate_gathers_single_selection(data):
    xs = data.draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=8))
    n = len(xs)
    targets = data.draw(st.lists(st.integers(-1, n - 1), min_size=n, max_size=n))
    sel = rasp.Select(rasp.indices, rasp.ConstantSOp(targets), rasp.Comparison.EQ)
    got = rasp.evaluate(rasp.Aggregate(sel, rasp.tokens, default="?"), xs)
    assert got == [xs[t] if t >= 0 else "?" for t in targets]


@SETTINGS
@given(token_lists)
def test_categorical_aggregate_of_agreeing_values(xs):
    # Every selected key holds the query's own token, so all selected values agree.
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ)
    got = rasp.evaluate(rasp.Aggregate(sel, rasp.Map(lambda x: 3 * x, rasp.tokens)), xs)
    assert got == [3 * x for x in xs]


@SETTINGS
@given(token_lists)
def test_categorical_aggregate_of_differing_values_raises(xs):
    sel = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE)
    agg = rasp.Aggregate(sel, rasp.tokens).named("all_tokens")
    if len(set(xs)) == 1:
        assert rasp.evaluate(agg, xs) == xs
    else:
        try:
            rasp.evaluate(agg, xs)
        except rasp.EvaluationError as error:
            assert "all_tokens" in str(error) and "position 0" in str(error)
        else:
            raise AssertionError("differing values must raise EvaluationError")


# ----------------------------------------------------- composite selector trees

LEAF_SOPS = {"tokens": rasp.tokens, "indices": rasp.indices}


def leaf_values(name, xs):
    return list(xs) if name == "tokens" else list(range(len(xs)))


select_leaves = st.tuples(st.just("select"), st.sampled_from(sorted(LEAF_SOPS)),
                          st.sampled_from(sorted(LEAF_SOPS)), st.sampled_from(COMPARISONS))
constant_leaves = st.tuples(st.just("const"), st.integers(0, 30))
selector_specs = st.recursive(
    st.one_of(select_leaves, constant_leaves),
    lambda children: st.one_of(
        st.tuples(st.just("and"), children, children),
        st.tuples(st.just("or"), children, children),
        st.tuples(st.just("not"), children),
    ),
    max_leaves=6,
)


def const_matrix(seed, n):
    return [[(q * 7 + k * 3 + seed) % 5 < 2 for k in range(n)] for q in range(n)]


def build(spec, n, use_operators):
    kind = spec[0]
    if kind == "select":
        _, keys, queries, name = spec
        return rasp.Select(LEAF_SOPS[keys], LEAF_SOPS[queries], getattr(rasp.Comparison, name))
    if kind == "const":
        return rasp.ConstantSelector(const_matrix(spec[1], n))
    if kind == "not":
        inner = build(spec[1], n, use_operators)
        return ~inner if use_operators else rasp.SelectorNot(inner)
    a, b = build(spec[1], n, use_operators), build(spec[2], n, use_operators)
    if kind == "and":
        return a & b if use_operators else rasp.SelectorAnd(a, b)
    return a | b if use_operators else rasp.SelectorOr(a, b)


def brute(spec, xs):
    """The selection matrix of `spec`, computed directly."""
    n = len(xs)
    kind = spec[0]
    if kind == "select":
        _, keys, queries, name = spec
        return brute_select(leaf_values(keys, xs), leaf_values(queries, xs), REFERENCE[name])
    if kind == "const":
        return const_matrix(spec[1], n)
    if kind == "not":
        inner = brute(spec[1], xs)
        return [[not inner[q][k] for k in range(n)] for q in range(n)]
    a, b = brute(spec[1], xs), brute(spec[2], xs)
    op = operator.and_ if kind == "and" else operator.or_
    return [[op(a[q][k], b[q][k]) for k in range(n)] for q in range(n)]


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(selector_specs, token_lists, st.booleans())
def test_composite_selectors_are_elementwise(spec, xs, use_operators):
    sel = build(spec, len(xs), use_operators)
    assert rasp.evaluate(sel, xs) == brute(spec, xs)


@SETTINGS
@given(selector_specs, token_lists)
def test_selector_width_of_composite(spec, xs):
    width = rasp.SelectorWidth(build(spec, len(xs), True))
    assert rasp.evaluate(width, xs) == [row.count(True) for row in brute(spec, xs)]


# ------------------------------------------------------------------------ causal


def causal_mask(n):
    return [[k <= q for k in range(n)] for q in range(n)]


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(selector_specs, token_lists)
def test_causal_equals_and_with_prefix_mask(spec, xs):
    n = len(xs)
    sel = build(spec, n, True)
    prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)  # key <= query
    causal = rasp.evaluate(sel, xs, causal=True)
    assert causal == rasp.evaluate(sel & prefix, xs)
    expected = brute(spec, xs)
    mask = causal_mask(n)
    assert causal == [[expected[q][k] and mask[q][k] for k in range(n)] for q in range(n)]


@SETTINGS
@given(selector_specs, token_lists)
def test_causal_selector_width_and_mean(spec, xs):
    n = len(xs)
    sel = build(spec, n, True)
    matrix = brute(spec, xs)
    width = rasp.evaluate(rasp.SelectorWidth(sel), xs, causal=True)
    mean = rasp.evaluate(rasp.numerical(rasp.Aggregate(sel, rasp.tokens, default=0)), xs,
                         causal=True)
    for q in range(n):
        chosen = [xs[k] for k in range(q + 1) if matrix[q][k]]
        assert width[q] == len(chosen)
        if chosen:
            assert math.isclose(mean[q], exact_mean(chosen), rel_tol=1e-12, abs_tol=1e-12)
        else:
            assert mean[q] == 0


@SETTINGS
@given(token_lists)
def test_causal_prefix_mean_of_tokens(xs):
    everything = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE)
    mean = rasp.numerical(rasp.Aggregate(everything, rasp.tokens, default=0))
    got = rasp.evaluate(mean, xs, causal=True)
    for q in range(len(xs)):
        assert math.isclose(got[q], exact_mean(xs[:q + 1]), rel_tol=1e-12, abs_tol=1e-12)


# ---------------------------------------------------------------- SOp operators


ARITHMETIC = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
    "!=": operator.ne,
}


def _apply(symbol, a, b):
    return {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
        "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b,
        ">=": lambda: a >= b, "==": lambda: a == b, "!=": lambda: a != b,
    }[symbol]()


@SETTINGS
@given(st.sampled_from(sorted(ARITHMETIC)), small_ints, token_lists)
def test_operators_with_constants(symbol, c, xs):
    op = ARITHMETIC[symbol]
    assert rasp.evaluate(_apply(symbol, rasp.tokens, c), xs) == [op(x, c) for x in xs]
    assert rasp.evaluate(_apply(symbol, c, rasp.tokens), xs) == [op(c, x) for x in xs]


@SETTINGS
@given(st.sampled_from(sorted(ARITHMETIC)), token_lists)
def test_operators_between_sops(symbol, xs):
    op = ARITHMETIC[symbol]
    got = rasp.evaluate(_apply(symbol, rasp.tokens, rasp.indices), xs)
    assert got == [op(x, i) for i, x in enumerate(xs)]


@SETTINGS
@given(st.integers(-3, 3), st.integers(-3, 3), token_lists)
def test_linear_sequence_map(a, b, xs):
    lsm = rasp.LinearSequenceMap(rasp.tokens, rasp.length, a, b)
    assert rasp.evaluate(lsm, xs) == [a * x + b * len(xs) for x in xs]
