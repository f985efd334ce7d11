"""`raspc zoo build` and `raspc zoo bench`: a directory of exact models, and a methods
benchmark over it on Ray (interp.zoo)."""

from __future__ import annotations

import argparse

from raspc.targets import CliError

DEFAULT_LENGTHS = "5"


def cmd_build(args) -> int:
    """Build (or finish) the zoo and print what was kept and refused."""
    from interp.zoo import build_zoo, library_specs
    from interp.zoo.sources import check_variants

    variants = check_variants(_words(args.variants))
    names = None if args.examples in (None, "all") else _words(args.examples)
    library = [] if args.no_library else library_specs(names, _lengths(args.lengths), variants,
                                                       args.seed)
    summary = build_zoo(args.out, library, args.random, args.seed, variants,
                        args.random_max_len, progress=not args.no_progress,
                        recheck_truth=args.recheck_truth)
    print(summary.format())
    return 0


def cmd_bench(args) -> int:
    """Run the zoo's missing cells, then print the leaderboard."""
    from interp.zoo.bench import bench_zoo

    summary = bench_zoo(args.zoo, _words(args.methods), _words(args.granularity),
                        workers=args.workers, address=args.address, out=args.out,
                        timeout_s=args.timeout, limit=args.limit,
                        retry_failed=args.retry_failed, progress=not args.no_progress)
    print(summary.leaderboard)
    print()
    print(summary.format())
    print("leaderboard: " + ", ".join(str(p) for p in summary.files))
    return 0


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _lengths(text: str) -> list[int]:
    words = _words(text)
    if not words or not all(w.isdigit() and int(w) >= 1 for w in words):
        raise CliError(f"--lengths needs positive integers like 4,6, got {text!r}")
    return [int(w) for w in words]


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def register(command) -> None:
    """Add `zoo build` and `zoo bench` to the parser (`command` is raspc.cli's helper)."""
    from interp.zoo.bench import CELL_TIMEOUT_S
    from interp.zoo.sources import VARIANTS

    zoo = command("zoo", None, "build a zoo of exact compiled models, and benchmark "
                  "circuit-discovery methods over it on Ray", compiles=False,
                  epilog="Example: raspc zoo build zoo/ --random 400 --seed 0 && "
                         "raspc zoo bench zoo/ --methods eap_ig,acdc,activation_patching")
    steps = zoo.add_subparsers(dest="zoo_command", required=True, metavar="STEP")
    build = steps.add_parser("build", help="compile, verify and export models into OUT",
                             description="Compile library examples and seeded random programs, "
                             "keep those that agree exactly with the evaluator, and export "
                             "each into OUT/<id>/ with OUT/manifest.jsonl; a rerun finishes "
                             "an interrupted build.")
    build.set_defaults(handler=cmd_build)
    build.add_argument("out", metavar="OUT", help="the zoo directory")
    build.add_argument("--examples", metavar="a,b|all", help="library examples to include "
                       "(default all)")
    build.add_argument("--no-library", action="store_true", help="random programs only")
    build.add_argument("--lengths", default=DEFAULT_LENGTHS, metavar="N,M",
                       help="max_seq_len of each library model (capped at the example's own; "
                            f"default {DEFAULT_LENGTHS})")
    build.add_argument("--random", type=_count, default=0, metavar="N",
                       help="random programs to keep (each compiles and verifies; refused "
                            "ones are counted, never kept)")
    build.add_argument("--seed", type=int, default=0, help="random programs' seed, and with "
                       "each model's id the seed of its variant's knob (default 0)")
    build.add_argument("--random-max-len", type=_count, default=None, metavar="N",
                       help="longest input of a random program (default 6)")
    build.add_argument("--variants", default="plain", metavar="v,w",
                       help="realism variants to build of each model, named after raspc "
                            "compile's flags (default plain): " + "; ".join(
                                f"{name}: {v.help}" for name, v in VARIANTS.items())
                       + " (docs/zoo.md)")
    build.add_argument("--recheck-truth", action="store_true",
                       help="re-check each rotate, permute-neurons or perturb model's carried "
                            "truth by path patching, refusing it on a failure (about twice "
                            "a model's build time)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench = steps.add_parser("bench", help="score circuit-discovery methods over a zoo",
                             description="Run each (model, method, granularity) cell as a Ray "
                             "task (locally by default), append its row to results.jsonl "
                             "(a rerun skips finished cells) and write the leaderboard.")
    bench.set_defaults(handler=cmd_bench)
    bench.add_argument("zoo", metavar="ZOO", help="a directory made by `raspc zoo build`")
    bench.add_argument("--methods", default="eap_ig,activation_patching,acdc", metavar="m,n",
                       help="activation_patching, eap, eap_ig, acdc, path_patching; "
                            "sae or sae_lens (an SAE on the residual scored against the "
                            "known features, one cell per model) "
                            "(default eap_ig,activation_patching,acdc)")
    bench.add_argument("--granularity", default="component", metavar="g,h",
                       help="component, acdc_hooks and/or sp_hooks (default component)")
    bench.add_argument("--workers", type=_count, default=2, metavar="N",
                       help="local Ray workers (default 2); 1 runs in this process "
                            "without Ray, for debugging")
    bench.add_argument("--address", metavar="HOST:PORT", help="a Ray cluster to run on "
                       "(default: $RAY_ADDRESS, else a local Ray)")
    bench.add_argument("--out", metavar="DIR", help="where results.jsonl and the "
                       "leaderboard go (default ZOO/bench)")
    bench.add_argument("--timeout", type=float, default=CELL_TIMEOUT_S, metavar="S",
                       help=f"seconds a cell may run (default {CELL_TIMEOUT_S:.0f})")
    bench.add_argument("--limit", type=_count, default=None, metavar="N",
                       help="only the manifest's first N models")
    bench.add_argument("--retry-failed", action="store_true",
                       help="rerun cells that failed or timed out")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
