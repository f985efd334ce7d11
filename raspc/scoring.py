"""`raspc score`: a circuit-discovery method's scores against the exact true circuit."""

from __future__ import annotations

import json
from pathlib import Path

from raspc.targets import (MODEL_SUFFIXES, TARGET_HELP, CliError, load_model_file, load_target,
                           target_options)

DEFAULT_PAIRS = 64


def cmd_score(args) -> int:
    """Read scores.json, score it against the model's truth, print the summary."""
    from interp.circuits import score_edges, scores_from_json

    if args.pairs < 1:
        raise CliError(f"--pairs must be at least 1, got {args.pairs}")
    path = Path(args.scores)
    try:
        scores, granularity = scores_from_json(_read(path), merge=args.merge)
    except ValueError as error:
        raise CliError(f"{path}: {error}") from None
    model, dataset, note = _model_and_dataset(args)
    if args.keep_excluded:
        note = "constant and inert edges kept as positives"
    try:
        result = score_edges(model.ground_truth, scores, args.granularity or granularity,
                             dataset=dataset, keep_excluded=args.keep_excluded,
                             merge=args.merge)
    except ValueError as error:
        raise CliError(f"{path}: {error}") from None
    print(f"{args.target}: {note}")
    print(result.format())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))
        print(f"full result written to {args.json}")
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None


def _model_and_dataset(args):
    """(model, dataset or None, a line saying which edges are left out) for the target.

    The pairs deciding which edges are inert: --dataset, else an export
    directory's dataset.json, else (a program) --pairs pairs from its sampler.
    """
    from examples.library import EXAMPLES, Example
    from interp.circuits import make_dataset
    from interp.circuits.dataset_file import dataset_from_json
    from interp.tl_export import DATASET_FILE

    directory = Path(args.target)
    if args.target.endswith(MODEL_SUFFIXES) or directory.is_dir():
        model, _ = load_model_file(args.target, args.verify)
        example = None
        if args.dataset is None and (directory / DATASET_FILE).is_file():
            args.dataset = str(directory / DATASET_FILE)
    else:
        target = load_target(args.target, args.vocab, args.max_seq_len, args.causal,
                             **target_options(args))
        model, _ = target.compile()
        example = EXAMPLES.get(args.target) or Example(
            target.name, target.description, lambda n: target.program, target.vocab,
            target.max_seq_len)
    if args.dataset is not None:
        try:
            dataset = dataset_from_json(_read(Path(args.dataset)), model)
        except ValueError as error:
            raise CliError(f"{args.dataset}: {error}") from None
        return model, dataset, (f"constant edges and edges inert on the {len(dataset)} pairs "
                                f"of {args.dataset} left out")
    if example is None:
        return model, None, ("constant edges left out (a saved model has no sampler: inert "
                             "edges kept; give --dataset to leave them out)")
    dataset = make_dataset(example, model, args.pairs, args.seed)
    return model, dataset, (f"constant edges and edges inert on {args.pairs} resampled pairs "
                            f"(seed {args.seed}) left out")


def register(command) -> None:
    """Add `score` to the parser (`command` is raspc.cli's helper)."""
    p = command("score", cmd_score, "score a circuit-discovery method's edge or node scores "
                "(JSON, see docs/circuits.md) against the compiled model's exact circuit: "
                "TPR/FPR, pessimistic AUROC, precision at the circuit's size",
                TARGET_HELP + ", a saved model (.npz/.json) or an export directory")
    p.add_argument("scores", help="scores.json: {\"granularity\": ..., \"edges\": [{\"upstream\","
                                  " \"downstream\", \"score\"}, ...]} or \"nodes\", or an "
                                  "object of edge names to scores, e.g. auto-circuit's "
                                  "{\"Resid Start->A0.0.Q\": 0.3}")
    p.add_argument("--granularity", choices=("component", "acdc_hooks", "sp_hooks"),
                   help="override the file's granularity")
    p.add_argument("--keep-excluded", action="store_true",
                   help="count constant and inert true edges as positives")
    p.add_argument("--pairs", type=int, default=DEFAULT_PAIRS, metavar="N",
                   help=f"clean/corrupted pairs deciding which edges are inert "
                        f"(default {DEFAULT_PAIRS})")
    p.add_argument("--seed", type=int, default=0, help="seed of those pairs (default 0)")
    p.add_argument("--dataset", metavar="FILE",
                   help="the clean/corrupted pairs the method saw (an export's dataset.json, "
                        "or {\"pairs\": [{\"clean\": [...], \"corrupted\": [...]}]}, ids as "
                        "\"clean_ids\"/\"corrupted_ids\"): edges inert on them are left out; "
                        "default: an export directory's dataset.json")
    p.add_argument("--merge", choices=("max", "sum"),
                   help="combine repeated scores for one edge (default: refuse them)")
    p.add_argument("--json", metavar="PATH", help="also write the full result (ROC curves) here")
