"""Regenerate the README's pictures, one per plot kind, under docs/images/ (`make docs-images`).

Each is `reverse` compiled at max_seq_len 5, on the input a b c c, saved as a
small PNG. Run from the repository root.
"""

from pathlib import Path

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.plots import plot_attention, plot_circuit, plot_decoding, plot_program, plot_residuals

IMAGES = Path(__file__).resolve().parent / "images"
DPI = 80
TOKENS = ["a", "b", "c", "c"]


def main() -> None:
    """Write docs/images/{program,attention,residuals,circuit,decoding}.png."""
    example = EXAMPLES["reverse"]
    program = example.build(5)
    model = compile_rasp_to_model(program, example.vocab, 5)
    figures = {"program": plot_program(program, model), "attention": plot_attention(model, TOKENS),
               "residuals": plot_residuals(model, TOKENS), "circuit": plot_circuit(model),
               "decoding": plot_decoding(model, TOKENS)}
    IMAGES.mkdir(exist_ok=True)
    for kind, fig in figures.items():
        path = IMAGES / f"{kind}.png"
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
