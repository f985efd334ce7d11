"""Every plot of every library example renders, with the labels and values it promises.

Expected strings come from outside the plotting code: the evaluator's labels
and values, the compiler's recorded selectors and residual labels, the input
tokens. Figures render to PNG through Agg before their texts are read.
"""

import io
import random
import subprocess
import sys

import pytest

matplotlib = pytest.importorskip("matplotlib")

import rasp  # noqa: E402
from compiler import CompiledModel, compile_rasp_to_model  # noqa: E402
from examples.library import EXAMPLES  # noqa: E402
from interp.plots import (PlotError, plot_attention, plot_circuit, plot_decoding,  # noqa: E402
                          plot_program, plot_residuals)

N = 5
BOS = "BOS"


@pytest.fixture(scope="module")
def compiled():
    """name -> (model, tokens): every example at N = 5, with a fixed sampled input.

    One XLA compilation per model dominates; skipping XLA's optimisation passes
    (as tests/test_fuzz.py does) roughly halves it. Restored afterwards.
    """
    import jax

    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    models = {}

    def get(name):
        if name not in models:
            example = EXAMPLES[name]
            model = compile_rasp_to_model(example.build(N), example.vocab, N, example.causal)
            rng = random.Random(1)
            tokens = max((example.sample(rng, N) for _ in range(6)), key=len)
            models[name] = model, tokens
        return models[name]

    yield get
    jax.config.update("jax_disable_most_optimizations", previous)


def rendered_texts(fig) -> list[str]:
    """Every text of the figure (titles, tick labels, cells, node labels) after drawing."""
    fig.savefig(io.BytesIO(), format="png", dpi=30)
    texts = list(fig.findobj(matplotlib.text.Text))
    texts += [cell.get_text() for ax in fig.axes for table in ax.tables
              for cell in table.get_celld().values()]  # a cell's text is not its child
    return [t.get_text() for t in texts if t.get_text()]


def tick_labels(fig) -> tuple[set[str], set[str]]:
    """The x and y tick labels of every axes, after drawing."""
    fig.savefig(io.BytesIO(), format="png", dpi=30)
    return tuple({t.get_text() for ax in fig.axes for t in getattr(ax, f"get_{axis}ticklabels")()}
                 for axis in "xy")


def squashed(text: str) -> str:
    return " ".join(text.split())


