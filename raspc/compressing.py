"""`raspc compress`: squeeze a compiled model into a narrow residual stream and score it."""

from __future__ import annotations

import argparse
import random

from raspc.formatting import print_table, sublayer_name
from raspc.targets import TARGET_HELP, CliError, load_target

TEST_SEED_OFFSET = 2_000_003  # test inputs: a stream apart from training and validation


def cmd_compress(args) -> int:
    """Train one compressed model; print its accuracy and per-layer cosine similarity."""
    from interp.compress import compress, exact_match, layer_cosines

    target = load_target(args.target, args.vocab, args.max_seq_len, args.causal,
                         args.verify)
    model, _ = target.compile()
    d_model = model.config.d_model
    if args.dim > d_model:
        raise CliError(f"--dim {args.dim} is wider than the model (d_model {d_model}); "
                       f"give a width 1..{d_model}")
    print(f"{target.name}: d_model {d_model} → dim {args.dim} "
          f"(up to {args.steps} steps, {args.init} start, seed {args.seed})")
    compressed = compress(model, args.dim, steps=args.steps, batch_size=args.batch_size,
                          learning_rate=args.learning_rate, seed=args.seed,
                          residual_weight=args.residual_weight, init=args.init,
                          init_scale=args.init_scale, margin_weight=args.margin_weight,
                          restarts=args.restarts, validation_size=args.validation_size,
                          sampler=target.sample)
    rng = random.Random(args.seed + TEST_SEED_OFFSET)
    inputs = [target.sample(rng) for _ in range(args.inputs)]
    accuracy = exact_match(compressed, inputs, args.tolerance)
    training = compressed.training
    starts = f" (start {training['starts']} of {args.restarts})" if args.restarts > 1 else ""
    print(f"trained {training['steps_run']} steps{starts}"
          f"{' (stopped early: validation exact)' if training['stopped_early'] else ''}; "
          f"exact match with the evaluator on {args.inputs} inputs: {accuracy:.1%} "
          f"(numbers within {args.tolerance:g})")
    cosines = layer_cosines(compressed, inputs)
    print_table(("residual", "cosine similarity"),
                [(("after " + sublayer_name(i - 1)) if i else "embeddings", f"{c:.4f}")
                 for i, c in enumerate(cosines)], indent="  ")
    if args.output:
        npz_path, _ = compressed.save(args.output, f"{target.name} compressed to {args.dim}")
        print(f"saved to {npz_path} (load with interp.compress.CompressedModel.load)")
    return 0


def _positive(kind, zero: bool = False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(
                f"expected a {'non-negative' if zero else 'positive'} {kind.__name__}, "
                f"got {text!r}")
        return value
    return parse


def register(command) -> None:
    """Add `compress` to the parser (`command` is raspc.cli's helper)."""
    p = command("compress", cmd_compress, "compress a compiled model into a narrow residual "
                "stream (one learned projection, compiled weights frozen) and report its "
                "accuracy and per-layer cosine similarity", TARGET_HELP, inputs=1000,
                epilog="Example: raspc compress sort_unique --dim 24. Below the read rank: "
                       "--init random --init-scale 0.3 --residual-weight 0 "
                       "--margin-weight 100 --learning-rate 0.01 --steps 20000")
    p.add_argument("--dim", type=_positive(int), required=True, metavar="D",
                   help="width of the narrow residual stream")
    p.add_argument("--steps", type=_positive(int), default=3000, help="training steps "
                   "(default 3000; stops early once validation inputs agree)")
    p.add_argument("--batch-size", type=_positive(int), default=64, help="default 64")
    p.add_argument("--learning-rate", type=_positive(float), default=3e-3,
                   help="default 0.003")
    p.add_argument("--init", choices=("pca", "random"), default="pca",
                   help="start W from the residuals' principal directions as the readers "
                        "see them (default) or from random orthonormal rows")
    p.add_argument("--init-scale", type=_positive(float), default=1.0,
                   help="scale of the starting W (default 1; 0.3 with --init random "
                        "keeps hard attention's softmax unsaturated at the start)")
    p.add_argument("--residual-weight", type=_positive(float, zero=True), default=1.0,
                   help="weight of the per-layer residual loss (default 1; 0 below the "
                        "read rank, where no W reconstructs every residual)")
    p.add_argument("--margin-weight", type=_positive(float, zero=True), default=0.0,
                   help="weight of a hinge on numerical errors above half --tolerance "
                        "(default 0)")
    p.add_argument("--restarts", type=_positive(int), default=1,
                   help="starts to try until one is exact on validation (default 1)")
    p.add_argument("--validation-size", type=_positive(int), default=256,
                   help="validation inputs for early stopping (default 256)")
    p.add_argument("--tolerance", type=_positive(float), default=1e-2,
                   help="numbers agree within this (default 0.01)")
    p.add_argument("-o", "--output", metavar="MODEL.npz", help="save the compressed model")
