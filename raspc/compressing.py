"""`raspc compress`: squeeze a compiled model into a narrow residual stream and score it."""

from __future__ import annotations

import argparse
import random

from raspc.formatting import print_table, sublayer_name
from raspc.targets import (TARGET_HELP, CliError, add_program_options, load_target,
                           target_options)

TEST_SEED_OFFSET = 2_000_003  # test inputs: a stream apart from training and validation


def cmd_compress(args) -> int:
    """Train one compressed model; print its accuracy and per-layer cosine similarity."""
    from interp.compress import compress, exact_match, layer_cosines

    target = load_target(args.target, args.vocab, args.max_seq_len, args.causal,
                         **target_options(args))
    model, _ = target.compile()
    d_model = model.config.d_model
    if args.dim > d_model:
        raise CliError(f"--dim {args.dim} is wider than the model (d_model {d_model}); "
                       f"give a width 1..{d_model}")
    print(f"{target.name}: d_model {d_model} → dim {args.dim} (seed {args.seed})")
    compressed = compress(model, args.dim, recipe=args.recipe, steps=args.steps,
                          batch_size=args.batch_size, learning_rate=args.learning_rate,
                          seed=args.seed, residual_weight=args.residual_weight,
                          init=args.init, init_scale=args.init_scale,
                          margin_weight=args.margin_weight, restarts=args.restarts,
                          validation_size=args.validation_size, sampler=target.sample)
    training = compressed.training
    settings = training["settings"]
    why = ("below" if args.dim < training["read_rank"] else "at or above")
    print(f"recipe {training['recipe']}{' (auto)' if args.recipe == 'auto' else ''}: "
          f"dim {args.dim} is {why} the read rank {training['read_rank']}; "
          f"{settings['init']} start, up to {settings['steps']} steps × "
          f"{settings['restarts']} start{'s' if settings['restarts'] > 1 else ''}")
    rng = random.Random(args.seed + TEST_SEED_OFFSET)
    inputs = [target.sample(rng) for _ in range(args.inputs)]
    accuracy = exact_match(compressed, inputs, args.tolerance)
    validation = max(score for _, score in training["validation"])
    starts = (f" in start {training['kept_start']} of {training['starts']} run (up to "
              f"{settings['restarts']}; {training['steps_all_starts']} steps in all)"
              if settings["restarts"] > 1 else "")
    print(f"trained {training['steps_run']} steps{starts}; validation "
          f"{'exact' if training['stopped_early'] else f'{validation:.1%} at best'} "
          f"on {settings['validation_size']} inputs; exact match with the evaluator on "
          f"{args.inputs} inputs: {accuracy:.1%} (numbers within {args.tolerance:g})")
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
                epilog="Example: raspc compress previous_token --dim 8. The recipe follows "
                       "from --dim: at or above the read rank a PCA start (exact at once), "
                       "below it the superposed recipe (random start ×0.3, no residual "
                       "term, margin weight 100, learning rate 0.01, up to 20000 steps × 3 "
                       "starts). The options above override the recipe's settings.")
    p.add_argument("--dim", type=_positive(int), required=True, metavar="D",
                   help="width of the narrow residual stream")
    p.add_argument("--recipe", choices=("auto", "pca", "superposed"), default="auto",
                   help="pca at or above the read rank, superposed below it (auto, the "
                        "default), or one of them whatever the width")
    p.add_argument("--steps", type=_positive(int), help="training steps per start (recipe: "
                   "2000 pca, 20000 superposed; stops early once validation inputs agree)")
    p.add_argument("--batch-size", type=_positive(int), default=64, help="default 64")
    p.add_argument("--learning-rate", type=_positive(float),
                   help="recipe: 0.003 pca, 0.01 superposed")
    p.add_argument("--init", choices=("pca", "random"),
                   help="start W from the residuals' principal directions as the readers "
                        "see them (recipe pca) or from random orthonormal rows (superposed)")
    p.add_argument("--init-scale", type=_positive(float),
                   help="scale of the starting W (recipe: 1 pca, 0.3 superposed, which "
                        "keeps hard attention's softmax unsaturated at the start)")
    p.add_argument("--residual-weight", type=_positive(float, zero=True),
                   help="weight of the per-layer residual loss (recipe: 1 pca, 0 "
                        "superposed, where no W reconstructs every residual)")
    p.add_argument("--margin-weight", type=_positive(float, zero=True),
                   help="weight of a hinge on numerical errors above half --tolerance "
                        "(recipe: 0 pca, 100 superposed)")
    p.add_argument("--restarts", type=_positive(int),
                   help="starts to try until one is exact on validation (recipe: 1 pca, "
                        "3 superposed)")
    p.add_argument("--validation-size", type=_positive(int),
                   help="validation inputs for early stopping (recipe: 256 pca, 1000 "
                        "superposed)")
    p.add_argument("--tolerance", type=_positive(float), default=1e-2,
                   help="numbers agree within this (default 0.01)")
    p.add_argument("-o", "--output", metavar="MODEL.npz", help="save the compressed model")
    add_program_options(p)
