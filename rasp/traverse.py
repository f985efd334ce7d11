"""Walking an expression DAG: each node once, children before parents.

Shared sub-expressions are visited once, so the walk is linear in the number of
distinct expressions even for diamond-shaped programs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from rasp.expr import RASPExpr


def topological_order(root: RASPExpr,
                      children: Callable[[RASPExpr], Sequence[RASPExpr]] | None = None
                      ) -> list[RASPExpr]:
    """Every expression reachable from `root`, children first, root last.

    Iterative post-order DFS in child order, so the result is deterministic and
    deep programs do not hit Python's recursion limit. O(nodes + edges).
    `children` replaces `expr.children` as the edges to follow (e.g. a parsed
    expression's source arguments).
    """
    if children is None:
        return list(_children_first(root.unique_id, root))
    return _walk(root, children)


@functools.lru_cache(maxsize=16)
def _children_first(root_id: int, root: RASPExpr) -> tuple[RASPExpr, ...]:
    """`topological_order(root)` along `expr.children`, remembered for the last roots: a
    compile walks each program several times (lowering, domain, fusion, graph). Expressions
    are immutable and ids are never reused, so an order never goes stale; the id keys the
    cache, so that no two expressions are ever compared (an SOp's == builds a Map)."""
    return tuple(_walk(root, lambda expr: expr.children))


def _walk(root: RASPExpr, children: Callable[[RASPExpr], Sequence[RASPExpr]]
          ) -> list[RASPExpr]:
    order: list[RASPExpr] = []
    done: set[int] = set()
    stack: list[tuple[RASPExpr, bool]] = [(root, False)]
    while stack:
        expr, children_done = stack.pop()
        if expr.unique_id in done:
            continue
        if children_done:
            done.add(expr.unique_id)
            order.append(expr)
            continue
        stack.append((expr, True))
        for child in reversed(children(expr)):
            if child.unique_id not in done:
                stack.append((child, False))
    return order


# Names of the compiled residual's special directions (craft.bases ONE and BOS): a
# numerical SOp's direction is named by its label, so an SOp called `one` would share
# the constant direction and read 1 too many. Such an SOp is labelled `one_2`.
RESERVED_LABELS = ("one", "bos")


def unique_labels(order: list[RASPExpr]) -> dict[int, str]:
    """A label per expression id, made unique by suffixing repeats `_2`, `_3`, ...

    Two different expressions may share a user-given name (e.g. a helper that
    names its result and is called twice); the first in `order` keeps the name.
    RESERVED_LABELS are never given out.
    """
    taken: set[str] = set(RESERVED_LABELS)
    return {expr.unique_id: fresh_name(expr.label, taken) for expr in order}


def fresh_name(base: str, taken: set[str]) -> str:
    """`base`, or the first of `base_2`, `base_3`, ... not in `taken`; adds it to `taken`."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name
