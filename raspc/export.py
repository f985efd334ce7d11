"""`raspc export`: a program or saved model as a TransformerLens / InterpBench / Hugging Face
directory."""

from __future__ import annotations

from raspc.targets import FORM_HELP, TARGET_HELP, add_layer_norm_option, load_model_or_target

# interp.tl_export.FORMATS, and hf (interp.hf_export)
FORMATS = ("safetensors", "transformer-lens", "interpbench", "hf")


def cmd_export(args) -> int:
    """Compile (or load) the target and write it to the output directory in the format."""
    model, description, _ = load_model_or_target(args)
    written = model.save(args.output, description, format=args.format)
    print(f"wrote {len(written)} files to {args.output}/: "
          f"{', '.join(sorted(p.name for p in written))}")
    return 0


def register(command) -> None:
    """Add `export` to the parser (`command` is raspc.cli's helper)."""
    p = command("export", cmd_export, "write a program or saved model as TransformerLens "
                "weights (safetensors), with its tokenizer, ground truth and circuit edges",
                TARGET_HELP + ", or a saved model.npz",
                epilog="Example: raspc export reverse --format interpbench -o reverse_tl/")
    p.add_argument("--format", choices=FORMATS, default="safetensors",
                   help="safetensors: TransformerBridge weights + config/tokenizer/ground "
                        "truth/edges JSON; transformer-lens: also the HookedTransformer layout; "
                        "interpbench: also ll_model.pth, ll_model_cfg.pkl, edges.pkl; "
                        "hf: a Hugging Face GPT-2 save_pretrained directory (causal "
                        "LayerNorm models: --causal --layer-norm, or --form completion "
                        "--layer-norm)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--form", choices=("per-position", "completion"), help=FORM_HELP)
    add_layer_norm_option(p)
