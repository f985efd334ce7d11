"""The raspc parser and entry point, assembled from one module per command family.

A program is an example name, path/to/file.py:function, or (for `run`) a model
saved with `raspc compile -o model.npz`. Exit status: 0 on success; 1 when a
program fails (compile error, mismatch with the evaluator, exception in user
code); 2 on bad usage (unknown example, bad vocabulary or input, bad model file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from raspc import (checking, compressing, export, generating, plotting, programs, repl,
                   running, scoring, zoo)
from raspc.targets import RASP_PATH_HELP, CliError
from rasp.errors import InputError, RaspError

# Each family module has `register(command)`; a new command family adds itself here.
COMMAND_FAMILIES = (programs, running, generating, checking, repl, export, plotting, scoring,
                    compressing, zoo)


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


# Options whose value may start with "-" (e.g. --vocab -1,2,3), which argparse would
# otherwise read as an option of its own.
DASHED_VALUE_OPTIONS = ("--vocab",)


def _joined_values(argv: Sequence[str]) -> list[str]:
    """argv with `--vocab -1,2` rewritten as `--vocab=-1,2`."""
    out, words = [], list(argv)
    while words:
        word = words.pop(0)
        if word in DASHED_VALUE_OPTIONS and words and words[0].startswith("-") \
                and words[0] not in ("-h", "--help"):
            word = f"{word}={words.pop(0)}"
        out.append(word)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `raspc` and its subcommands."""
    from raspc import __version__

    parser = argparse.ArgumentParser(
        prog="raspc", description="Compile RASP programs into transformer weights.",
        epilog="Run `raspc COMMAND --help` for each command's options.")
    parser.add_argument("--version", action="version", version=f"raspc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, handler, text, target=None, compiles=True, inputs=None, epilog=None,
                reads_rasp=None):
        """Add one subcommand; `compiles` adds --vocab/--max-seq-len/--causal/--prefer/--no-fuse/--strict, and
        `reads_rasp` (default: when it takes a target) --rasp-path."""
        p = commands.add_parser(name, help=text, description=text + ".", epilog=epilog)
        p.set_defaults(handler=handler)
        if target:
            p.add_argument("target", help=target)
            p.add_argument("--no-verify", dest="verify", action="store_false",
                           help="load a saved model even if its checksum is missing or does "
                                "not match (a file edited by hand or saved by an older "
                                "version); its parts are still checked against each other")
        if reads_rasp or (reads_rasp is None and target):
            p.add_argument("--rasp-path", action="append", metavar="DIR", help=RASP_PATH_HELP)
        if compiles:
            p.add_argument("--vocab", metavar="a,b,c",
                           help="comma-separated tokens; if all are numbers they are ints, or "
                                "floats if one is not an int (-1,2,3 and 1.5,2,3 work); "
                                "default: the example's, or a,b,c for a program file")
            p.add_argument("--max-seq-len", type=_positive_int, metavar="N",
                           help="longest input, not counting BOS (default: the example's, or 8)")
            p.add_argument("--causal", action="store_true", help="compile a causal model")
            p.add_argument("--prefer", choices=("depth", "params"), default="depth",
                           help="depth (default): the fewest layers, then the fewest weights; "
                                "params: the fewest weights, even at one more layer")
            p.add_argument("--no-fuse", dest="fuse", action="store_false",
                           help="one block per SOp (no fusion), so the ground truth names "
                                "every SOp")
            p.add_argument("--strict", action="store_true",
                           help="refuse a program whose domain is not total (some input "
                                "makes a function raise or an Aggregate ambiguous)")
        if inputs:
            p.add_argument("--inputs", type=_positive_int, default=inputs, metavar="N",
                           help=f"random inputs per program (default {inputs})")
            p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        return p

    for family in COMMAND_FAMILIES:
        family.register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command, and turn any error into one line on stderr."""
    for stream in (sys.stdout, sys.stderr):  # never die printing ✓ on a non-UTF-8 terminal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(_joined_values(sys.argv[1:] if argv is None else argv))
    try:
        return args.handler(args)
    except BrokenPipeError:  # `raspc list | head`: the reader left; that is not an error
        sys.stderr.close()
        return 0
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
