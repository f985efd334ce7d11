"""What every plot of a compiled model shares: figures, inputs, names of directions.

Figures are plain `matplotlib.figure.Figure` objects, never pyplot's: nothing
global is touched, no window opens, and `savefig` renders with Agg (PNG) or the
SVG backend. `PlotError` is the one error a plot raises on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rasp.errors import RaspError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from compiler import CompiledModel

# One colour per kind of writer or reader, shared by the program and circuit plots.
KIND_COLORS = {
    "input": "#c7e9c0", "constant": "#e0e0e0", "map": "#fdd0a2", "sequence_map": "#fdae6b",
    "select": "#c6dbef", "aggregate": "#9ecae1", "selector_width": "#bcbddc",
    "embed": "#c7e9c0", "attn": "#9ecae1", "mlp": "#fdae6b", "output": "#fbb4b9",
}
HIGHLIGHT = "#e6550d"  # directions a sublayer writes; the BOS position
MAX_LISTED_VALUES = 3   # longer value runs print as first..last
# The smallest text, in points: 9.3 px wherever a figure is shown at its own size, as the
# report shows every figure narrower than PAGE_WIDTH.
FONT_SIZE = 7
PAGE_WIDTH = 12.0  # inches at 96 px: the report's 1,200 px column less its padding


class PlotError(RaspError):
    """A plot that cannot be drawn for this model (no heads, unknown head, no program)."""


def new_figure(width: float, height: float) -> Figure:
    """A Figure of `width` × `height` inches with constrained layout, outside pyplot."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def with_bos(model: CompiledModel, tokens: Sequence[Any]) -> list[Any]:
    """The input as the model runs it: BOS first (added if `tokens` lacks it)."""
    tokens = list(tokens)
    bos = model.config.bos
    return tokens if tokens and tokens[0] == bos else [bos, *tokens]


def fmt(value: Any) -> str:
    """A value as a cell shows it: floats to 4 significant digits, strings bare."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else repr(value)


def sublayer_title(sublayer: int) -> str:
    """'embedding', 'L0 attn', 'L0 mlp', ... for sublayer -1, 0, 1, ..."""
    if sublayer < 0:
        return "embedding"
    return f"L{sublayer // 2} {'attn' if sublayer % 2 == 0 else 'mlp'}"


def direction_owners(model: CompiledModel) -> list[tuple[str, Any]]:
    """Per residual dimension, (SOp label, value) of the value record it belongs to.

    A direction no record owns (`one`, `bos`, a head's hidden width) is its own
    group: (its residual label, None).
    """
    owners: list[tuple[str, Any]] = [(label, None) for label in model.residual_labels]
    for record in model.value_records.values():
        values = record.values or (None,)  # a numerical SOp: one direction, no value
        for dim, value in zip(record.dims, values):
            owners[dim] = (record.label, value)
    return owners


def summarize_directions(model: CompiledModel, labels: Sequence[str]) -> str:
    """Residual labels grouped by SOp: 'one, tokens:a,b,c, length:0..5'."""
    owner_of = dict(zip(model.residual_labels, direction_owners(model)))
    groups: dict[str, list[Any]] = {}
    for label in labels:
        sop, value = owner_of.get(label, (label, None))
        groups.setdefault(sop, []).append(value)
    parts = []
    for sop, values in groups.items():
        if values == [None]:
            parts.append(sop)
        elif len(values) <= MAX_LISTED_VALUES:
            parts.append(f"{sop}:{','.join(map(fmt, values))}")
        else:
            parts.append(f"{sop}:{fmt(values[0])}..{fmt(values[-1])}")
    return ", ".join(parts)

