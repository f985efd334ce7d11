"""Attention heads for Aggregate and SelectorWidth.

Scores. A selector is a bilinear form giving integer levels: 1 per satisfied
predicate term, so a conjunction of m terms is selected exactly at level m and
every unselected key is at level ≤ m − 1. Logits are HARDNESS × level.

BOS. Every real query also scores the BOS key: at m − ½ for Aggregate (so BOS
wins only when nothing is selected, and then the head returns BOS's value: zero,
i.e. None / 0) and at m for SelectorWidth (so BOS gets weight 1/(w+1)). The BOS
query scores only the BOS key, so it reads BOS's zero value and writes nothing.

Bound (HARDNESS = λ). Relative to a selected key, the BOS key of an Aggregate
weighs e^{−λ/2} and each unselected key at most e^{−λ}; over N ≤ 256 keys the
leak is below 257·e^{−λ/2} ≈ 5e−20 of the largest value for λ = 100: far below
the smallest gap a later block resolves (1/(257·258) for means and widths) and
below float32 resolution. Soft attention (`softest_gap`, `leak_bound`) instead takes
the smallest λ whose leak its readers still absorb, so gradients reach W_Q and W_K.
The assembler multiplies W_Q by √key_size so that
haiku's 1/√key_size scaling leaves these logits unchanged.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from craft import float_bounds
from craft.bases import BOS, ONE, BasisDirection, VectorSpace, join_spaces, zeros_matrix
from craft.blocks import MLP, AttentionHead, BlockInfo, Series
from craft.maps import BilinearForm, LinearMap

# Logit gap between adjacent score levels (see the module docstring for the bound).
HARDNESS = 100.0


def leak_bound(logit_error: float, hardness: float, max_seq_len: int,
               level_gap: float) -> float:
    """The softmax weight a head may put off the keys it should read, for any order.

    Every key it should not read (BOS included) scores at least `level_gap`·λ below
    one it reads (½ for an Aggregate's BOS, 1 for a match head), each logit errs by
    at most δ = `logit_error`, so each such key weighs at most e^{2δ − level_gap·λ}
    of a read key, and over N + 1 keys the weight off them is below
    (N + 1)·e^{2δ − level_gap·λ}. Output error: that weight times the value range.
    """
    return (max_seq_len + 1) * float(np.exp(2 * logit_error - level_gap * hardness))


def softest_gap(accepts: Callable[[float], bool], hard: float = HARDNESS) -> float:
    """The smallest whole logit gap λ below `hard` that `accepts`, else `hard` (the gap
    hard attention uses): soft attention's gap (the gentler the gap, the more gradient
    reaches W_Q and W_K)."""
    for gap in range(1, int(hard)):
        if accepts(float(gap)):
            return float(gap)
    return hard


def predicate_form(query_space: VectorSpace, key_space: VectorSpace,
                   selected: Callable[[Any, Any], bool] | None = None,
                   table: np.ndarray | None = None) -> BilinearForm:
    """Score 1 where `selected(key_value, query_value)`, else 0, on one-hot inputs.

    Both sides are extended with `one`, so a None value (the zero vector) is a
    value of its own: `selected` is also asked about None keys and queries.
    Instead of `selected`, a precomputed 0/1 `table` may be given, indexed
    [None, query values…] × [None, key values…].
    """
    if table is None:
        q_values = [None] + [d.value for d in query_space.basis]
        k_values = [None] + [d.value for d in key_space.basis]
        table = zeros_matrix(len(q_values), len(k_values))  # refuses sizes beyond memory
        table[:] = [[bool(selected(k, q)) for k in k_values] for q in q_values]
    q_read = VectorSpace((ONE,) + query_space.basis)
    k_read = VectorSpace((ONE,) + key_space.basis)
    return BilinearForm(q_read, k_read, _in_read_coordinates(table))


def _in_read_coordinates(table: np.ndarray) -> np.ndarray:
    """F_qᵀ · table · F_k, where F maps (one, e_1, …) to the indicators of
    [None, v_1, …] (None = one − Σ e_i); in O(size) rather than a matmul."""
    matrix = np.array(table, dtype=np.float64)
    matrix[:, 1:] -= matrix[:, :1]
    matrix[1:, :] -= matrix[:1, :]
    return matrix


def aggregate_head(selection: BilinearForm, selected_level: int, w_ov: LinearMap,
                   info: BlockInfo, hardness: float = HARDNESS) -> AttentionHead:
    """Mean of W_OV(value) over the selected keys; zero when none is selected."""
    return AttentionHead(_with_bos(selection, selected_level, selected_level - 0.5, hardness),
                         w_ov, info)


def match_head(scores: BilinearForm, w_ov: LinearMap, info: BlockInfo,
               hardness: float = HARDNESS) -> AttentionHead:
    """A head whose best-scoring key is always the one to read (some key always matches).

    `scores` puts the matching key at least one level above every other key and
    at a level ≥ 0; BOS sits at −1 for real queries, so it is never read.
    """
    return AttentionHead(_with_bos(scores, 1, -1.0, hardness), w_ov, info)


def selector_width_head(selection: BilinearForm, selected_level: int,
                        scratch: BasisDirection, info: BlockInfo,
                        hardness: float = HARDNESS) -> AttentionHead:
    """Writes 1/(w+1) to `scratch`, where w is the number of selected keys."""
    return width_head(width_scores(selection, selected_level, hardness), scratch, info)


def width_head(scores: BilinearForm, scratch: BasisDirection, info: BlockInfo,
               shift: float = 0.0) -> AttentionHead:
    """A width head with the given `width_scores`: copies BOS's `bos` to `scratch`, so it
    writes 1/(w+1); with a `shift` c every real key also carries −c (its `one` times −c),
    so it writes (1+c)/(w+1) − c, closer to 0 where the gaps are small."""
    if not shift:
        return AttentionHead(scores, LinearMap(VectorSpace((BOS,)), VectorSpace((scratch,)),
                                               np.ones((1, 1))), info)
    w_ov = LinearMap(VectorSpace((BOS, ONE)), VectorSpace((scratch,)),
                     np.array([[1.0], [-shift]]))
    return AttentionHead(scores, w_ov, info)


def width_scores(selection: BilinearForm, selected_level: int,
                 hardness: float = HARDNESS) -> BilinearForm:
    """A width head's scores: BOS at the selected level, so it weighs 1/(w+1)."""
    return _with_bos(selection, selected_level, selected_level, hardness)


