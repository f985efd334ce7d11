"""Edge labels that overlap neither each other nor the node boxes.

`place_edge_labels` runs after a graph figure's layout is fixed: for each edge it
tries points along the drawn arc (display coordinates, the arc3 curve matplotlib
draws) and keeps the first whose text box is clear of the boxes placed so far,
measuring each box with the figure's own renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Where along an edge (0: source, 1: target) a label may sit, most readable first.
ALONG = (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85)
CLEARANCE = 2.0  # display pixels kept between a label and anything else
EDGE_LABEL_GID = "edge-label"  # how an edge label is told apart (and named in the SVG)


@dataclass(frozen=True)
class EdgeLabel:
    """The text to write on the edge from `start` to `end` (data coordinates), drawn as
    an arc3 curve of bend `rad`."""

    start: tuple[float, float]
    end: tuple[float, float]
    rad: float
    text: str


def arc_point(start, end, rad: float, t: float) -> tuple[float, float]:
    """The point at `t` on matplotlib's arc3 curve from `start` to `end` (a quadratic
    Bézier whose control point sits `rad` × the chord off its middle, in display units)."""
    (x1, y1), (x2, y2) = start, end
    cx, cy = (x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)
    a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t ** 2
    return a * x1 + b * cx + c * x2, a * y1 + b * cy + c * y2


def place_edge_labels(ax, labels: Sequence[EdgeLabel], obstacles: Sequence, font_size: float
                      ) -> tuple[list, int]:
    """Draw each label on `ax` at its first clear place; returns (the Text artists, how
    many found no clear place and sit at their least crowded one). `obstacles` are
    artists (node texts with their boxes) that labels must not cover."""
    renderer = ax.figure._get_renderer()  # noqa: SLF001  the renderer savefig will use
    taken = [_extent(artist, renderer).padded(CLEARANCE) for artist in obstacles]
    to_data = ax.transData.inverted()
    drawn, crowded = [], 0
    for label in labels:
        start, end = ax.transData.transform(label.start), ax.transData.transform(label.end)
        text = ax.text(0, 0, label.text, fontsize=font_size, ha="center", va="center",
                       zorder=4, bbox=dict(facecolor="white", edgecolor="none", alpha=0.85,
                                           pad=0.5))
        text.set_in_layout(False)
        text.set_gid(EDGE_LABEL_GID)
        best = None
        for t in ALONG:
            text.set_position(to_data.transform(arc_point(start, end, label.rad, t)))
            box = text.get_window_extent(renderer).padded(CLEARANCE)
            hits = sum(box.overlaps(other) for other in taken)
            if best is None or hits < best[0]:
                best = (hits, text.get_position(), box)
            if hits == 0:
                break
        hits, position, box = best
        text.set_position(position)
        crowded += hits > 0
        taken.append(box)
        drawn.append(text)
    return drawn, crowded


def _extent(artist, renderer):
    """The display box of a text with its frame (the frame when it has one)."""
    patch = artist.get_bbox_patch() if hasattr(artist, "get_bbox_patch") else None
    return (patch or artist).get_window_extent(renderer)
