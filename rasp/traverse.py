"""Walking an expression DAG: each node once, children before parents.

Shared sub-expressions are visited once, so the walk is linear in the number of
distinct expressions even for diamond-shaped programs.
"""

from __future__ import annotations

from rasp.expr import RASPExpr


def topological_order(root: RASPExpr) -> list[RASPExpr]:
    """Every expression reachable from `root`, children first, root last.

    Iterative post-order DFS in child order, so the result is deterministic and
    deep programs do not hit Python's recursion limit. O(nodes + edges).
    """
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
        for child in reversed(expr.children):
            if child.unique_id not in done:
                stack.append((child, False))
    return order


def unique_labels(order: list[RASPExpr]) -> dict[int, str]:
    """A label per expression id, made unique by suffixing repeats `_2`, `_3`, ...

    Two different expressions may share a user-given name (e.g. a helper that
    names its result and is called twice); the first in `order` keeps the name.
    """
    labels: dict[int, str] = {}
    taken: set[str] = set()
    for expr in order:
        label, n = expr.label, 1
        while label in taken:
            n += 1
            label = f"{expr.label}_{n}"
        taken.add(label)
        labels[expr.unique_id] = label
    return labels