def _with_bos(selection: BilinearForm, selected_level: int, bos_level: float,
              hardness: float) -> BilinearForm:
    queries = join_spaces(selection.query_space, _BOS_QUERIES)
    keys = join_spaces(selection.key_space, _BOS_KEYS)
    # selection.in_spaces(queries, keys): a join keeps the first space's directions first
    scores = zeros_matrix(queries.dim, keys.dim)
    scores[:selection.query_space.dim, :selection.key_space.dim] = selection.matrix
    bos_terms = zeros_matrix(queries.dim, keys.dim)
    bos_terms[queries.index[ONE], keys.index[BOS]] = bos_level
    bos_terms[queries.index[BOS], keys.index[BOS]] = selected_level
    return BilinearForm(queries, keys, (scores + bos_terms) * hardness)


# What the BOS terms read: `one` (a real query) or `bos` (the BOS query), and the BOS key.
_BOS_QUERIES = VectorSpace((ONE, BOS))
_BOS_KEYS = VectorSpace((BOS,))


def categorical_ov(value_space: VectorSpace, output_space: VectorSpace) -> LinearMap:
    """Copies value v of the aggregated SOp to value v of the output."""
    by_value = {d.value: d for d in output_space.basis}
    return LinearMap.from_action(value_space, output_space,
                                 lambda d: {by_value[d.value]: 1.0})


def numerical_ov(value_space: VectorSpace, output: BasisDirection,
                 numeric_value: Callable[[BasisDirection], float]) -> LinearMap:
    """Writes each value's number to `output` (a one-hot v gives v; a number gives itself)."""
    return LinearMap.from_action(value_space, VectorSpace((output,)),
                                 lambda d: {output: numeric_value(d)})