def shown(value) -> str:
    """A value as a table cell should show it (independent of the plotting code)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("name", EXAMPLES)
def test_attention_titles_are_the_selectors_and_axes_the_tokens(compiled, name):
    model, tokens = compiled(name)
    fig = plot_attention(model, tokens)
    titles = [squashed(ax.get_title(loc="left")) for ax in fig.axes]
    heads = [c for c in model.components if c.kind == "attn"]
    for head in heads:
        assert any(f"L{head.layer}.H{head.head}" in t and squashed(head.info.predicate) in t
                   for t in titles), (head.info.predicate, titles)
        for moved in head.info.value:
            assert any(moved in t for t in titles)
    expected = {BOS, *map(str, tokens)}
    xs, ys = tick_labels(fig)
    assert expected <= xs and expected <= ys


def test_attention_of_one_head():
    example = EXAMPLES["reverse"]
    model = compile_rasp_to_model(example.build(N), example.vocab, N)
    fig = plot_attention(model, ["a", "b"], layer=1, head=0)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert len(titles) == 1 and titles[0].startswith("L1.H0")
    with pytest.raises(PlotError, match="L0.H0, L1.H0"):
        plot_attention(model, ["a"], layer=7)


@pytest.mark.parametrize("name", EXAMPLES)
def test_residuals_label_every_direction_and_position(compiled, name):
    model, tokens = compiled(name)
    fig = plot_residuals(model, tokens)
    xs, ys = tick_labels(fig)
    assert set(model.residual_labels) <= ys
    assert {BOS, *map(str, tokens)} <= xs
    titles = {ax.get_title() for ax in fig.axes}
    layers = len(model.config.layers)
    assert {"embedding", f"L{layers - 1} attn", f"L{layers - 1} mlp"} <= titles
    # one box per run of directions a sublayer writes: at least one per component
    boxes = [p for ax in fig.axes for p in ax.patches if not p.get_fill()]
    assert len(boxes) >= len({(c.layer, c.kind) for c in model.components})


@pytest.mark.parametrize("name", EXAMPLES)
def test_program_nodes_are_the_evaluator_labels_and_their_components(compiled, name):
    model, tokens = compiled(name)
    _, intermediates = rasp.evaluate(model.program, tokens, causal=model.config.causal,
                                     return_intermediates=True)
    texts = rendered_texts(plot_program(model.program, model))
    assert set(intermediates) <= {t.split("\n")[0] for t in texts}
    texts = "\n".join(texts)
    for c in model.components:
        assert f"L{c.layer}.{'H' if c.kind == 'attn' else 'M'}" in texts


@pytest.mark.parametrize("name", EXAMPLES)
def test_circuit_nodes_and_edge_labels(compiled, name):
    model, _ = compiled(name)
    graph = model.ground_truth.circuit_graph()
    texts = rendered_texts(plot_circuit(model))
    assert set(graph.nodes) <= {t.split("\n")[0] for t in texts}
    for u, v, attrs in graph.edges(data=True):
        sops = {d.split(":")[0] for d in attrs["directions"]} - {"one", "bos"}
        if sops:  # edges of one/bos only are drawn faint, unlabelled
            sides = " ".join(attrs["inputs"])
            assert any(t.startswith(sides) and all(s in t for s in sops) for t in texts), \
                (u, v, attrs)
    if name == "reverse":
        hooks = {t.split("\n")[0] for t in rendered_texts(plot_circuit(model, "hook"))}
        assert {"blocks.1.attn.hook_result[0]", "blocks.0.hook_mlp_out", "output"} <= hooks


@pytest.mark.parametrize("name", EXAMPLES)
def test_decoding_table_holds_the_evaluator_values(compiled, name):
    model, tokens = compiled(name)
    output, intermediates = rasp.evaluate(model.program, tokens, causal=model.config.causal,
                                          return_intermediates=True)
    cells = rendered_texts(plot_decoding(model, tokens))
    for label, record in model.value_records.items():
        assert label in cells
        if label in intermediates:  # a numerical value is decoded as a float
            values = [float(v) if record.numerical else v for v in intermediates[label]]
            assert {shown(v) for v in values} <= set(cells), label
    if not model.config.output_numerical:
        assert {shown(v) for v in output} <= set(cells)
    assert set(map(str, tokens)) <= set(cells)


def _no_heads_model():
    program = rasp.Map(lambda t: t.upper(), rasp.tokens).named("upper")
    return compile_rasp_to_model(program, {"a", "b"}, 3)


def test_a_model_without_heads_is_refused_by_attention_and_drawn_by_the_rest():
    model = _no_heads_model()
    assert not any(c.kind == "attn" for c in model.components)
    with pytest.raises(PlotError, match="no attention heads"):
        plot_attention(model, ["a", "b"])
    for plot in (plot_residuals, plot_decoding):
        assert "upper" in "\n".join(rendered_texts(plot(model, ["a", "b"])))
    assert "upper" in "\n".join(rendered_texts(plot_program(model.program, model)))
    assert "L0.M0" in "\n".join(rendered_texts(plot_circuit(model)))


def test_a_model_without_mlps_draws_every_plot(compiled):
    model, tokens = compiled("shift_by")
    assert not any(c.kind == "mlp" for c in model.components)
    for fig in (plot_attention(model, tokens), plot_residuals(model, tokens),
                plot_program(model), plot_circuit(model), plot_decoding(model, tokens)):
        assert rendered_texts(fig)


def test_a_loaded_model_has_no_program_to_draw(compiled, tmp_path):
    model, tokens = compiled("reverse")
    model.save(tmp_path / "reverse.npz")
    loaded = CompiledModel.load(tmp_path / "reverse.npz")
    with pytest.raises(PlotError, match="without its RASP program"):
        plot_program(loaded)
    assert "L1.H0" in "\n".join(rendered_texts(plot_circuit(loaded)))
    with pytest.raises(PlotError, match="granularity"):
        plot_circuit(loaded, "layer")


def test_program_alone_and_svg_output():
    program = EXAMPLES["reverse"].build(N)
    fig = plot_program(program)
    assert {"reverse", "flip", "opp_idx", "length", "tokens", "indices"} <= \
        {t.split("\n")[0] for t in rendered_texts(fig)}
    assert not any("L1.H0" in t for t in rendered_texts(fig))
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    assert buffer.getvalue().lstrip().startswith("<?xml") and "<svg" in buffer.getvalue()


def test_importing_the_packages_does_not_import_matplotlib():
    code = ("import sys, compiler, rasp, interp, raspc.cli; "
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_raspc_plot_writes_each_kind_and_refuses_mistakes(tmp_path, capsys):
    from raspc.cli import main

    for kind, suffix in (("attention", "png"), ("program", "svg"), ("decoding", "png")):
        out = tmp_path / f"{kind}.{suffix}"
        assert main(["plot", "reverse", "--max-seq-len", "4", "--kind", kind,
                     "--input", "a", "b", "-o", str(out)]) == 0
        assert out.stat().st_size > 1000
    assert "input a b" in capsys.readouterr().out
    assert main(["plot", "reverse", "--kind", "circuit", "-o", str(tmp_path / "c.txt")]) == 2
    assert main(["plot", "reverse", "--kind", "attention", "--layer", "5",
                 "-o", str(tmp_path / "a.png")]) == 1
    assert main(["compile", "reverse", "--max-seq-len", "4", "-o",
                 str(tmp_path / "reverse.npz")]) == 0
    assert main(["plot", str(tmp_path / "reverse.npz"), "--kind", "program",
                 "-o", str(tmp_path / "p.png")]) == 2
    assert main(["plot", str(tmp_path / "reverse.npz"), "--kind", "residuals",
                 "-o", str(tmp_path / "r.png")]) == 0
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(errors) == 3 and all(e.startswith("raspc: error: ") for e in errors), errors
    assert "must end in .png" in errors[0] and "L0.H0, L1.H0" in errors[1]
    assert "saved without its RASP program" in errors[2]


def test_raspc_plot_without_matplotlib_says_what_to_install(monkeypatch, capsys, tmp_path):
    from raspc.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    assert main(["plot", "reverse", "--kind", "program", "-o", str(tmp_path / "p.png")]) == 2
    assert main(["report", "reverse", "-o", str(tmp_path / "r.html")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all("pip install 'rasp-compiler[plots]'" in e for e in errors)


def test_heatmaps_show_the_models_own_attention_and_residuals(compiled):
    # The arrays drawn are read back from each AxesImage and compared with the
    # model's own forward (softmax of its attention logits done here in numpy).
    import numpy as np

    model, tokens = compiled("reverse")
    out = model.apply([BOS, *tokens])
    fig = plot_attention(model, tokens)
    drawn = {ax.get_title(loc="left").split(" ")[0]: np.asarray(ax.images[0].get_array())
             for ax in fig.axes if ax.get_title(loc="left")}
    heads = [c for c in model.components if c.kind == "attn"]
    assert len(drawn) == len(heads)
    for head in heads:
        logits = np.asarray(out.attn_logits[head.layer][head.head], np.float64)
        pattern = np.exp(logits - logits.max(-1, keepdims=True))
        pattern /= pattern.sum(-1, keepdims=True)
        np.testing.assert_allclose(drawn[f"L{head.layer}.H{head.head}"], pattern, atol=1e-6)
    # and by hand: the flip head's query i (1..n, after BOS) reads key n + 1 − i
    n = len(tokens)
    flip = drawn["L1.H0"]
    assert [int(np.argmax(flip[i])) for i in range(1, n + 1)] == [n + 1 - i
                                                                  for i in range(1, n + 1)]
    fig = plot_residuals(model, tokens)
    images = [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]
    assert len(images) == len(out.residuals)
    for image, residual in zip(images, out.residuals):
        np.testing.assert_array_equal(image, np.asarray(residual).T)
    assert any(np.abs(image).max() > 0.5 for image in images)
