"""Export a CompiledModel to a directory TransformerLens users (and InterpBench tools) load.

Every format writes `model.safetensors` (the TransformerBridge weights),
`config.json` (TransformerBridgeConfig fields), `tokenizer.json`,
`ground_truth.json`, `edges.json` (the true circuit in hook names),
`dataset.json` (seeded clean/corrupted input pairs, when the model has its
program; see interp.circuits.dataset_file), and `rasp_model.npz`/`.json` so
`CompiledModel.load(directory)` gets the exact model back. "transformer-lens" adds the HookedTransformer layout (`legacy.safetensors`,
`legacy_config.json`); "interpbench" adds InterpBench's `ll_model.pth`,
`ll_model_cfg.pkl` and `edges.pkl`. The model's JSON, written last, records the
sha256 of every other file ("export_files"), and lists the other formats' files as
absent (null), so `CompiledModel.load(directory)` refuses a directory whose
safetensors or torch files are not the model's. Re-exporting into a directory
removes the files of other formats an earlier export left there.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

from interp import tl_weights
from interp.extras import import_extra
from rasp_runtime.checksum import export_manifest
from rasp_runtime.model import DECODE_THRESHOLD
from rasp_runtime.serialize import EXPORT_MODEL_NAME, ModelFileError, save_model

FORMATS = ("safetensors", "transformer-lens", "interpbench")
# Files only some formats write (every format writes the others).
FORMAT_FILES = {"safetensors": (),
                "transformer-lens": ("legacy.safetensors", "legacy_config.json"),
                "interpbench": ("ll_model.pth", "ll_model_cfg.pkl", "edges.pkl")}
DATASET_FILE = "dataset.json"


def export_model(model, directory: str | os.PathLike, format: str = "safetensors",
                 description: str | None = None) -> list[Path]:
    """Write `model` to `directory` in `format` (see the module docstring); returns the files."""
    if format not in FORMATS:
        raise ModelFileError(f"unknown export format {format!r}; choose one of "
                             f"{', '.join(FORMATS)}")
    import_extra("safetensors.numpy")  # before anything is written
    if format == "interpbench":
        import_extra("torch")
    directory = Path(directory)
    if directory.suffix in (".npz", ".json") or directory.is_file():
        raise ModelFileError(f"{directory} must be a directory for format {format!r} "
                             f"(the .npz format takes a file)")
    directory.mkdir(parents=True, exist_ok=True)
    absent = [name for other, names in FORMAT_FILES.items() if other != format
              for name in names]
    for name in absent:  # left by an earlier export in another format
        (directory / name).unlink(missing_ok=True)
    truth = model.ground_truth
    files = {name: directory / name for name in
             ("model.safetensors", "config.json", "tokenizer.json", "ground_truth.json",
              "edges.json")}
    write_safetensors(files["model.safetensors"],
                       tl_weights.native_arrays(model.params, model.config))
    _write_json(files["config.json"], tl_weights.bridge_config(model.config))
    _write_json(files["tokenizer.json"], tokenizer_table(model))
    write_ground_truth(files["ground_truth.json"], truth)
    _write_json(files["edges.json"], circuit_edges(truth))
    written = list(files.values())
    (directory / DATASET_FILE).unlink(missing_ok=True)  # a stale one must not pass as ours
    dataset = _write_dataset(model, directory)
    written += dataset
    absent += [] if dataset else [DATASET_FILE]
    if format == "transformer-lens":
        legacy = directory / "legacy.safetensors"
        write_safetensors(legacy, tl_weights.legacy_arrays(model.params, model.config))
        _write_json(directory / "legacy_config.json", tl_weights.legacy_config(model.config))
        written += [legacy, directory / "legacy_config.json"]
    if format == "interpbench":
        written += _write_interpbench(model, truth, directory)
    manifest = {**dict.fromkeys(absent), **export_manifest(written)}
    ours = save_model(model, directory / EXPORT_MODEL_NAME, description,
                      sections={"export_files": manifest})
    return written + list(ours)


def _write_dataset(model, directory: Path) -> list[Path]:
    """dataset.json, when the model has its program (valid pairs need the evaluator)
    and its sampler finds enough valid inputs."""
    from interp.circuits.dataset_file import dataset_json

    if model.program is None:
        return []
    try:
        data = dataset_json(model)
    except ValueError:  # too few valid inputs: an outside tool brings its own pairs
        return []
    _write_json(directory / DATASET_FILE, data)
    return [directory / DATASET_FILE]


def write_ground_truth(path: Path, truth, hf_config=None) -> None:
    """`truth` as JSON (GroundTruth.to_json); given the model's config (the Hugging Face
    export), also "hf_modules": each hook name -> its GPT-2 module (hook_names.hf_module)."""
    text = truth.to_json(indent=1)
    if hf_config is not None:
        from compiler.hook_names import hf_module
        from rasp_runtime.forward import hook_names

        data = json.loads(text)
        data["hf_modules"] = {name: hf_module(name) for name in hook_names(hf_config)}
        text = json.dumps(data, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


def tokenizer_table(model) -> dict[str, Any]:
    """Input ids ↔ tokens and unembedding columns ↔ output values, as plain JSON values."""
    ids = model.input_encoder.encoding_map
    output = model.output_encoder
    return {
        "bos_id": ids[model.config.bos], "pad_id": ids[model.config.pad],
        "input": [{"id": i, "token": _plain(t)} for t, i in ids.items()],
        "output_numerical": output.numerical,
        "output": [] if output.numerical else [{"column": c, "value": _plain(v)}
                                               for c, v in enumerate(output.values)],
        "decode": "numerical: logits[..., 0] is the value" if output.numerical else
                  "categorical: the argmax column's value if its logit > "
                  f"{DECODE_THRESHOLD}, else None",
    }


def circuit_edges(truth) -> list[dict[str, Any]]:
    """The true circuit's edges in hook names (legacy and bridge spellings).

    From `truth.circuit_graph("hook")`: a head is `blocks.L.attn.hook_result[h]`,
    a layer's MLP `blocks.L.hook_mlp_out`, the output the last
    `hook_resid_post`. `inputs` says which of a head's q, k, v read the edge.
    """
    from compiler.hook_names import bridge_hook

    graph = truth.circuit_graph("hook")
    output = f"blocks.{truth.n_layers - 1}.hook_resid_post"
    edges = []
    for u, v, attrs in graph.edges(data=True):
        u, v = (output if x == "output" else x for x in (u, v))
        edges.append({"from": u, "to": v, "from_bridge": bridge_hook(u),
                      "to_bridge": bridge_hook(v), "inputs": list(attrs["inputs"]),
                      "directions": list(attrs["directions"])})
    return edges


def interpbench_edges(truth) -> list[tuple[str, str]]:
    """Edges as InterpBench's edges.pkl lists them: (sender, receiver) hook names.

    Senders are the embeddings (`blocks.0.hook_resid_pre`, where ACDC-style graphs
    start), `blocks.L.attn.hook_result[h]` and `blocks.L.hook_mlp_out`; receivers
    are `blocks.L.hook_{q,k,v}_input[h]`, `blocks.L.hook_mlp_in` and the last
    `hook_resid_post`.
    """
    out = []
    for edge in circuit_edges(truth):
        sender = "blocks.0.hook_resid_pre" if edge["from"] in ("hook_embed", "hook_pos_embed") \
            else edge["from"]
        receiver = edge["to"]
        if ".attn.hook_result[" in receiver:
            layer, head = receiver.split(".")[1], receiver.split("[")[1].rstrip("]")
            receivers = [f"blocks.{layer}.hook_{side}_input[{head}]" for side in edge["inputs"]]
        elif receiver.endswith("hook_mlp_out"):
            receivers = [receiver.replace("hook_mlp_out", "hook_mlp_in")]
        else:
            receivers = [receiver]
        out.extend((sender, r) for r in receivers if (sender, r) not in out)
    return out


def _write_interpbench(model, truth, directory: Path) -> list[Path]:
    import torch

    from interp.transformer_lens import transformer_lens_state_dict

    state_dict, config = transformer_lens_state_dict(model, legacy=True)
    paths = [directory / "ll_model.pth", directory / "ll_model_cfg.pkl", directory / "edges.pkl"]
    torch.save(state_dict, paths[0])
    with open(paths[1], "wb") as f:
        pickle.dump(config, f)
    with open(paths[2], "wb") as f:
        pickle.dump(interpbench_edges(truth), f)
    return paths


def _plain(value):
    """A token or value as a plain JSON value (tuples as lists, anything else by str)."""
    if hasattr(value, "item") and not isinstance(value, (tuple, list)):  # numpy scalars
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list, frozenset)):
        return [_plain(v) for v in value]
    return str(value)


def write_safetensors(path: Path, arrays) -> None:
    """Like safetensors' save_file, but with the usual file permissions (it writes 0600).

    One metadata key only: safetensors writes the metadata map in hash order, so two
    keys could swap between runs and the bytes would differ."""
    save = import_extra("safetensors.numpy").save

    path.write_bytes(save(arrays, metadata={"format": "pt"}))


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