def default_fill(head: AttentionHead, mass: BasisDirection, default: dict[BasisDirection, float],
                 hidden_name: str) -> Series:
    """Head plus an MLP that writes `default` where the head selected nothing.

    The head also copies `one` from the keys to `mass`: ≈1 when any real key is
    selected and ≈0 when only BOS is. The MLP unit relu(one − mass) adds `default`.
    """
    mass_map = LinearMap(VectorSpace((ONE,)), VectorSpace((mass,)), np.ones((1, 1)))
    head = AttentionHead(head.w_qk, head.w_ov + mass_map, head.info)
    reads = VectorSpace((ONE, mass))
    out = VectorSpace(tuple(default))
    hidden = VectorSpace.from_values(hidden_name, [0])
    first = LinearMap(reads, hidden, np.array([[1.0], [-1.0]]))
    second = LinearMap(hidden, out, np.array([list(default.values())]))
    info = BlockInfo(head.info.exprs, "aggregate_default")
    return Series((head, MLP(first, second, info)))


def logit_error_bound(scores: BilinearForm) -> float:
    """Float32 error bound of any logit of a head scoring with `scores`, for any order.

    Query and key inputs are one-hot per SOp (directions grouped by name, `one`
    and `bos` each a group of their own), so a logit Σ xᵢMᵢⱼyⱼ has at most one
    active direction per group on each side and Σ|xᵢMᵢⱼyⱼ| ≤ S, the sum over query
    groups of the largest row sum, over key groups, of the largest |Mᵢⱼ|. The model
    computes (x @ M·√d)·y / √d: the weight and √d roundings, the query sum over
    a groups and the key sum over b groups give error ≤ γ_{a+b+4}·S
    (craft.float_bounds). The inputs' own noise is not included.
    """
    names = tuple(tuple(map(operator.itemgetter(0), space.basis))
                  for space in (scores.query_space, scores.key_space))
    matrix = scores.matrix
    if matrix.size <= MAX_REMEMBERED_SCORES:
        return _remembered_logit_error_bound(*names, matrix.shape, matrix.tobytes())
    return _logit_error_bound(*names, matrix)


# Largest score matrix whose bound is remembered (by its bytes): a head's scores recur in
# every compile of a program, and a width's are bounded twice (gap 1, then its own gap).
MAX_REMEMBERED_SCORES = 4096


@functools.lru_cache(maxsize=64)
def _remembered_logit_error_bound(query_names: tuple[str, ...], key_names: tuple[str, ...],
                                  shape: tuple[int, int], data: bytes) -> float:
    """`_logit_error_bound` of a float64 matrix given by its shape and bytes: a pure
    function of plain strings, ints and bytes, memoised."""
    return _logit_error_bound(query_names, key_names, np.frombuffer(data).reshape(shape))


def _logit_error_bound(query_names, key_names, matrix: np.ndarray) -> float:
    """`logit_error_bound` of scores whose directions have these names."""
    key_order, key_starts = _grouped_names(key_names)
    query_order, query_starts = _grouped_names(query_names)
    if not key_starts or not query_starts:
        return 0.0
    matrix = np.abs(matrix)
    if query_order is not None or key_order is not None:  # each group made contiguous
        matrix = matrix[np.ix_(query_order or range(matrix.shape[0]),
                               key_order or range(matrix.shape[1]))]
    largest = np.maximum.reduceat(matrix, key_starts, axis=1)  # per row and key group
    per_row = sum(largest.T)  # added up group by group, in the groups' order
    total = sum(np.maximum.reduceat(per_row, query_starts))
    return float_bounds.gamma(len(query_starts) + len(key_starts) + 4) * float(total)


@functools.lru_cache(maxsize=64)  # each entry holds a few tuples as long as a basis
def _grouped_names(names: tuple[str, ...]) -> tuple[tuple[int, ...] | None, tuple[int, ...]]:
    """The indices of directions with these names grouped by name (one group per SOp, in
    first-seen order; None when that is their order already), and where each group
    starts in it: a pure function of plain strings, memoised (compiles repeat spaces)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    sizes = [len(group) for group in groups.values()]
    starts = tuple(itertools.accumulate([0] + sizes[:-1])) if sizes else ()
    order = tuple(i for group in groups.values() for i in group)
    return (None if order == tuple(range(len(names))) else order), starts
