"""`raspc list` and `raspc compile`: the example library, and a model's summary."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from examples.library import EXAMPLES
from raspc.formatting import fmt, print_table
from raspc.formatting import print_warnings
from raspc.targets import (FORM_HELP, TARGET_HELP, add_layer_norm_option, add_program_options,
                           domain_warnings, load_target, target_options, with_form)

if TYPE_CHECKING:
    from compiler import CompiledModel


def print_summary(model: CompiledModel, name: str, description: str, seconds: float) -> None:
    """Sizes of the compiled model and which RASP operation each block implements."""
    config = model.config
    print(f"{name}: {description}")
    print(f"  vocab: {', '.join(map(fmt, config.vocab))}   max_seq_len: {config.max_seq_len}"
          f"   {'causal' if config.causal else 'non-causal'}"
          + (f"   completion form: prompt {fmt(config.sep)} output {fmt(config.eos)}"
             if config.form == "completion" else ""))
    print(f"  compiled in {seconds:.2f}s (wall time, loading the compiler included; "
          "jax loads only to run a model)")
    for key, value in [("layers", len(config.layers)),
                       ("heads per layer", ", ".join(str(l.num_heads) for l in config.layers)),
                       ("MLP widths", ", ".join(str(l.mlp_hidden) for l in config.layers)),
                       ("d_model", config.d_model), ("parameters", f"{model.parameter_count:,}")]:
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


def cmd_list(args) -> int:
    """Print every example with its description and default settings."""
    rows = [(e.name, e.description, f"vocab {' '.join(map(fmt, e.vocab))}; n={e.max_seq_len}")
            for e in EXAMPLES.values()]
    print_table(("example", "description", "defaults"), rows)
    return 0


def cmd_compile(args) -> int:
    """Compile an example or a user program, print its summary, optionally save it."""
    target = with_form(load_target(args.target, args.vocab, args.max_seq_len, args.causal,
                                   **target_options(args)), args.form)
    model, seconds = target.compile(args.strict, args.layer_norm,
                                    "soft" if args.soft_attention else "hard")
    print_warnings(domain_warnings(model))
    print_summary(model, target.name, target.description, seconds)
    if args.output:
        npz, meta = model.save(args.output, f"{target.name}: {target.description}")
        print(f"\nsaved {npz} and {meta}")
    return 0


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
    add_program_options(compile_)
    compile_.add_argument("--form", choices=("per-position", "completion"), help=FORM_HELP)
    add_layer_norm_option(compile_)
    compile_.add_argument("--soft-attention", action="store_true",
                          help="give every head the smallest logit gap its error bounds "
                               "accept instead of 100, so gradients reach W_Q and W_K "
                               "(docs/soft_attention.md)")
