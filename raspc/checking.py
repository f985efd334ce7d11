"""`raspc verify` and `raspc demo`: compiled models against the reference evaluator."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from examples.library import EXAMPLES
from raspc.formatting import print_table, print_warnings
from raspc.targets import (FORM_HELP, TARGET_HELP, Target, add_program_options,
                           domain_warnings, load_target, target_options, with_form)

if TYPE_CHECKING:
    from compiler import CompiledModel
    from rasp_runtime.verify import Verification

MAX_SHOWN_MISMATCHES = 5


def verify(model: CompiledModel, target: Target, inputs: int, seed: int,
           batch_size: int = 100, progress: bool = True) -> Verification:
    """The model against the evaluator on `inputs` random samples of `target`."""
    from tqdm import tqdm

    from rasp_runtime.verify import Verification, verify_inputs

    rng = random.Random(seed)
    result = Verification()
    with tqdm(total=inputs, desc=f"verify {target.name}", unit="input", leave=False,
              disable=not progress) as bar:
        for start in range(0, inputs, batch_size):
            batch = [target.sample(rng) for _ in range(min(batch_size, inputs - start))]
            result += verify_inputs(model, target.program, batch, batch_size)
            bar.update(len(batch))
    return result


def outside_summary(result: Verification, inputs: int) -> str:
    """'12 of 1000 sampled inputs (1.2%) are outside the program's domain: ...'."""
    outside = sum(result.outside.values())
    reasons = ", ".join(f"{reason} ({count})" for reason, count in result.outside.most_common())
    return (f"{outside} of {inputs} sampled inputs ({outside / inputs:.1%}) are outside the "
            f"program's domain: {reasons}")


def cmd_verify(args) -> int:
    """Compare the compiled model with the evaluator; exit 1 on any mismatch, or when no
    sampled input is inside the program's domain."""
    target = with_form(load_target(args.target, args.vocab, args.max_seq_len, args.causal,
                                   **target_options(args)), args.form)
    model, seconds = target.compile(args.strict)
    print_warnings(domain_warnings(model))
    print(f"{target.name}: {len(model.config.layers)} layers, d_model {model.config.d_model}, "
          f"compiled in {seconds:.2f}s; checking {args.inputs} random inputs "
          f"(max_seq_len {target.max_seq_len}, seed {args.seed})")
    result = verify(model, target, args.inputs, args.seed)
    if not result.checked:
        print(f"✗ nothing verified: none of the {args.inputs} sampled inputs is inside the "
              f"program's domain ({', '.join(result.outside)}); check the vocabulary "
              f"(--vocab) and the program's functions")
        return 1
    mismatches = result.mismatches
    if mismatches:
        print(f"✗ {len(mismatches)} of {result.checked} valid inputs disagree with the "
              "evaluator" + "".join(f"\n  {m}" for m in mismatches[:MAX_SHOWN_MISMATCHES]))
    else:
        inside = " inside the program's domain" if result.outside else ""
        print(f"✓ all {result.checked} inputs{inside} agree with the evaluator")
    if result.outside:
        print(f"  {outside_summary(result, args.inputs)}")
    return 1 if mismatches else 0


def cmd_demo(args) -> int:
    """Compile and verify every example; print one table; exit 1 if any fails."""
    from tqdm import tqdm

    start = time.perf_counter()
    import compiler  # noqa: F401
    import haiku  # noqa: F401  loading jax once, so each row times its compile alone
    loading = time.perf_counter() - start
    rows, failures = [], []
    bar = tqdm(list(EXAMPLES.values()), desc="demo", unit="example", leave=False)
    for example in bar:
        bar.set_postfix_str(example.name)
        target = load_target(example.name)
        try:
            model, seconds = target.compile()
            result = verify(model, target, args.inputs, args.seed, progress=False)
            checked, mismatches = result.checked, result.mismatches
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
                     config.d_model, f"{model.parameter_count:,}", f"{seconds:.2f}s",
                     "✓" if ok else "✗"))
    failures += _twin_mismatches({row[0]: row[1] for row in rows})
    print_table(("example", "layers", "heads", "d_model", "params", "compile", "verified"), rows)
    print(f"\n{len(rows) - len(failures)}/{len(rows)} examples verified on {args.inputs} "
          f"random inputs each (seed {args.seed}); loading the compiler and jax took "
          f"{loading:.2f}s, wall time {time.perf_counter() - start:.1f}s")
    for failure in failures:
        print(f"✗ {failure}")
    return 1 if failures else 0


def _twin_mismatches(layers: dict) -> list[str]:
    """A RASP-syntax example must compile to as many layers as its Python twin."""
    from examples.library import RASP_TWINS

    return [f"{name}: {layers[name]} layers, but its Python twin {twin} has {layers[twin]}"
            for name, (_, twin) in RASP_TWINS.items()
            if name in layers and twin in layers and layers[name] != layers[twin]]


def register(command) -> None:
    """Add `verify` and `demo` to the parser (`command` is raspc.cli's helper)."""
    verify_ = command(
        "verify", cmd_verify, "compare the compiled model with the reference evaluator on "
        "random valid inputs; exit status 1 on any mismatch", TARGET_HELP + ", or a saved "
        "model.npz (its program rebuilt: see --program)", inputs=1000)
    add_program_options(verify_)
    verify_.add_argument("--form", choices=("per-position", "completion"), help=FORM_HELP)
    command("demo", cmd_demo, "compile every example at its default size, verify each on "
            "random inputs and print one table; exit status 1 if any fails",
            compiles=False, inputs=200)
