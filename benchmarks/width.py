"""Parameters and depth beside the reference compiler (Tracr, the `bench` extra), same run.

    python benchmarks/width.py [--sizes 5,10,16] [--out benchmarks/results]

Compiles every library example, and single categorical Maps of tokens from large
vocabularies, with both compilers at equal vocabulary and N, and counts the weights
of each model. Writes `<out>/width.md` and `<out>/width.json`; prints how many runs
have more parameters than the reference at equal or greater depth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import reference  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
import rasp  # noqa: E402
from compiler import compile_rasp_to_model  # noqa: E402
from examples.library import EXAMPLES  # noqa: E402
from run import vocab_for  # noqa: E402

# Single categorical Maps of tokens: name → (function, vocabulary size). The functions
# are plain Python, so one builder serves both compilers' rasp modules.
SINGLE_MAPS = {
    "parity_of_100": (lambda x: x % 2, 100),
    "mod_5_of_100": (lambda x: x % 5, 100),
    "low_half_of_64": (lambda x: x < 32, 64),
    "bucket_of_30": (lambda x: x // 10, 30),
    "identity_of_20": (lambda x: x, 20),
    "spread_of_5": (lambda x: 10 * x + 1, 5),
}


def single_map(rasp_module, fn):
    """Map(fn, tokens), categorical, in the given rasp module."""
    return rasp_module.categorical(rasp_module.Map(fn, rasp_module.tokens))


def tracr_model(program, vocab, max_len):
    """The reference compiler's model, or None if it refuses the program."""
    from tracr.compiler import compiling

    try:
        return compiling.compile_rasp_to_model(program, vocab=set(vocab), max_seq_len=max_len,
                                               compiler_bos="BOS", compiler_pad="PAD")
    except Exception:  # noqa: BLE001  Tracr refuses many programs; that is a result
        return None


def tracr_counts(model) -> tuple[int, int]:
    """(weights, layers) of a Tracr model; a layer is one attention + one MLP sublayer."""
    weights = sum(int(a.size) for w in model.params.values() for a in w.values())
    return weights, model.model_config.num_layers


def row(name, ours_program, tracr_program, vocab, max_len) -> dict:
    """One side-by-side measurement."""
    ours = compile_rasp_to_model(ours_program, set(vocab), max_len)
    theirs = tracr_model(tracr_program, vocab, max_len) if tracr_program is not None else None
    ref_params, ref_layers = tracr_counts(theirs) if theirs is not None else (None, None)
    return {"program": name, "max_seq_len": max_len, "vocab_size": len(vocab),
            "layers": len(ours.config.layers), "params": ours.parameter_count,
            "mlp_width": max((layer.mlp_hidden for layer in ours.config.layers), default=0),
            "reference_layers": ref_layers, "reference_params": ref_params}


def rows(sizes) -> list[dict]:
    """Every library example at every N, then the single Maps at the smallest N."""
    from tracr.rasp import rasp as tracr_rasp

    tracr = reference.tracr_examples()
    result = []
    for max_len in sizes:
        for name, example in EXAMPLES.items():
            vocab = vocab_for(example, max_len)
            theirs = tracr[name].build(max_len) if name in tracr else None
            result.append(row(name, example.build(max_len), theirs, vocab, max_len))
            print(_line(result[-1]), flush=True)
    for name, (fn, size) in SINGLE_MAPS.items():
        vocab = list(range(size))
        result.append(row(name, single_map(rasp, fn), single_map(tracr_rasp, fn), vocab,
                          min(sizes)))
        print(_line(result[-1]), flush=True)
    return result


def more_than_reference(r: dict) -> bool:
    """More weights than the reference while no shallower than it."""
    return (r["reference_params"] is not None and r["layers"] >= r["reference_layers"]
            and r["params"] > r["reference_params"])


def _line(r: dict) -> str:
    ref = (f"{r['reference_params']:>10,} ({r['reference_layers']} layers)"
           if r["reference_params"] is not None else "refused")
    return (f"{r['program']:18s} N={r['max_seq_len']:<3d} layers={r['layers']} "
            f"width={r['mlp_width']:<5d} params={r['params']:>10,}  reference {ref}"
            f"{'  MORE' if more_than_reference(r) else ''}")


def markdown(result: list[dict]) -> str:
    """One table row per run, then the count of runs with more weights than the reference."""
    lines = ["| program | N | vocab | layers | MLP width | params | reference layers "
             "| reference params | ratio |", "|" + "---|" * 9]
    for r in result:
        ref = r["reference_params"]
        ratio = "" if ref is None else f"{r['params'] / ref:.3f}×"
        lines.append(f"| {r['program']} | {r['max_seq_len']} | {r['vocab_size']} | {r['layers']} "
                     f"| {r['mlp_width']} | {r['params']:,} | {r['reference_layers'] or ''} "
                     f"| {'' if ref is None else f'{ref:,}'} "
                     f"| {ratio} |")
    compared = [r for r in result if r["reference_params"] is not None]
    more = [r for r in compared if more_than_reference(r)]
    lines.append(f"\n{len(more)} of {len(compared)} runs that both compile have more parameters "
                 "than the reference at equal or greater depth"
                 + (": " + ", ".join(f"{r['program']} (N={r['max_seq_len']})" for r in more)
                    if more else "."))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,16")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args(argv)
    if not reference.available():
        print("tracr-pypi is not installed (pip install '.[bench]')")
        return 1
    result = rows([int(n) for n in args.sizes.split(",")])
    os.makedirs(args.out, exist_ok=True)
    table = markdown(result)
    with open(os.path.join(args.out, "width.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "width.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
