"""Every figure of the report is legible at the page's width, and circuit labels keep apart.

The page's figure column is 1,168 px wide: `max-width: 1200px` less `padding: 0 1em`
(16 px a side) in the report's style; an SVG wider than that is shrunk to fit, its text
with it (`figure svg { max-width: 100% }`). An SVG's width is in points, shown at
96/72 px each. So a text of s points in a figure W inches wide shows at
s · 96/72 · min(1, 1168 / (96·W)) px, and it must be at least 9 px.
"""

from __future__ import annotations

import itertools
import random

import pytest

pytest.importorskip("matplotlib")
from matplotlib.text import Text  # noqa: E402

from compiler import compile_rasp_to_model  # noqa: E402
from examples.library import EXAMPLES  # noqa: E402
from interp.plots import plot_attention, plot_circuit, plot_program, plot_residuals  # noqa: E402

COLUMN_PX = 1200 - 2 * 16
MIN_PX = 9


@pytest.fixture(scope="module", params=["dyck2", "sort"])
def example_model(request):
    example = EXAMPLES[request.param]
    n = example.max_seq_len
    model = compile_rasp_to_model(example.build(n), example.vocab, n)
    return model, ["BOS", *example.sample(random.Random(0), n, example.vocab)]


def shown_px(fig, text: Text) -> float:
    width_px = fig.get_size_inches()[0] * 96
    return text.get_fontsize() * 96 / 72 * min(1.0, COLUMN_PX / width_px)


@pytest.mark.parametrize("draw", [plot_attention, plot_residuals, plot_program, plot_circuit],
                         ids=lambda f: f.__name__)
def test_every_text_of_a_report_figure_shows_at_9_px_or_more(example_model, draw):
    model, tokens = example_model
    fig = draw(model, tokens) if draw in (plot_attention, plot_residuals) else draw(model)
    fig.draw_without_rendering()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert len(texts) > 10
    small = sorted({(round(shown_px(fig, t), 1), t.get_text()[:30]) for t in texts
                    if shown_px(fig, t) < MIN_PX})
    assert not small, f"{model.config.output_label}: text under {MIN_PX} px: {small[:5]}"


def test_no_two_circuit_edge_labels_overlap(example_model):
    model, _ = example_model
    fig = plot_circuit(model)
    renderer = fig._get_renderer()  # noqa: SLF001  the renderer savefig uses
    labels = [t for t in fig.axes[0].texts if t.get_gid() == "edge-label"]
    carried = [a for *_, a in model.ground_truth.circuit_graph("ids").edges(data=True)
               if not set(a["directions"]) <= {"one", "bos"}]
    assert len(labels) == len(carried) > 0  # every edge that carries a value is labelled
    boxes = [t.get_window_extent(renderer) for t in labels]
    clashes = [(a.get_text(), b.get_text()) for (a, ba), (b, bb) in
               itertools.combinations(zip(labels, boxes), 2) if ba.overlaps(bb)]
    assert not clashes
