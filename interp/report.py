"""One self-contained HTML page about a compiled model, for one example input.

`render_report(model, tokens)` gives the page as a string: the program listing,
the layer/head/MLP table, every plot as inline SVG (each no wider than the page, so
its 7 pt text shows at 9 px or more), the decoding table, the
ground-truth circuit and a data: link to the ground-truth JSON. Nothing on the
page fetches anything: styles are inline, fonts are drawn as SVG paths.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.plots import PlotError, plot_attention, plot_circuit, plot_program, plot_residuals
from interp.plots_base import fmt, sublayer_title, summarize_directions, with_bos
from interp.plots_graphs import describe_expr
from interp.realism import describe_knobs
from rasp import expr as rx
from rasp.traverse import topological_order, unique_labels

if TYPE_CHECKING:
    from compiler import CompiledModel

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } tr.output td { font-weight: bold; background: #fde0dd; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; overflow-x: auto; } figure svg { max-width: 100%; height: auto; }
p.note { color: #666; font-style: italic; } nav a { margin-right: 1em; }
"""
SECTIONS = (("program", "Program"), ("components", "Layers, heads and MLPs"),
            ("attention", "Attention"), ("residuals", "Residual stream"),
            ("decoding", "Decoding"), ("circuit", "Ground-truth circuit"))


def program_listing(program: rx.RASPExpr) -> str:
    """The program as one line per expression, children first: `label = Call(args)`."""
    order = topological_order(program)
    labels = unique_labels(order)
    width = max(len(labels[e.unique_id]) for e in order)
    lines = []
    for e in order:
        encoding = "  # numerical" if isinstance(e, rx.SOp) and rx.is_numerical(e) else ""
        lines.append(f"{labels[e.unique_id]:<{width}} = {describe_expr(e, labels)}{encoding}")
    return "\n".join(lines)


def figure_svg(fig) -> str:
    """The figure as an inline <svg> element: text as paths, stable ids, no date."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "rasp-compiler"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], marked: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    marks = ['<tr class="output">' if i == marked else "<tr>" for i in range(len(rows))]
    body = "".join(mark + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for mark, row in zip(marks, rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plot(draw) -> str:
    """A figure as SVG, or the reason it cannot be drawn."""
    try:
        return f"<figure>{figure_svg(draw())}</figure>"
    except PlotError as error:
        return f'<p class="note">{html.escape(str(error))}</p>'


def _components_table(model: CompiledModel) -> str:
    rows = []
    for c in model.ground_truth.components:
        sides = "; ".join(f"{side}: {', '.join(src)}" for side, src in
                          (("q", c.query), ("k", c.key), ("v", c.value)) if src)
        rows.append((c.id, sublayer_title(c.sublayer), c.op, ", ".join(c.exprs),
                     c.predicate or "", sides,
                     summarize_directions(model, [label for _, label in c.reads]),
                     summarize_directions(model, [label for _, label in c.writes])))
    return _table(("id", "sublayer", "operation", "computes", "selector", "q / k / v",
                   "reads", "writes"), rows)


def _decoding_table(model: CompiledModel, tokens: list[Any]) -> str:
    decoded = model.decode_intermediates(tokens)
    records = sorted(model.value_records.values(), key=lambda r: r.sublayer)
    rows = [(sublayer_title(r.sublayer), r.label, *map(fmt, decoded[r.label])) for r in records]
    output = next((i for i, r in enumerate(records) if r.label == model.config.output_label),
                  None)
    return _table(("written by", "value", *(f"{i}: {fmt(t)}" for i, t in enumerate(tokens[1:]))),
                  rows, output)


def _circuit_table(model: CompiledModel) -> str:
    rows = [(u, v, " ".join(a["inputs"]), summarize_directions(model, a["directions"]))
            for u, v, a in model.ground_truth.circuit_graph("ids").edges(data=True)]
    return _table(("from", "to", "read by", "directions"), rows)


def _summary(model: CompiledModel, tokens: list[Any]) -> str:
    config = model.config
    output = model.apply(tokens).decoded[1:]
    params = model.parameter_count
    facts = [("vocabulary", " ".join(map(fmt, config.vocab))),
             ("max_seq_len", config.max_seq_len), ("causal", config.causal),
             ("layers", len(config.layers)),
             ("heads per layer", ", ".join(str(l.num_heads) for l in config.layers)),
             ("MLP widths", ", ".join(str(l.mlp_hidden) for l in config.layers)),
             ("d_model", config.d_model), ("parameters", f"{params:,}"),
             ("realism knobs", describe_knobs(model)),
             ("attention", model.attention_description),
             ("example input", " ".join(map(fmt, tokens[1:]))),
             ("output", " ".join(map(fmt, output)))]
    return _table(("", ""), facts)


def render_report(model: CompiledModel, tokens: Sequence[Any], title: str | None = None) -> str:
    """The whole HTML page for `model` on one input (`tokens`, BOS optional)."""
    tokens = with_bos(model, tokens)
    title = title or f"compiled RASP program {model.config.output_label!r}"
    truth_json = model.ground_truth.to_json(indent=1)
    link = ("data:application/json;base64," +
            base64.b64encode(truth_json.encode()).decode("ascii"))
    if model.program is None:
        program = ('<p class="note">This model was loaded without its RASP program; the '
                   "listing and the program graph need the program.</p>")
    else:
        program = (f"<pre>{html.escape(program_listing(model.program))}</pre>" +
                   _plot(lambda: plot_program(model.program, model)))
    sections = {
        "program": program,
        "components": _components_table(model),
        "attention": _plot(lambda: plot_attention(model, tokens)),
        "residuals": _plot(lambda: plot_residuals(model, tokens)),
        "decoding": _decoding_table(model, tokens),  # the table plot_decoding draws, as HTML
        "circuit": _plot(lambda: plot_circuit(model)) + _circuit_table(model) +
        f'<p><a download="{html.escape(model.config.output_label)}.ground_truth.json" '
        f'href="{link}">Download the ground truth (JSON)</a></p>',
    }
    nav = "".join(f'<a href="#{key}">{name}</a>' for key, name in SECTIONS)
    body = "".join(f'<section id="{key}"><h2>{name}</h2>{sections[key]}</section>'
                   for key, name in SECTIONS)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>{_summary(model, tokens)}"
            f"{body}</body></html>\n")


def write_report(model: CompiledModel, path, tokens: Sequence[Any],
                 title: str | None = None) -> Path:
    """Write `render_report(model, tokens, title)` to `path`; returns the path."""
    path = Path(path)
    path.write_text(render_report(model, tokens, title), encoding="utf-8")
    return path
