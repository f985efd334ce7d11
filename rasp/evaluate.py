"""The reference evaluator: the meaning of a RASP program on one input.

Every compiled model is judged against this. Values are Python objects; None
means "no value" and propagates through Maps and SequenceMaps.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from rasp import expr as rx
from rasp.errors import EvaluationError
from rasp.traverse import topological_order, unique_labels

SelectionMatrix = list[list[bool]]  # indexed [query][key]


RESERVED_BOS = "BOS"  # the compiled models' BOS token, never a vocabulary token


def evaluate(program: rx.RASPExpr, xs: Sequence[Any], causal: bool = False,
             return_intermediates: bool = False):
    """Evaluate `program` on the input sequence `xs`.

    Args:
      program: an SOp (gives a list of values) or a Selector (gives a matrix
        indexed [query][key]).
      xs: the input tokens, without BOS (a leading "BOS" is refused: it is the
        compiled model's own token); a str is split into characters.
      causal: if True, each query sees only keys at positions <= its own.
      return_intermediates: if True, also return a dict from each expression's
        (unique) label to its value.

    Raises:
      EvaluationError: naming the expression (and position, where there is one)
        that has no well-defined value.
    """
    if not isinstance(program, rx.RASPExpr):
        raise TypeError(f"evaluate: program must be a RASP expression, got {program!r}")
    if isinstance(xs, (bytes, dict)) or not isinstance(xs, Sequence):
        raise TypeError(f"evaluate: input must be a sequence of tokens, got {xs!r}")
    xs = list(xs)
    if not xs:
        raise EvaluationError("empty input: a RASP program needs at least one token")
    if isinstance(xs[0], str) and xs[0] == RESERVED_BOS:
        raise EvaluationError(f"the input starts with {RESERVED_BOS!r}, which the compiler "
                              "reserves for its own BOS token: evaluate takes the tokens "
                              f"alone (model.apply takes them after {RESERVED_BOS!r}); "
                              "drop the leading BOS")
    order = topological_order(program)
    values: dict[int, Any] = {}
    for node in order:
        values[node.unique_id] = _evaluate_node(node, xs, values, causal)
    result = values[program.unique_id]
    if not return_intermediates:
        return result
    labels = unique_labels(order)
    return result, {labels[n.unique_id]: values[n.unique_id] for n in order}


def _evaluate_node(node, xs, values, causal):
    n = len(xs)

    def value_of(child):
        return values[child.unique_id]

    match node:
        case rx.TokensType():
            return list(xs)
        case rx.IndicesType():
            return list(range(n))
        case rx.LengthType():
            return [n] * n
        case rx.Map():
            return [None if x is None else _call(node, node.f, (x,), i)
                    for i, x in enumerate(value_of(node.inner))]
        case rx.SequenceMap():
            return [None if x is None or y is None else _call(node, node.f, (x, y), i)
                    for i, (x, y) in enumerate(zip(value_of(node.fst), value_of(node.snd)))]
        case rx.Full():
            return [node.fill] * n
        case rx.ConstantSOp():
            return _constant(node, node.value, n)
        case rx.SelectorWidth():
            return [sum(row) for row in value_of(node.selector)]
        case rx.Aggregate():
            return _aggregate(node, value_of(node.selector), value_of(node.sop))
        case rx.Select():
            return _select(node, value_of(node.keys), value_of(node.queries), causal)
        case rx.ConstantSelector():
            rows = [_constant(node, row or (), n) for row in _constant(node, node.value, n)]
            return [[bool(s) and (not causal or k <= q) for k, s in enumerate(row)]
                    for q, row in enumerate(rows)]
        case rx.SelectorOr():
            return [[a or b for a, b in zip(ra, rb)]
                    for ra, rb in zip(value_of(node.fst), value_of(node.snd))]
        case rx.SelectorAnd():
            return [[a and b for a, b in zip(ra, rb)]
                    for ra, rb in zip(value_of(node.fst), value_of(node.snd))]
        case rx.SelectorNot():
            return [[not s and (not causal or k <= q) for k, s in enumerate(row)]
                    for q, row in enumerate(value_of(node.inner))]
    raise EvaluationError(f"{node.label}: unknown expression type {type(node).__name__}")


def _call(node, f, args, position):
    try:
        return f(*args)
    except Exception as error:  # a user function failed: say where and on what
        shown = args[0] if len(args) == 1 else args
        raise EvaluationError(
            f"{node.label}: its function raised {type(error).__name__}: {error} "
            f"on input {shown!r} at position {position}") from error


def _constant(node, value, n):
    if node.check_length and len(value) != n:
        raise EvaluationError(f"{node.label}: constant has length {len(value)} "
                              f"but the input has length {n}")
    return list(value[:n]) + [None] * (n - len(value))


def _select(node, keys, queries, causal) -> SelectionMatrix:
    matrix = []
    for q, query in enumerate(queries):
        row = []
        for k, key in enumerate(keys):
            if (causal and k > q) or key is None or query is None:
                row.append(False)
                continue
            try:
                row.append(bool(node.predicate(key, query)))
            except Exception as error:
                raise EvaluationError(
                    f"{node.label}: predicate raised {type(error).__name__}: {error} "
                    f"on key {key!r} (position {k}) and query {query!r} (position {q})"
                ) from error
        matrix.append(row)
    return matrix


def _aggregate(node, matrix: SelectionMatrix, sop_values):
    numerical = rx.is_numerical(node)
    out = []
    for q, row in enumerate(matrix):
        selected = [v for v, s in zip(sop_values, row) if s]
        if not selected:
            out.append(node.default)
        elif numerical:
            if not all(isinstance(v, numbers.Real) for v in selected):
                raise EvaluationError(f"{node.label}: numerical aggregate at position {q} "
                                      f"selects non-numeric values {selected!r}")
            out.append(sum(selected) / len(selected))
        else:
            first = selected[0]
            if any(v != first for v in selected[1:]):
                raise EvaluationError(
                    f"{node.label}: categorical aggregate at position {q} selects "
                    f"differing values {selected!r}; it needs one value (or all equal)")
            out.append(first)
    return out
