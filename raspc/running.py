"""`raspc run`: a program on some tokens, with an optional trace of every value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from raspc.formatting import fmt, print_table, print_warnings, sublayer_name
from raspc.targets import (TARGET_HELP, CliError, domain_warnings, load_model_or_target,
                           parse_number)

if TYPE_CHECKING:
    from compiler import CompiledModel


def cmd_run(args) -> int:
    """Run a program (compiled on the fly or loaded) on the tokens; print its output."""
    model, _, _ = load_model_or_target(args, args.strict)
    if model.config.form == "completion":
        raise CliError(f"{args.target} is a completion-form model: run it with "
                       f"raspc generate {args.target} TOKEN ...")
    warnings = domain_warnings(model)
    if model.program is None and not model.domain.total:
        if args.strict:
            raise CliError(f"--strict: the domain of {args.target} is not total: "
                           + "; ".join(model.domain.lines()), 1)
        warnings.append("raspc: warning: this saved model has no program to check the input "
                        "against, so an output here may not be an answer")
    print_warnings(warnings)
    tokens = parse_tokens(args.tokens, model)
    if args.trace:
        print_trace(model, tokens)
        print()
    # With the program, the evaluator checks the input: outside the domain is an error
    # (DomainError, exit status 2), never an output.
    output = model.apply([model.config.bos, *tokens], check=model.program is not None)
    print(f"input:  {' '.join(map(fmt, tokens))}")
    print(f"output: {' '.join(map(fmt, output.decoded[1:]))}")
    return 0


def parse_tokens(words: Sequence[str], model: CompiledModel) -> list[Any]:
    """Command-line words → vocabulary tokens (matched by their str), checked for length
    (for a completion-form model: prompt tokens, at most its prompt length)."""
    config = model.config
    vocab = config.prompt_vocab if config.form == "completion" else config.vocab
    limit = config.prompt_len
    lookup = {str(t): t for t in vocab} | {t: t for t in vocab if isinstance(t, str)}
    if len(words) > limit:
        raise CliError(f"the input has {len(words)} tokens, but this model accepts at most "
                       f"max_seq_len = {limit} (recompile with --max-seq-len)")
    tokens = []
    for position, word in enumerate(words):
        token = lookup.get(word, _numeric_token(word, vocab))
        if token is None:
            raise CliError(f"token {word!r} at position {position} is not in the vocabulary "
                           f"{{{', '.join(map(fmt, vocab))}}}")
        tokens.append(token)
    return tokens


def _numeric_token(word: str, vocab) -> Any:
    """The number token equal to `word` read as a number (3 matches 3.0), else None."""
    number = parse_number(word)
    if number is None:
        return None
    return next((t for t in vocab if isinstance(t, (int, float)) and not isinstance(t, bool)
                 and t == number), None)


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


def register(command) -> None:
    """Add `run` to the parser (`command` is raspc.cli's helper)."""
    run = command("run", cmd_run, "run a program on some tokens and print the decoded output",
                  TARGET_HELP + ", or a saved model.npz", epilog="Example: raspc run reverse a b c")
    run.add_argument("tokens", nargs="+", metavar="TOKEN", help="input tokens (without BOS)")
    run.add_argument("--trace", action="store_true",
                     help="also print every intermediate value, decoded from the residual stream")
