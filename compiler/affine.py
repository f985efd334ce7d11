"""Select(indices, f(length, indices), EQ) in one head, without computing f.

When f is affine and integer-valued, u = a·length + b·index + c is a linear
function of the query's one-hots, and the score 2·u·k − k² (linear in the key's
one-hot for each query) peaks exactly at k = u, one unit above any other key.
If every query's u is a valid index (0 ≤ u < length, checked for every length
and position), some key always matches, so BOS is never needed. This is how
`reverse` needs no MLP between its length and its flip: 2 layers, not 3.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from compiler.graph import ProgramGraph
from craft.bases import ONE, VectorSpace, zeros_matrix
from craft.maps import BilinearForm
from rasp import expr as rx


@dataclasses.dataclass(frozen=True)
class AffineMatch:
    form: BilinearForm          # score levels: u² at the match, ≤ u² − 1 elsewhere
    inputs: tuple[int, ...]     # node ids read: the keys (indices) and f's sources
    description: str


def affine_match(selector: rx.Selector, graph: ProgramGraph, spaces: dict[int, VectorSpace],
                 max_seq_len: int, causal: bool) -> AffineMatch | None:
    """The one-head construction for `selector`, or None if it does not apply."""
    if causal or not isinstance(selector, rx.Select) or selector.predicate is not rx.Comparison.EQ \
            or not isinstance(selector.keys, rx.IndicesType):
        return None
    query = selector.queries
    if not isinstance(query, (rx.Map, rx.SequenceMap)) or isinstance(query, rx.LinearSequenceMap):
        return None
    roles = [_role(source) for source in query.children]
    if None in roles or len(set(roles)) != len(roles):
        return None
    coefficients = _fit(query.f, roles, max_seq_len)
    if coefficients is None:
        return None
    key = selector.keys.unique_id
    sources = [s.unique_id for s in query.children]
    form = _score_form(coefficients, roles, [spaces[s] for s in sources], spaces[key])
    labels = ", ".join(graph.label(s) for s in sources)
    return AffineMatch(form, (key, *sources),
                       f"Select(indices, {graph.label(query.unique_id)}, EQ) "
                       f"[affine in {labels}]")


def _role(source) -> str | None:
    """'length' or 'index' for a categorical source f may read; None for anything else."""
    if not rx.is_categorical(source):
        return None
    if isinstance(source, rx.IndicesType):
        return "index"
    if isinstance(source, rx.LengthType):
        return "length"
    if isinstance(source, rx.SelectorWidth) and "width_map" not in source.annotations:
        select = source.selector
        if isinstance(select, rx.Select) and select.predicate is rx.Comparison.TRUE and all(
                isinstance(s, (rx.TokensType, rx.IndicesType))
                for s in (select.keys, select.queries)):
            return "length"
    return None


def _fit(f, roles, max_seq_len) -> tuple[float, float, float] | None:
    """(a, b, c) with f = a·length + b·index + c and 0 ≤ f < length everywhere, else None."""
    def u(n, q):
        value = f(*[n if r == "length" else q for r in roles])
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not float(value).is_integer():
            raise ValueError(value)
        return float(value)

    try:
        a = u(2, 0) - u(1, 0) if "length" in roles else 0.0
        b = u(2, 1) - u(2, 0) if "index" in roles else 0.0
        c = u(1, 0) - a
        for n, q in itertools.chain.from_iterable(
                ((n, q) for q in range(n)) for n in range(1, max_seq_len + 1)):
            value = u(n, q)
            if value != a * n + b * q + c or not 0 <= value < n:
                return None
    except Exception:  # noqa: BLE001  not integer-valued, or f fails: not this construction
        return None
    return a, b, c


def _score_form(coefficients, roles, source_spaces, key_space) -> BilinearForm:
    a, b, c = coefficients
    query_space = VectorSpace((ONE,) + tuple(d for s in source_spaces for d in s.basis))
    keys = np.array([float(d.value) for d in key_space.basis])
    matrix = zeros_matrix(query_space.dim, key_space.dim)
    matrix[0] = 2 * c * keys - keys ** 2
    for role, space in zip(roles, source_spaces):
        coefficient = a if role == "length" else b
        for d in space.basis:
            matrix[query_space.index[d]] = 2 * coefficient * float(d.value) * keys
    return BilinearForm(query_space, key_space, matrix)
