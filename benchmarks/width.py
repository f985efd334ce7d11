"""Parameters and depth beside the reference compiler (Tracr, the `bench` extra), same run.

    python benchmarks/width.py [--sizes 5,10,16] [--prefer depth|params] [--examples A,B]
                               [--examples-only]
                               [--out benchmarks/results]

Compiles every library example, single categorical Maps of one SOp from large
vocabularies and a seeded sweep of random tables, with both compilers at equal vocabulary and N, and counts the weights
of each model. Writes `<out>/width.md` and `<out>/width.json`; prints how many runs
have more parameters than the reference at equal or greater depth. Tracr keeps its
unembedding outside its parameters and we count ours, so a second ratio adds Tracr's
(d_model × output values). Each example is also compiled without fusing MLP chains
(compiler.fusion), to show where fusion saves a layer at a cost in width. `--prefer
params` compiles ours with compile_rasp_to_model(..., prefer="params").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import measures  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
import reference  # noqa: E402
import rasp  # noqa: E402
from compiler import compile_rasp_to_model  # noqa: E402
from examples.library import EXAMPLES  # noqa: E402
from run import vocab_for  # noqa: E402

# Single categorical Maps of one SOp: name → (function, source, vocabulary size, N). The
# functions are plain Python, so one builder serves both compilers' rasp modules.
SINGLE_MAPS = {
    "parity_of_100": (lambda x: x % 2, "tokens", 100, 5),
    "mod_5_of_100": (lambda x: x % 5, "tokens", 100, 5),
    "low_half_of_64": (lambda x: x < 32, "tokens", 64, 5),
    "bucket_of_30": (lambda x: x // 10, "tokens", 30, 5),
    "identity_of_20": (lambda x: x, "tokens", 20, 5),
    "spread_of_5": (lambda x: 10 * x + 1, "tokens", 5, 5),
    "index_parity_64": (lambda x: x % 2, "indices", 5, 64),
    "copied_parity_100": (lambda x: x % 2, "copied tokens", 100, 5),
}


# A seeded sweep of random tables Map(table, tokens): (vocabulary size, output values).
SWEEP = [(v, k) for v in (5, 20, 60, 100) for k in sorted({1, 2, 5, v // 2, v}) if k <= v]


def random_table(vocab_size: int, outputs: int, seed: int) -> dict:
    """A random table over range(vocab_size) hitting each of `outputs` values at least once."""
    rng = random.Random(seed)
    values = list(range(outputs)) + [rng.randrange(outputs) for _ in range(vocab_size - outputs)]
    rng.shuffle(values)
    return dict(enumerate(values))


def single_map(rasp_module, fn, source: str):
    """Map(fn, source), categorical, in the given rasp module; "copied tokens" is the
    tokens read through an attention head (each position selects itself)."""
    sop = rasp_module.indices if source == "indices" else rasp_module.tokens
    if source == "copied tokens":
        itself = rasp_module.Select(rasp_module.indices, rasp_module.indices,
                                    rasp_module.Comparison.EQ)
        sop = rasp_module.categorical(rasp_module.Aggregate(itself, rasp_module.tokens))
    return rasp_module.categorical(rasp_module.Map(fn, sop))


def tracr_model(program, vocab, max_len):
    """The reference compiler's model, or None if it refuses the program."""
    from tracr.compiler import compiling

    try:
        return compiling.compile_rasp_to_model(program, vocab=set(vocab), max_seq_len=max_len,
                                               compiler_bos="BOS", compiler_pad="PAD")
    except Exception:  # noqa: BLE001  Tracr refuses many programs; that is a result
        return None


def tracr_counts(model) -> tuple[int, int, int]:
    """(weights, layers, unembedding size) of a Tracr model; a layer is one attention and
    one MLP sublayer; the unembedding projects the residual onto the output space."""
    weights = sum(int(a.size) for w in model.params.values() for a in w.values())
    d_model = len(model.residual_labels)
    decoding = getattr(model.output_encoder, "encoding_map", None)  # None: numerical
    outputs = 1 if decoding is None else len(decoding)
    return weights, model.model_config.num_layers, d_model * outputs


@contextlib.contextmanager
def chains_unfused():
    """compiler.fusion with MLP chains left as one MLP per link (all else unchanged)."""
    from compiler import fusion

    fuse = fusion._mlp_chain
    fusion._mlp_chain = lambda expr, children, forms, *rest: fuse(expr, children, {}, *rest)
    try:
        yield
    finally:
        fusion._mlp_chain = fuse


def _counts(model) -> tuple[int, int, int]:
    layers = model.config.layers
    return (len(layers), model.parameter_count,
            max((layer.mlp_hidden for layer in layers), default=0))


def row(name, ours_program, tracr_program, vocab, max_len, build=None,
        prefer: str = "depth") -> dict:
    """One side-by-side measurement (`build()`, if given, rebuilds the program unfused)."""
    layers, params, width = _counts(compile_rasp_to_model(ours_program, set(vocab), max_len,
                                                          prefer=prefer))
    result = {"program": name, "max_seq_len": max_len, "vocab_size": len(vocab),
              "layers": layers, "params": params, "mlp_width": width}
    if build is not None:
        try:
            with chains_unfused():
                unfused = _counts(compile_rasp_to_model(build(), set(vocab), max_len))
            result.update(zip(("unfused_layers", "unfused_params", "unfused_width"), unfused))
        except rasp.CompileError:  # e.g. rasp_dyck2 at N = 40: an unfused chain too wide
            pass
    theirs = tracr_model(tracr_program, vocab, max_len) if tracr_program is not None else None
    counts = tracr_counts(theirs) if theirs is not None else (None, None, None)
    result.update(zip(("reference_params", "reference_layers", "reference_unembed"), counts))
    return result


