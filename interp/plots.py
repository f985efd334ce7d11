"""Figures of a compiled model, every axis labelled with what it means.

Takes a `CompiledModel` (and an input) and gives a matplotlib Figure:
`plot_attention`, `plot_residuals` and `plot_decoding` here; `plot_program` and
`plot_circuit` (graphs) in interp.plots_graphs. Needs matplotlib (the `plots`
extra); `import compiler` never imports it. See docs/plots.md.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from interp.plots_base import (FONT_SIZE, HIGHLIGHT, PAGE_WIDTH, PlotError, direction_owners,
                               fmt, new_figure, sublayer_title, with_bos)
from interp.plots_graphs import plot_circuit, plot_program

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from compiler import CompiledModel

__all__ = ["PlotError", "plot_attention", "plot_circuit", "plot_decoding", "plot_program",
           "plot_residuals"]

CELL = 0.32            # inches per attention heatmap cell
COLUMN = 0.2           # inches per position in a residual panel: one rotated 7 pt token
ROW = 0.14             # inches per residual direction: one 7 pt label
PANELS_PER_ROW = 4     # attention panels, at most (fewer where they would not fit the page)
STAGES_PER_ROW = 7     # residual panels, likewise
TITLE_WIDTH = 44       # characters before a panel title wraps


def plot_attention(model: CompiledModel, tokens: Sequence[Any], layer: int | None = None,
                   head: int | None = None) -> Figure:
    """The attention pattern of every head (or of `layer` / `head`) on `tokens`.

    One heatmap per head: rows are query positions, columns key positions, both
    labelled with the input tokens; BOS is marked. The title names the head, the
    RASP selector it implements and the value it moves. Raises PlotError if the
    model has no heads or no head matches.
    """
    heads = [c for c in model.ground_truth.components if c.kind == "attn"]
    if not heads:
        raise PlotError("this model has no attention heads: there is no attention to plot")
    chosen = [c for c in heads if layer in (None, c.layer) and head in (None, c.head)]
    if not chosen:
        raise PlotError(f"no head matches layer={layer}, head={head}; the heads are "
                        f"{', '.join(c.id for c in heads)}")
    tokens = with_bos(model, tokens)
    logits = model.apply(tokens).attn_logits
    n = len(tokens)
    cols = _fitting(CELL * n + 2.2, 1.0, min(PANELS_PER_ROW, len(chosen)))
    rows = math.ceil(len(chosen) / cols)
    fig = new_figure(cols * (CELL * n + 2.2) + 1.0, rows * (CELL * n + 1.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = [fmt(t) for t in tokens]
    for ax, c in zip(axes.flat, chosen):
        image = ax.imshow(_softmax(logits[c.layer][c.head]), vmin=0, vmax=1, cmap="Blues")
        _token_axes(ax, labels)
        ax.axvline(0.5, color=HIGHLIGHT, linewidth=1)
        ax.set_xlabel("key", fontsize=8)
        ax.set_ylabel("query", fontsize=8)
        ax.set_title(_head_title(c), fontsize=FONT_SIZE, loc="left")
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.6).set_label("attention weight", fontsize=8)
    return fig


def _fitting(panel_width: float, margin: float, wanted: int) -> int:
    """How many panels of `panel_width` inches, beside `margin`, fit the report's page
    (at least one): a figure wider than the page would be shrunk, and its text with it."""
    return max(1, min(wanted, int((PAGE_WIDTH - margin) // panel_width)))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _token_axes(ax, labels: list[str]) -> None:
    """Tokens on both axes, BOS in the highlight colour."""
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    for tick in (ax.get_xticklabels()[0], ax.get_yticklabels()[0]):
        tick.set_color(HIGHLIGHT)
        tick.set_fontweight("bold")


def _head_title(c) -> str:
    """'L1.H0 → reverse', the selector, and what the head moves."""
    moved = ", ".join(c.value) if c.value else "BOS weight (it counts the selected keys)"
    predicate = c.predicate or "(selector not recorded)"
    if len(predicate) > TITLE_WIDTH:
        predicate = "\n".join(textwrap.wrap(predicate, TITLE_WIDTH))
    return f"{c.id} → {', '.join(c.exprs)}  [{c.op}]\n{predicate}\nmoves: {moved}"


def plot_residuals(model: CompiledModel, tokens: Sequence[Any]) -> Figure:
    """The residual stream after the embedding and after every sublayer, on `tokens`.

    One heatmap per stage: columns are positions (labelled with the tokens),
    rows the residual directions, labelled `sop:value` and grouped by SOp with a
    line between groups. A box marks the directions that stage's sublayer writes.
    A rotated model (interp.realism) is drawn in its named directions (the ground
    truth's basis), so the labels still hold.
    """
    tokens = with_bos(model, tokens)
    residuals = model.apply(tokens).residuals
    if model.knobs:
        residuals = [model.ground_truth.named(r) for r in residuals]
    written = _written_by_stage(model)
    d, n = model.config.d_model, len(tokens)
    labels_width = 0.06 * max(map(len, model.residual_labels)) + 0.3  # left of the first panel
    cols = _fitting(COLUMN * n + 0.4, labels_width + 1.8, min(STAGES_PER_ROW, len(residuals)))
    rows = math.ceil(len(residuals) / cols)
    fig = new_figure(cols * (COLUMN * n + 0.4) + labels_width + 1.8, rows * (ROW * d + 1.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    limit = max(1e-9, max(float(np.abs(r).max()) for r in residuals))
    boundaries = _group_boundaries(model)
    labels = [fmt(t) for t in tokens]
    for stage, (ax, residual) in enumerate(zip(axes.flat, residuals)):
        image = ax.imshow(residual.T, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                          interpolation="nearest")
        ax.set_xticks(range(n), labels, fontsize=FONT_SIZE, rotation=90)
        ax.get_xticklabels()[0].set_color(HIGHLIGHT)
        for boundary in boundaries:
            ax.axhline(boundary - 0.5, color="#555555", linewidth=0.5)
        for start, stop in _runs(written[stage]):
            ax.add_patch(_box(start, stop, n))
        ax.set_title(sublayer_title(stage - 1), fontsize=8)
    for column, ax in enumerate(axes.flat):  # d ticks on every panel would be slow
        if column % cols == 0:
            ax.set_yticks(range(d), model.residual_labels, fontsize=FONT_SIZE)
        else:
            ax.set_yticks([])
    for row in range(len(residuals) // cols):  # SOp names right of each full row: a short
        _name_groups(axes[row, cols - 1], model, n)  # last row would widen its column
    for ax in list(axes.flat)[len(residuals):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.5).set_label(
        "value (boxed: written by this sublayer)", fontsize=8)
    return fig


def _written_by_stage(model: CompiledModel) -> list[set[int]]:
    """Residual indices each stage writes: stage 0 the embeddings, stage s+1 sublayer s."""
    truth = model.ground_truth
    stages: list[set[int]] = [set() for _ in range(2 * truth.n_layers + 1)]
    for embedding in truth.embeddings:
        stages[0] |= {i for i, _ in embedding.writes}
    for c in truth.components:
        stages[c.sublayer + 1] |= {i for i, _ in c.writes}
    return stages


def _group_boundaries(model: CompiledModel) -> list[int]:
    """Residual indices where a new SOp's directions begin."""
    owners = [sop for sop, _ in direction_owners(model)]
    return [i for i in range(1, len(owners)) if owners[i] != owners[i - 1]]


def _name_groups(ax, model: CompiledModel, width: int) -> None:
    """Each SOp's name beside its rows, right of the panel."""
    owners = [sop for sop, _ in direction_owners(model)]
    starts = [0, *_group_boundaries(model)]
    for start, stop in zip(starts, [*starts[1:], len(owners)]):
        ax.text(width - 0.3, (start + stop - 1) / 2, owners[start], fontsize=FONT_SIZE,
                va="center", ha="left", clip_on=False)


def _runs(indices: set[int]) -> list[tuple[int, int]]:
    """Sorted indices as [start, stop) runs of consecutive values."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(a, b) for a, b in runs]


def _box(start: int, stop: int, width: int):
    from matplotlib.patches import Rectangle
    return Rectangle((-0.5, start - 0.5), width, stop - start, fill=False,
                     edgecolor=HIGHLIGHT, linewidth=1.5)


def plot_decoding(model: CompiledModel, tokens: Sequence[Any]) -> Figure:
    """Every recorded intermediate value at every position, as a table figure.

    The rows are those of `raspc run --trace`: the sublayer that writes the value,
    its RASP label, and its value at each position (columns headed by the input
    tokens), decoded from the residual stream. The output row is bold.
    """
    tokens = with_bos(model, tokens)
    decoded = model.decode_intermediates(tokens)
    records = sorted(model.value_records.values(), key=lambda r: r.sublayer)
    header = ["written by", "value", *(fmt(t) for t in tokens[1:])]
    cells = [[sublayer_title(r.sublayer), r.label, *(fmt(v) for v in decoded[r.label])]
             for r in records]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    fig = new_figure(max(3.0, 0.09 * sum(widths) + 0.4 * len(header)),
                     0.28 * (len(cells) + 1) + 0.6)
    ax = fig.add_subplot()
    ax.set_axis_off()
    table = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center",
                     colWidths=[(w + 2) / (sum(widths) + 2 * len(widths)) for w in widths])
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (row, _), cell in table.get_celld().items():
        if row == 0:
            cell.set_facecolor("#eeeeee")
            cell.get_text().set_fontweight("bold")
        elif records[row - 1].label == model.config.output_label:
            cell.get_text().set_fontweight("bold")
            cell.set_facecolor("#fde0dd")
    ax.set_title(f"decoded values at positions 0..{len(tokens) - 2} (output row shaded)",
                 fontsize=8)
    return fig
