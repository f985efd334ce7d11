"""raspc: list, compile, run and verify RASP programs, and a demo of them all.

A program is an example name, path/to/file.py:function, or (for `run`) a model
saved with `raspc compile -o model.npz`. Exit status: 0 on success; 1 when a
program fails (compile error, mismatch with the evaluator, exception in user
code); 2 on bad usage (unknown example, bad vocabulary or input, bad model file).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from examples.library import EXAMPLES
from examples.targets import MODEL_SUFFIXES, CliError, Target, load_model_file, load_target
from rasp.errors import InputError, RaspError

if TYPE_CHECKING:  # the compiler imports jax (seconds); commands import it when they need it
    from compiler import CompiledModel
    from compiler.verify import Mismatch

MAX_SHOWN_MISMATCHES = 5


# ------------------------------------------------------------------ formatting
def fmt(value: Any) -> str:
    """A value as shown in tables: floats to 4 significant digits, strings bare."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else repr(value)


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(header))]
    for row in cells:
        print(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def parameter_count(model: CompiledModel) -> int:
    return sum(a.size for weights in model.params.values() for a in weights.values())


def sublayer_name(sublayer: int) -> str:
    if sublayer < 0:
        return "embedding"
    return f"layer {sublayer // 2} {'attn' if sublayer % 2 == 0 else 'mlp'}"


def print_summary(model: CompiledModel, name: str, description: str, seconds: float) -> None:
    """Sizes of the compiled model and which RASP operation each block implements."""
    config = model.config
    print(f"{name}: {description}")
    print(f"  vocab: {', '.join(map(fmt, config.vocab))}   max_seq_len: {config.max_seq_len}"
          f"   {'causal' if config.causal else 'non-causal'}   compiled in {seconds:.2f}s")
    for key, value in [("layers", len(config.layers)),
                       ("heads per layer", ", ".join(str(l.num_heads) for l in config.layers)),
                       ("MLP widths", ", ".join(str(l.mlp_hidden) for l in config.layers)),
                       ("d_model", config.d_model), ("parameters", f"{parameter_count(model):,}")]:
        print(f"  {key + ':':16} {value}")
    owner = {model.residual_labels[d]: r.label
             for r in model.value_records.values() for d in r.dims}
    rows = []
    for c in model.components:
        info = c.info
        if c.kind == "attn":
            block, details = f"attn head {c.head}", info.predicate or ""
            if info.value:
                details += f"; value: {', '.join(info.value)}"
        else:
            reads = dict.fromkeys(owner.get(l, l) for l in c.reads if l not in ("one", "bos"))
            block, details = "mlp", f"reads: {', '.join(reads)}"
        rows.append((c.layer, block, info.op, ", ".join(info.exprs), details))
    print()
    print_table(("layer", "block", "operation", "computes", "details"), rows, "  ")


# ------------------------------------------------------------------ commands
def cmd_list(args) -> int:
    """Print every example with its description and default settings."""
    rows = [(e.name, e.description, f"vocab {' '.join(map(fmt, e.vocab))}; n={e.max_seq_len}")
            for e in EXAMPLES.values()]
    print_table(("example", "description", "defaults"), rows)
    return 0


def cmd_compile(args) -> int:
    """Compile an example or a user program, print its summary, optionally save it."""
    target = load_target(args.target, args.vocab, args.max_seq_len, args.causal)
    model, seconds = target.compile()
    print_summary(model, target.name, target.description, seconds)
    if args.output:
        npz, meta = model.save(args.output, f"{target.name}: {target.description}")
        print(f"\nsaved {npz} and {meta}")
    return 0


def cmd_run(args) -> int:
    """Run a program (compiled on the fly or loaded) on the tokens; print its output."""
    if args.target.endswith(MODEL_SUFFIXES):
        if args.vocab or args.max_seq_len or args.causal:
            raise CliError("--vocab, --max-seq-len and --causal apply when compiling, "
                           "not to a saved model")
        model, _ = load_model_file(args.target)
    else:
        model, _ = load_target(args.target, args.vocab, args.max_seq_len, args.causal).compile()
    tokens = parse_tokens(args.tokens, model)
    output = model.apply([model.config.bos, *tokens])
    if args.trace:
        print_trace(model, tokens)
        print()
    print(f"input:  {' '.join(map(fmt, tokens))}")
    print(f"output: {' '.join(map(fmt, output.decoded[1:]))}")
    return 0


def parse_tokens(words: Sequence[str], model: CompiledModel) -> list[Any]:
    """Command-line words → vocabulary tokens (matched by their str), checked for length."""
    config = model.config
    lookup = {str(t): t for t in config.vocab} | {t: t for t in config.vocab if isinstance(t, str)}
    if len(words) > config.max_seq_len:
        raise CliError(f"the input has {len(words)} tokens, but this model accepts at most "
                       f"max_seq_len = {config.max_seq_len} (recompile with --max-seq-len)")
    for position, word in enumerate(words):
        if word not in lookup:
            raise CliError(f"token {word!r} at position {position} is not in the vocabulary "
                           f"{{{', '.join(map(fmt, config.vocab))}}}")
    return [lookup[w] for w in words]


def print_trace(model: CompiledModel, tokens: Sequence[Any]) -> None:
    """Every recorded value, decoded from the residual stream where it is written."""
    rows = []
    decoded = model.decode_intermediates([model.config.bos, *tokens])
    records = sorted(model.value_records.values(), key=lambda r: r.sublayer)  # stable
    for record in records:
        values = decoded[record.label]
        mark = " (output)" if record.label == model.config.output_label else ""
        rows.append((sublayer_name(record.sublayer), record.label + mark, *map(fmt, values)))
    print_table(("written by", "value", *map(str, range(len(tokens)))), rows)


def verify(model: CompiledModel, target: Target, inputs: int, seed: int,
           batch_size: int = 100, progress: bool = True) -> tuple[int, list[Mismatch]]:
    """(valid inputs checked, mismatches) on `inputs` random samples of `target`."""
    from tqdm import tqdm

    from compiler.verify import find_mismatches

    rng = random.Random(seed)
    checked, mismatches = 0, []
    with tqdm(total=inputs, desc=f"verify {target.name}", unit="input", leave=False,
              disable=not progress) as bar:
        for start in range(0, inputs, batch_size):
            batch = [target.sample(rng) for _ in range(min(batch_size, inputs - start))]
            n, found = find_mismatches(model, target.program, batch, batch_size)
            checked += n
            mismatches += found
            bar.update(len(batch))
    return checked, mismatches


def cmd_verify(args) -> int:
    """Compare the compiled model with the evaluator; exit 1 on any mismatch."""
    target = load_target(args.target, args.vocab, args.max_seq_len, args.causal)
    model, seconds = target.compile()
    print(f"{target.name}: {len(model.config.layers)} layers, d_model {model.config.d_model}, "
          f"compiled in {seconds:.2f}s; checking {args.inputs} random inputs "
          f"(max_seq_len {target.max_seq_len}, seed {args.seed})")
    checked, mismatches = verify(model, target, args.inputs, args.seed)
    if mismatches or not checked:
        print(f"✗ {len(mismatches)} of {checked} valid inputs disagree with the evaluator"
              + "".join(f"\n  {m}" for m in mismatches[:MAX_SHOWN_MISMATCHES]))
        return 1
    skipped = f" ({args.inputs - checked} invalid samples skipped)" if args.inputs > checked else ""
    print(f"✓ all {checked} inputs agree with the evaluator{skipped}")
    return 0


def cmd_demo(args) -> int:
    """Compile and verify every example; print one table; exit 1 if any fails."""
    from tqdm import tqdm

    rows, failures = [], []
    bar = tqdm(list(EXAMPLES.values()), desc="demo", unit="example", leave=False)
    for example in bar:
        bar.set_postfix_str(example.name)
        target = load_target(example.name)
        try:
            model, seconds = target.compile()
            checked, mismatches = verify(model, target, args.inputs, args.seed, progress=False)
        except Exception as error:  # noqa: BLE001  report it in the table, go on
            failures.append(f"{example.name}: {type(error).__name__}: {error}")
            rows.append((example.name, "-", "-", "-", "-", "-", "✗"))
            continue
        ok = checked > 0 and not mismatches
        if not ok:
            failures.append(f"{example.name}: {len(mismatches)} of {checked} inputs disagree"
                            + (f", e.g. {mismatches[0]}" if mismatches else ""))
        config = model.config
        rows.append((example.name, len(config.layers), sum(l.num_heads for l in config.layers),
                     config.d_model, f"{parameter_count(model):,}", f"{seconds:.2f}s",
                     "✓" if ok else "✗"))
    print_table(("example", "layers", "heads", "d_model", "params", "compile", "verified"), rows)
    print(f"\n{len(rows) - len(failures)}/{len(rows)} examples verified on {args.inputs} "
          f"random inputs each (seed {args.seed})")
    for failure in failures:
        print(f"✗ {failure}")
    return 1 if failures else 0


# ------------------------------------------------------------------ argument parsing
def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


TARGET = "an example name (see `raspc list`) or path/to/file.py:function"


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `raspc` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="raspc", description="Compile RASP programs into transformer weights.",
        epilog="Run `raspc COMMAND --help` for each command's options.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, handler, text, target=None, compiles=True, inputs=None, epilog=None):
        p = commands.add_parser(name, help=text, description=text + ".", epilog=epilog)
        p.set_defaults(handler=handler)
        if target:
            p.add_argument("target", help=target)
        if compiles:
            p.add_argument("--vocab", metavar="a,b,c",
                           help="comma-separated tokens; all-integer lists give int tokens "
                                "(default: the example's, or a,b,c for a program file)")
            p.add_argument("--max-seq-len", type=_positive_int, metavar="N",
                           help="longest input, not counting BOS (default: the example's, or 8)")
            p.add_argument("--causal", action="store_true", help="compile a causal model")
        if inputs:
            p.add_argument("--inputs", type=_positive_int, default=inputs, metavar="N",
                           help=f"random inputs per program (default {inputs})")
            p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        return p

    command("list", cmd_list, "list the example programs with their descriptions",
            compiles=False)
    command("compile", cmd_compile, "compile a program; print its layers, sizes and which "
            "RASP operation each attention head and MLP implements", TARGET,
            epilog="A program file's function returns a RASP SOp; if it takes a parameter, it "
                   "is called with max_seq_len. Example: raspc compile my.py:make_program "
                   "--vocab 1,2,3 --max-seq-len 5 -o model.npz"
            ).add_argument("-o", "--output", metavar="model.npz",
                           help="save the parameters here and the metadata as .json beside it")
    run = command("run", cmd_run, "run a program on some tokens and print the decoded output",
                  TARGET + ", or a saved model.npz", epilog="Example: raspc run reverse a b c")
    run.add_argument("tokens", nargs="+", metavar="TOKEN", help="input tokens (without BOS)")
    run.add_argument("--trace", action="store_true",
                     help="also print every intermediate value, decoded from the residual stream")
    command("verify", cmd_verify, "compare the compiled model with the reference evaluator on "
            "random valid inputs; exit status 1 on any mismatch", TARGET, inputs=1000)
    command("demo", cmd_demo, "compile every example at its default size, verify each on "
            "random inputs and print one table; exit status 1 if any fails",
            compiles=False, inputs=200)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `raspc` entry point; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):  # never die printing ✓ on a non-UTF-8 terminal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except Exception as error:  # noqa: BLE001  one clear line instead of a traceback
        if args.debug:
            raise
        message = str(error) if isinstance(error, (CliError, RaspError)) else (
            f"internal error: {type(error).__name__}: {error} (rerun with --debug for details)")
        print(f"raspc: error: {message}", file=sys.stderr)
        return getattr(error, "status", 2 if isinstance(error, InputError) else 1)
    except KeyboardInterrupt:
        print("raspc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
