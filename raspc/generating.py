"""`raspc generate`: a program compiled in completion form writes its output after a prompt."""

from __future__ import annotations

from raspc.formatting import fmt, print_warnings
from raspc.running import parse_tokens
from raspc.targets import (MODEL_SUFFIXES, TARGET_HELP, CliError, domain_warnings,
                           load_model_or_target)


def cmd_generate(args) -> int:
    """Compile the target in completion form (or load a completion model), then decode
    greedily after the prompt and print the completion."""
    args.form = None if args.target.endswith(MODEL_SUFFIXES) else "completion"
    model, _, _ = load_model_or_target(args, args.strict)
    if model.config.form != "completion":
        raise CliError(f"{args.target} computes a value per position, it does not generate: "
                       f"use raspc run, or recompile it with raspc compile --form completion")
    print_warnings(domain_warnings(model))
    prompt = parse_tokens(args.tokens, model)
    # With the program, the evaluator checks the input and the output, as `raspc run` does.
    output = model.generate(prompt, check=model.completion_of is not None)
    print(f"prompt:     {' '.join(map(fmt, prompt))} {fmt(model.config.sep)}")
    print(f"completion: {' '.join(map(fmt, output))}")
    return 0


def register(command) -> None:
    """Add `generate` to the parser (`command` is raspc.cli's helper)."""
    generate = command("generate", cmd_generate, "compile a program in completion form and "
                       "print the output it writes, token by token, after the prompt",
                       TARGET_HELP + ", or a model saved with --form completion",
                       epilog="Example: raspc generate reverse a b c")
    generate.add_argument("tokens", nargs="+", metavar="TOKEN", help="prompt tokens")
