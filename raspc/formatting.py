"""How raspc prints: values, aligned tables and sublayer names."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def fmt(value: Any) -> str:
    """A value as shown in tables: floats to 4 significant digits, strings bare."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else repr(value)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> None:
    """Print rows under a header, each column padded to its widest cell."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(header))]
    for row in cells:
        print(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())



def sublayer_name(sublayer: int) -> str:
    """'embedding', 'layer 0 attn', 'layer 0 mlp', ... for sublayer -1, 0, 1, ..."""
    if sublayer < 0:
        return "embedding"
    return f"layer {sublayer // 2} {'attn' if sublayer % 2 == 0 else 'mlp'}"


def print_warnings(lines: Sequence[str]) -> None:
    """Warnings on stderr, one line each (flushed first, so they come before the output)."""
    sys.stdout.flush()
    for line in lines:
        print(line, file=sys.stderr)
    sys.stderr.flush()
