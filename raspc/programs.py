"""`raspc list` and `raspc compile`: the example library, and a model's summary."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from examples.library import EXAMPLES
from raspc.formatting import fmt, print_table
from raspc.formatting import print_warnings
from raspc.targets import (FORM_HELP, TARGET_HELP, CliError, Target, add_layer_norm_option,
                           add_program_options, domain_warnings, load_target, target_options,
                           with_form)

if TYPE_CHECKING:
    from compiler import CompiledModel


def print_summary(model: CompiledModel, name: str, description: str, seconds: float) -> None:
    """Sizes of the compiled model and which RASP operation each block implements."""
    config = model.config
    print(f"{name}: {description}")
    print(f"  vocab: {', '.join(map(fmt, config.vocab))}   max_seq_len: {config.max_seq_len}"
          f"   {'causal' if config.causal else 'non-causal'}"
          + (f"   completion form: prompt {fmt(config.sep)} output {fmt(config.eos)}"
             if config.form == "completion" else "")
          + (f"   tasks: {', '.join(config.tasks)}" if config.tasks else ""))
    print(f"  compiled in {seconds:.2f}s (wall time, loading the compiler included; "
          "jax loads only to run a model)")
    for key, value in [("layers", len(config.layers)),
                       ("heads per layer", ", ".join(str(l.num_heads) for l in config.layers)),
                       ("MLP widths", ", ".join(str(l.mlp_hidden) for l in config.layers)),
                       ("d_model", config.d_model), ("parameters", f"{model.parameter_count:,}")] + \
            [("realism knobs", _knobs(model))] * bool(model.knobs):
        print(f"  {key + ':':16} {value}")
    if config.normalization == "layernorm":
        print(f"  {'LayerNorm:':16} pre-LN, eps 2^{math.log2(config.layer_norm_eps):g}, gain "
              "√eps (residual labels 'balance' and 'mean_probe' keep it exact)")
    if model.attention_gaps is not None:
        print(f"  {'attention:':16} {model.attention_description}")
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


def _knobs(model) -> str:
    from interp.realism import describe_knobs
    return describe_knobs(model)


def cmd_list(args) -> int:
    """Print every example with its description and default settings."""
    rows = [(e.name, e.description, f"vocab {' '.join(map(fmt, e.vocab))}; n={e.max_seq_len}")
            for e in EXAMPLES.values()]
    print_table(("example", "description", "defaults"), rows)
    return 0


def cmd_compile(args) -> int:
    """Compile an example or a user program, print its summary, optionally save it."""
    if args.tasks or args.more_targets:
        target = _tasks_target(args)
    else:
        target = with_form(load_target(args.target, args.vocab, args.max_seq_len,
                                       args.causal, **target_options(args)), args.form)
    if args.perturb_scale is not None and args.perturb is None:
        raise CliError("--perturb-scale sets --perturb's noise; give --perturb SEED too")
    model, seconds = target.compile(args.strict, args.layer_norm,
                                    "soft" if args.soft_attention else "hard")
    print_warnings(domain_warnings(model))
    if (args.rotate, args.permute_neurons, args.perturb) != (None, None, None):
        from interp.realism import apply_knobs
        model = apply_knobs(model, args.rotate, args.permute_neurons, args.perturb,
                            args.perturb_scale)
    print_summary(model, target.name, target.description, seconds)
    if args.output:
        npz, meta = model.save(args.output, f"{target.name}: {target.description}")
        print(f"\nsaved {npz} and {meta}")
    return 0


def _tasks_target(args) -> Target:
    """With --tasks, the targets as one several-task program (compiler.multitask): the
    first target's vocabulary and length unless --vocab/--max-seq-len say otherwise."""
    specs = [args.target, *args.more_targets]
    if not args.tasks:
        raise CliError(f"several targets ({' '.join(specs)}) compile into one model only "
                       "with --tasks")
    if args.form not in (None, "per-position") or any(s.endswith((".npz", ".json"))
                                                       for s in specs):
        raise CliError("--tasks compiles programs in the per-position form, not saved "
                       "models or --form completion")
    first = load_target(specs[0], args.vocab, args.max_seq_len, args.causal,
                        **target_options(args))
    vocab = args.vocab or ",".join(map(str, first.vocab))
    targets = [first] + [load_target(s, vocab, first.max_seq_len, args.causal,
                                     **target_options(args)) for s in specs[1:]]
    names = [t.name.rsplit(":", 1)[-1] for t in targets]
    if len(set(names)) < len(names):
        raise CliError(f"--tasks needs distinct task names, got {' '.join(names)}")
    programs = dict(zip(names, (t.program for t in targets)))
    return dataclasses.replace(
        first, name=" ".join(names), description="several tasks in one model: the task "
        "token after BOS picks the program", program=programs, source=None,
        sample=lambda rng: [rng.choice(names), *first.sample(rng)])


def register(command) -> None:
    """Add `list` and `compile` to the parser (`command` is raspc.cli's helper)."""
    command("list", cmd_list, "list the example programs with their descriptions",
            compiles=False)
    compile_ = command("compile", cmd_compile, "compile a program; print its layers, sizes and "
                       "which RASP operation each attention head and MLP implements",
                       TARGET_HELP,
                       epilog="A program file's function returns a RASP SOp; if it takes a "
                              "parameter, it is called with max_seq_len. Example: raspc compile "
                              "my.py:make_program --vocab 1,2,3 --max-seq-len 5 -o model.npz")
    compile_.add_argument("-o", "--output", metavar="model.npz",
                          help="save the parameters here and the metadata as .json beside it")
    for flag, knob in (("--rotate", "rotate the residual basis (a seeded random orthogonal "
                                    "change)"),
                       ("--permute-neurons", "shuffle and rescale each MLP's hidden units"),
                       ("--perturb", "add seeded noise to every weight, at the largest scale "
                                     "the error bound accepts")):
        compile_.add_argument(flag, type=int, metavar="SEED",
                              help=f"{knob}; see docs/realism.md")
    compile_.add_argument("--perturb-scale", type=float, metavar="S",
                          help="--perturb's noise scale (refused if the bound fails)")
    add_program_options(compile_)
    compile_.add_argument("more_targets", nargs="*", metavar="NAME",
                          help="with --tasks: more targets, compiled into the same model")
    compile_.add_argument("--tasks", action="store_true",
                          help="compile every target into one model that reads the task "
                               "name after BOS (raspc compile reverse hist sort --tasks)")
    compile_.add_argument("--form", choices=("per-position", "completion"), help=FORM_HELP)
    add_layer_norm_option(compile_)
    compile_.add_argument("--soft-attention", action="store_true",
                          help="give every head the smallest logit gap its error bounds "
                               "accept instead of 100, so gradients reach W_Q and W_K "
                               "(docs/soft_attention.md)")