def rows(sizes, prefer: str = "depth", examples_only: bool = False,
         names=tuple(EXAMPLES)) -> list[dict]:
    """The library examples `names` at every N, then (unless `examples_only`) the single
    Maps."""
    from tracr.rasp import rasp as tracr_rasp

    tracr = reference.tracr_examples()
    result = []
    for max_len in sizes:
        for name, example in ((name, EXAMPLES[name]) for name in names):
            vocab = vocab_for(example, max_len)
            theirs = tracr[name].build(max_len) if name in tracr else None
            result.append(row(name, example.build(max_len), theirs, vocab, max_len,
                              lambda: example.build(max_len), prefer))
            print(_line(result[-1]), flush=True)
    if examples_only:
        return result
    for name, (fn, source, size, max_len) in SINGLE_MAPS.items():
        vocab = list(range(size))
        result.append(row(name, single_map(rasp, fn, source), single_map(tracr_rasp, fn, source),
                          vocab, max_len))
        print(_line(result[-1]), flush=True)
    for seed, (size, outputs) in enumerate(SWEEP):
        table = random_table(size, outputs, seed)
        result.append(row(f"table_{size}_to_{outputs}", single_map(rasp, table.get, "tokens"),
                          single_map(tracr_rasp, table.get, "tokens"), list(range(size)),
                          min(sizes)))
        print(_line(result[-1]), flush=True)
    return result


def more_than_reference(r: dict, with_unembedding: bool = False) -> bool:
    """More weights than the reference while no shallower than it (optionally counting
    the reference's unembedding, as we count ours)."""
    if r["reference_params"] is None:
        return False
    reference_total = r["reference_params"] + (r["reference_unembed"] if with_unembedding else 0)
    return r["layers"] >= r["reference_layers"] and r["params"] > reference_total


def fusion_note(r: dict) -> str:
    """What fusing MLP chains did to this run: saved layers at a cost in weights, or
    added weights for no layer saved (then the unfused form would be better)."""
    if "unfused_params" not in r or r["params"] <= r["unfused_params"]:
        return ""
    saved = r["unfused_layers"] - r["layers"]
    cost = f"{r['params'] / r['unfused_params']:.2f}× params"
    return f"saves {saved} layer(s) for {cost}" if saved > 0 else f"saves nothing, costs {cost}"


def _line(r: dict) -> str:
    ref = (f"{r['reference_params']:>10,} ({r['reference_layers']} layers)"
           if r["reference_params"] is not None else "refused")
    return (f"{r['program']:18s} N={r['max_seq_len']:<3d} layers={r['layers']} "
            f"width={r['mlp_width']:<5d} params={r['params']:>10,}  reference {ref}"
            f"{'  MORE' if more_than_reference(r) else ''}  {fusion_note(r)}")


def markdown(result: list[dict]) -> str:
    """One table row per run, then the count of runs with more weights than the reference."""
    lines = ["| program | N | vocab | layers | MLP width | params | reference layers "
             "| reference params | ratio | ratio incl. reference unembedding | fusion |",
             "|" + "---|" * 11]
    for r in result:
        ref = r["reference_params"]
        ratios = (" | " if ref is None else f"{r['params'] / ref:.3f}× "
                  f"| {r['params'] / (ref + r['reference_unembed']):.3f}×")
        lines.append(f"| {r['program']} | {r['max_seq_len']} | {r['vocab_size']} | {r['layers']} "
                     f"| {r['mlp_width']} | {r['params']:,} | {r['reference_layers'] or ''} "
                     f"| {'' if ref is None else f'{ref:,}'} | {ratios} | {fusion_note(r)} |")
    compared = [r for r in result if r["reference_params"] is not None]
    for with_unembedding in (False, True):
        more = [r for r in compared if more_than_reference(r, with_unembedding)]
        lines.append(f"\n{len(more)} of {len(compared)} runs that both compile have more "
                     "parameters than the reference at equal or greater depth"
                     + (" (counting its unembedding)" if with_unembedding else "")
                     + (": " + ", ".join(f"{r['program']} (N={r['max_seq_len']})" for r in more)
                        if more else "."))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,16")
    parser.add_argument("--prefer", choices=("depth", "params"), default="depth",
                        help="compile_rasp_to_model's prefer for our models")
    parser.add_argument("--examples", default=",".join(EXAMPLES),
                        help="comma-separated library examples (default: all)")
    parser.add_argument("--examples-only", action="store_true",
                        help="only the library examples (no single Maps, no random tables)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args(argv)
    if not reference.available():
        print("tracr-pypi is not installed (pip install '.[bench]')")
        return 1
    result = rows([int(n) for n in args.sizes.split(",")], args.prefer, args.examples_only,
                  args.examples.split(","))
    measures.write_table(args.out, "width", markdown(result), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
