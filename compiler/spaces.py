"""Value sets → the residual subspace of every SOp.

A categorical SOp gets one direction per value (`label:value`); None is the
zero vector. A numerical SOp gets one direction (`label`) holding its value,
so its values must be numbers and never None.
"""

from __future__ import annotations

import numbers

from compiler.graph import ProgramGraph
from compiler.values import ValueSet
from craft.bases import BasisDirection, VectorSpace
from rasp import expr as rx
from rasp.errors import CompileError


def node_spaces(graph: ProgramGraph, values: dict[int, ValueSet]) -> dict[int, VectorSpace]:
    """The output subspace of every SOp node."""
    spaces = {}
    for node, value_set in values.items():
        expr, label = graph.expr(node), graph.label(node)
        if rx.is_numerical(expr):
            _check_numerical(expr, value_set)
            spaces[node] = VectorSpace((BasisDirection(label),))
        else:
            spaces[node] = VectorSpace.from_values(label, value_set.values)
    return spaces


def _check_numerical(expr, value_set: ValueSet):
    if value_set.may_be_none:
        hint = ("pass a numeric default, e.g. Aggregate(..., default=0)"
                if isinstance(expr, rx.Aggregate) else
                "make sure its input is never None (e.g. give Aggregates a default)")
        raise CompileError(expr, "a numerical SOp must never be None, but this one can be", hint)
    # (the plain types first: an isinstance check against the ABC is slow)
    bad = [v for v in value_set.values
           if type(v) not in (float, int, bool) and not isinstance(v, numbers.Real)]
    if bad:
        raise CompileError(expr, f"a numerical SOp must hold numbers, but it can be {bad[0]!r}",
                           "annotate it categorical(...) instead")

