"""`raspc plot` and `raspc report`: figures and an HTML page of a compiled model.

Both take an example name, path/to/file.py:function or a saved model.npz, and
an input (default: a sample from the program's sampler with a fixed seed).
matplotlib is imported only when one of them runs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from examples.library import uniform
from raspc.running import parse_tokens
from raspc.targets import TARGET_HELP, CliError, load_model_or_target

if TYPE_CHECKING:
    from compiler import CompiledModel

KINDS = ("attention", "residuals", "program", "circuit", "decoding")
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
DEFAULT_SEED = 0
DRAWS = 8  # the default input is the longest of this many seeded samples
DPI = 100


def load_for_plotting(args) -> tuple[CompiledModel, str, list[Any]]:
    """(model, title, tokens) for a plot or report command's arguments."""
    model, title, target = load_model_or_target(args)
    if target is not None:
        sample = target.sample
    else:
        config = model.config

        def sample(rng):
            return uniform(rng, list(config.vocab), rng.randint(1, config.max_seq_len))
    if args.input:
        return model, title, parse_tokens(args.input, model)
    rng = random.Random(DEFAULT_SEED)
    return model, title, max((sample(rng) for _ in range(DRAWS)), key=len)


def _plots():
    try:
        import matplotlib  # noqa: F401  interp.plots imports it only when drawing
        from interp import plots
    except ImportError as error:
        raise CliError(f"plots need matplotlib ({error}): pip install 'rasp-compiler[plots]'") \
            from None
    return plots


def cmd_plot(args) -> int:
    """Draw one kind of plot of a model to a PNG, SVG or PDF file."""
    output = Path(args.output)
    if output.suffix.lower() not in FIGURE_SUFFIXES:
        raise CliError(f"-o {args.output}: the file must end in {', '.join(FIGURE_SUFFIXES)}")
    plots = _plots()
    model, _, tokens = load_for_plotting(args)
    if args.kind == "attention":
        fig = plots.plot_attention(model, tokens, args.layer, args.head)
    elif args.kind == "program":
        if model.program is None:
            raise CliError(f"{args.target} was saved without its RASP program: plot the "
                           "program by its example name or program file instead")
        fig = plots.plot_program(model.program, model)
    elif args.kind == "circuit":
        fig = plots.plot_circuit(model)
    else:
        fig = getattr(plots, f"plot_{args.kind}")(model, tokens)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=DPI)
    print(f"wrote {output} ({args.kind} of {args.target} on input {' '.join(map(str, tokens))})")
    return 0


def cmd_report(args) -> int:
    """Write a self-contained HTML page about a model."""
    if not args.output.lower().endswith((".html", ".htm")):
        raise CliError(f"-o {args.output}: the report is an .html file")
    _plots()
    from interp.report import write_report

    model, title, tokens = load_for_plotting(args)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # as `compile -o` does
    write_report(model, args.output, tokens, title)
    print(f"wrote {args.output} ({title}; input {' '.join(map(str, tokens))})")
    return 0


def _add_input(parser) -> None:
    parser.add_argument("--input", nargs="+", metavar="TOKEN",
                        help="the input tokens, without BOS (default: a sample of the "
                             f"program's inputs, seed {DEFAULT_SEED})")


def register(command) -> None:
    """Add `plot` and `report` to the parser (`command` is raspc.cli's helper)."""
    target_help = TARGET_HELP + ", or a saved model.npz"
    plot = command("plot", cmd_plot, "draw a model's attention, residual stream, program, "
                   "ground-truth circuit or decoded values to an image file", target_help,
                   epilog="Example: raspc plot reverse --kind attention --input a b c "
                          "-o attention.png")
    plot.add_argument("--kind", choices=KINDS, required=True, help="which plot")
    plot.add_argument("-o", "--output", required=True, metavar="FILE.png",
                      help="the image file: .png, .svg or .pdf")
    plot.add_argument("--layer", type=int, help="attention: only this layer's heads")
    plot.add_argument("--head", type=int, help="attention: only this head (of each layer)")
    _add_input(plot)
    report = command("report", cmd_report, "write one self-contained HTML page about a "
                     "model: program, components, every plot, decoding and ground truth",
                     target_help, epilog="Example: raspc report sort -o sort.html")
    report.add_argument("-o", "--output", required=True, metavar="report.html",
                        help="the HTML file to write")
    _add_input(report)
