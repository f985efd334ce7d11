"""Saving and loading compiled models: parameters as .npz, everything else as JSON.

`save_model(model, "out/model.npz")` writes `out/model.npz` (the haiku
parameters, float32, no pickles) and `out/model.json` next to it: the config,
the input and output encoders, the residual labels, a description of the
program and where it came from (`model.source`), the components (which head or
MLP implements what), the value records and the ground-truth alignment.
`load_model` rebuilds an identical `CompiledModel` from the two files without
recompiling. The JSON holds a checksum of both files (rasp_runtime.checksum), which
`load_model` checks unless `verify=False`; the rebuilt model's parts are always
checked against each other (rasp_runtime.model_checks). The loaded model has no
`program` (functions inside a RASP program cannot be stored), but its ground truth
is complete: the alignment, with its fused, query and key sites, comes from the file.
The alignment's records are the compiler's (compiler.ground_truth): saving and loading
import them when they run, the one place this package reaches up (see docs/compiler.md).

Token and value types are tagged in the JSON so they come back exactly:
ints stay ints, bools stay bools, tuples stay tuples, floats are stored by
their repr (so NaN, ±inf and every bit of precision survive), numpy scalars
keep their dtype.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

import rasp
from craft.blocks import BlockInfo
from rasp.errors import ModelFileError  # defined with every error type; importable here too
from rasp_runtime.checksum import check_checksum, check_export_files, checksum_entry
from rasp_runtime.config import LayerConfig, ModelConfig
from rasp_runtime.domain import Domain, DomainCondition
from rasp_runtime.model import CompiledModel, Component, ValueRecord
from rasp_runtime.model_checks import MAX_SEQ_LEN_LIMIT, check_model, whole_number

FORMAT = "rasp-compiler-model"
VERSION = 1
_KEY_SEP = "::"  # npz entry name = module + _KEY_SEP + parameter name
EXPORT_MODEL_NAME = "rasp_model.npz"  # our own files inside an export directory
# What rebuilding a model from malformed JSON data raises (a missing key, a list where
# a dict belongs, a string where a number belongs, a too-deeply nested value, ...).
MALFORMED = (AttributeError, KeyError, TypeError, ValueError, OverflowError, IndexError,
             RecursionError, MemoryError)


# ------------------------------------------------------------------ paths
def model_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(parameters .npz, metadata .json) for `path` ending in .npz, .json or neither.

    A directory (an export, see `CompiledModel.save(..., format=...)`) holds them
    as EXPORT_MODEL_NAME (.npz and .json).
    """
    path = Path(path)
    if path.is_dir():
        path = path / EXPORT_MODEL_NAME
    stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    return stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")


# ------------------------------------------------------------------ tagged values
def encode_value(value: Any) -> Any:
    """A JSON-able tagged form of a token or value, e.g. 3 → {"int": 3}."""
    if value is None:
        return {"none": None}
    if isinstance(value, np.generic):  # before bool/int/float: np.float64 is a float
        return {"numpy": value.dtype.str, "value": encode_value(value.item())}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": int(value)}
    if isinstance(value, float):
        return {"float": repr(float(value))}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v) for v in value]}
    if isinstance(value, frozenset):
        return {"frozenset": [encode_value(v) for v in value]}
    raise ModelFileError(f"cannot save value {value!r} of type {type(value).__name__}; "
                         "supported: None, bool, int, float, str, tuple, frozenset, "
                         "numpy scalars")


def decode_value(data: Any) -> Any:
    """The inverse of `encode_value`."""
    if not isinstance(data, dict) or not data:
        raise ModelFileError(f"malformed tagged value {data!r}")
    if "numpy" in data:
        return np.dtype(data["numpy"]).type(decode_value(data["value"]))
    (tag, payload), = data.items()
    decoders = {
        "none": lambda p: None, "bool": bool, "int": int, "float": float, "str": str,
        "tuple": lambda p: tuple(decode_value(v) for v in p),
        "frozenset": lambda p: frozenset(decode_value(v) for v in p),
    }
    if tag not in decoders:
        raise ModelFileError(f"unknown value tag {tag!r}")
    return decoders[tag](payload)


def _values(values) -> list[Any]:
    return [encode_value(v) for v in values]


def _unvalues(data) -> tuple[Any, ...]:
    return tuple(decode_value(v) for v in data)


# ------------------------------------------------------------------ metadata
def _config_to_json(config: ModelConfig) -> dict[str, Any]:
    return {
        "vocab": _values(config.vocab), "max_seq_len": config.max_seq_len,
        "causal": config.causal, "bos": encode_value(config.bos), "pad": encode_value(config.pad),
        "d_model": config.d_model,
        "layers": [{"num_heads": l.num_heads, "key_size": l.key_size,
                    "value_size": l.value_size, "mlp_hidden": l.mlp_hidden}
                   for l in config.layers],
        "output_label": config.output_label, "output_numerical": config.output_numerical,
        "output_values": _values(config.output_values),
        # Written only for LayerNorm models, so plain models' files stay as they were.
        **({"normalization": config.normalization, "activation": config.activation,
            "layer_norm_eps": config.layer_norm_eps}
           if config.normalization != "none" else {}),
        # Only a completion model says its form, so per-position files stay as they were.
        **({"form": config.form, "sep": encode_value(config.sep),
            "eos": encode_value(config.eos), "prompt_vocab": _values(config.prompt_vocab),
            **({"none": encode_value(config.none)} if config.none is not None else {}),
            "completion_causal": config.completion_causal}
           if config.form != "per-position" else {}),
        # Only a several-task model has tasks (compiler.multitask).
        **({"tasks": list(config.tasks)} if config.tasks else {}),
    }


def _config_from_json(data: dict[str, Any]) -> ModelConfig:
    return ModelConfig(
        vocab=_unvalues(data["vocab"]),
        max_seq_len=whole_number(data["max_seq_len"], "config.max_seq_len", 1,
                                 MAX_SEQ_LEN_LIMIT),
        causal=bool(data["causal"]), bos=decode_value(data["bos"]),
        pad=decode_value(data["pad"]), d_model=whole_number(data["d_model"], "config.d_model", 1),
        layers=tuple(LayerConfig(**layer) for layer in data["layers"]),
        output_label=data["output_label"], output_numerical=bool(data["output_numerical"]),
        output_values=_unvalues(data["output_values"]),
        normalization=data.get("normalization", "none"),  # absent: saved before LayerNorm
        activation=data.get("activation", "relu"),
        layer_norm_eps=data.get("layer_norm_eps", 0.0), **_form_from_json(data),
        tasks=tuple(str(t) for t in data.get("tasks", ())))


def _form_from_json(data: dict[str, Any]) -> dict[str, Any]:
    """The form fields of a config; a file without them is per-position (older files too)."""
    if "form" not in data:
        return {}
    return {"form": data["form"], "sep": decode_value(data["sep"]),
            "eos": decode_value(data["eos"]), "prompt_vocab": _unvalues(data["prompt_vocab"]),
            "none": decode_value(data["none"]) if "none" in data else None,
            "completion_causal": bool(data["completion_causal"])}


def _component_to_json(c: Component) -> dict[str, Any]:
    info = c.info
    return {"layer": c.layer, "kind": c.kind, "head": c.head,
            "info": {"exprs": list(info.exprs), "op": info.op, "query": list(info.query),
                     "key": list(info.key), "value": list(info.value),
                     "predicate": info.predicate},
            "reads": list(c.reads), "writes": list(c.writes),
            "hidden": None if c.hidden is None else list(c.hidden)}


def _component_from_json(data: dict[str, Any]) -> Component:
    info = data["info"]
    return Component(
        data["layer"], data["kind"], data["head"],
        BlockInfo(tuple(info["exprs"]), info["op"], tuple(info["query"]), tuple(info["key"]),
                  tuple(info["value"]), info["predicate"]),
        tuple(data["reads"]), tuple(data["writes"]),
        None if data["hidden"] is None else tuple(data["hidden"]))


def _record_to_json(r: ValueRecord) -> dict[str, Any]:
    return {"label": r.label, "numerical": r.numerical, "values": _values(r.values),
            "dims": list(r.dims), "sublayer": r.sublayer}


def _record_from_json(data: dict[str, Any]) -> ValueRecord:
    return ValueRecord(data["label"], bool(data["numerical"]), _unvalues(data["values"]),
                       tuple(data["dims"]), data["sublayer"])  # both checked by check_model


def _domain_to_json(domain: Domain) -> dict[str, Any]:
    return {"unknown": domain.unknown,
            "conditions": [{"label": c.label, "kind": c.kind, "detail": c.detail,
                            "examples": _examples(c.examples), "certain": c.certain}
                           for c in domain.conditions]}


def _examples(values) -> list[Any]:
    try:
        return _values(values)
    except ModelFileError:  # an exotic value: keep what it looks like
        return [encode_value(repr(v)) for v in values]


def _domain_from_json(data: dict[str, Any] | None) -> Domain | None:
    if data is None:  # saved before domains were recorded
        return None
    return Domain(tuple(DomainCondition(c["label"], c["kind"], c["detail"],
                                        _unvalues(c["examples"]), bool(c["certain"]))
                        for c in data["conditions"]), data["unknown"])


def describe_program(program: rasp.SOp) -> list[dict[str, Any]]:
    """The program's expressions, children first: label, type, encoding, children's labels."""
    order = rasp.topological_order(program)
    labels = rasp.unique_labels(order)
    return [{"label": labels[e.unique_id], "type": type(e).__name__,
             "encoding": rasp.get_encoding(e).value if isinstance(e, rasp.SOp) else None,
             "children": [labels[c.unique_id] for c in e.children]}
            for e in order]


def program_structure(expressions: list[dict[str, Any]]) -> list[tuple]:
    """`describe_program`'s list without labels (which hold ids that differ between
    imports): (type, encoding, positions of the children) per expression."""
    position = {e["label"]: i for i, e in enumerate(expressions)}
    return [(e["type"], e["encoding"], tuple(position[c] for c in e["children"]))
            for e in expressions]


def _program_to_json(model: CompiledModel, description: str | None) -> dict[str, Any]:
    """A readable summary of the program, and where it came from."""
    program: dict[str, Any] = {"description": description, "output": model.config.output_label,
                               "source": model.source}
    written = getattr(model, "completion_of", None)  # a completion model's program as written
    written = model.program if written is None else written
    if written is not None:
        program["expressions"] = describe_program(written)
    return program


def model_metadata(model: CompiledModel, description: str | None = None) -> dict[str, Any]:
    """Everything but the parameter values, as a JSON-able dict."""
    inputs = model.input_encoder
    return {
        "format": FORMAT, "version": VERSION,
        "config": _config_to_json(model.config),
        "encoders": {
            "input": {"vocab": _values(inputs.vocab), "bos": encode_value(inputs.bos),
                      "pad": encode_value(inputs.pad),
                      "ids": [[encode_value(t), i] for t, i in inputs.encoding_map.items()]},
            "output": {"numerical": model.output_encoder.numerical,
                       "values": _values(model.output_encoder.values)},
        },
        "residual_labels": list(model.residual_labels),
        "program": _program_to_json(model, description),
        "components": [_component_to_json(c) for c in model.components],
        "value_records": [_record_to_json(r) for r in model.value_records.values()],
        "alignment": _alignment_to_json(model),
        "domain": _domain_to_json(model.domain),
        # soft attention: each head's logit gap, by SOp label (absent for hard attention)
        **({"attention_gaps": model.attention_gaps} if model.attention_gaps is not None else {}),
        "params": {module: {name: {"shape": list(a.shape), "dtype": str(a.dtype)}
                            for name, a in weights.items()}
                   for module, weights in model.params.items()},
        # a knobbed model (interp.realism): its knobs and the truth they carried along
        **({"realism": {"knobs": model.knobs, "truth": json.loads(model.saved_truth)}}
           if model.knobs else {}),
    }


# ------------------------------------------------------------------ save / load
def save_model(model: CompiledModel, path: str | os.PathLike, description: str | None = None,
               sections: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write `model` to `path` (.npz) and the .json beside it, with their checksum; returns
    both paths. `sections`: more top-level JSON entries (e.g. a compressed model's
    "compression", an export's "export_files"), covered by the checksum too."""
    npz_path, json_path = model_paths(path)
    metadata = {**model_metadata(model, description), **(sections or {})}
    # As load_model will see it (lists for tuples, str keys); fails before writing anything.
    metadata = json.loads(_json_text(metadata))
    arrays = {}
    for module, weights in model.params.items():
        for name, array in weights.items():
            if _KEY_SEP in module or _KEY_SEP in name:
                raise ModelFileError(f"parameter name {module}/{name} contains {_KEY_SEP!r}")
            arrays[module + _KEY_SEP + name] = np.asarray(array)
    buffer = io.BytesIO()  # a file object: np.savez adds no suffix
    np.savez(buffer, **arrays)
    metadata["checksum"] = checksum_entry(metadata, arrays, buffer.getvalue())
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    npz_path.write_bytes(buffer.getvalue())
    json_path.write_text(_json_text(metadata), encoding="utf-8")
    return npz_path, json_path


def _json_text(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, indent=1, ensure_ascii=False) + "\n"


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata JSON of the model saved at `path` (.npz or .json), checked for format."""
    _, json_path = model_paths(path)
    try:
        metadata = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"no saved model at {path}: {json_path} does not exist") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {json_path}: {e.strerror}") from None
    except (ValueError, RecursionError, MemoryError) as e:  # bad UTF-8 or JSON, deep nesting
        raise ModelFileError(f"{json_path} is not valid model JSON (it is corrupt or was "
                             f"edited: {type(e).__name__}: {str(e)[:80]}); recompile the "
                             "model or save it again") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{json_path} is not a saved rasp-compiler model")
    if metadata.get("version") != VERSION:
        raise ModelFileError(f"{json_path} has format version {metadata.get('version')!r}; "
                             f"this compiler reads version {VERSION}")
    return metadata


def load_model(path: str | os.PathLike, verify: bool = True) -> CompiledModel:
    """The model saved at `path` (.npz, .json or export directory), rebuilt without
    recompiling.

    Raises ModelFileError when a file is missing or corrupt, when (with `verify`) a file
    differs from what was saved (its checksum, see rasp_runtime.checksum) or an export
    directory's other files differ from the model, and always when the model's parts
    disagree (rasp_runtime.model_checks). `verify=False` loads a hand-edited or old file.
    """
    npz_path, json_path = model_paths(path)
    metadata = read_metadata(path)
    try:
        npz_bytes = npz_path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"no saved model at {path}: {npz_path} does not exist") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {npz_path}: {e.strerror}") from None
    arrays = _read_arrays(npz_bytes, npz_path)
    if verify:
        check_checksum(metadata, arrays, npz_bytes, npz_path, json_path)
        check_export_files(metadata, json_path)
    try:
        model = _build(metadata, arrays)
        check_model(model)
    except ModelFileError as e:
        raise ModelFileError(f"{json_path} is inconsistent: {e}; recompile the model or save "
                             "it again (the file is corrupt or was edited)") from None
    except MALFORMED as e:
        raise ModelFileError(f"{json_path} is malformed or does not match {npz_path}: "
                             f"{type(e).__name__}: {str(e)[:200]}; recompile the model or "
                             "save it again") from None
    return model


def _read_arrays(npz_bytes: bytes, npz_path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except Exception:  # noqa: BLE001  zipfile and numpy raise many types on corrupt bytes
        raise ModelFileError(f"{npz_path} is not a parameter file saved by rasp-compiler (it "
                             "is corrupt or of another format); save the model again with "
                             "model.save(path) or `raspc compile PROGRAM -o path`") from None


def _build(metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> CompiledModel:
    params: dict[str, dict[str, np.ndarray]] = {}
    for module, weights in metadata["params"].items():
        params[module] = {}
        for name, spec in weights.items():
            array = arrays.pop(module + _KEY_SEP + name)
            if list(array.shape) != spec["shape"] or str(array.dtype) != spec["dtype"]:
                raise ModelFileError(f"parameter {module}/{name} has shape {array.shape} "
                                     f"{array.dtype}, expected {spec['shape']} {spec['dtype']}")
            params[module][name] = array
    if arrays:
        raise ModelFileError(f"unexpected parameters in the .npz: {sorted(arrays)}")
    config = _config_from_json(metadata["config"])
    alignment = metadata.get("alignment")  # absent from files saved before it was kept
    records = [_record_from_json(r) for r in metadata["value_records"]]
    if len({r.label for r in records}) != len(records):
        raise ModelFileError("two value records have the same label")
    model = CompiledModel(params, config, metadata["residual_labels"],
                          [_component_from_json(c) for c in metadata["components"]], records,
                          saved_alignment=None if alignment is None
                          else _alignment_from_json(alignment),
                          domain=_domain_from_json(metadata.get("domain")))
    model.source = metadata["program"].get("source")
    realism = metadata.get("realism")
    if realism is not None:
        model.knobs = [dict(knob) for knob in realism["knobs"]]
        model.saved_truth = json.dumps(realism["truth"])
    gaps = metadata.get("attention_gaps")
    model.attention_gaps = None if gaps is None else {str(k): float(v) for k, v in gaps.items()}
    ids = {decode_value(t): i for t, i in metadata["encoders"]["input"]["ids"]}
    if ids != model.input_encoder.encoding_map:
        raise ModelFileError("the saved input encoder does not match the config's vocabulary")
    return model


def _alignment_to_json(model) -> dict[str, list[dict]]:
    from compiler.ground_truth import alignment_to_json  # the truth is the compiler's
    return alignment_to_json(model.ground_truth.alignment)


def _alignment_from_json(data) -> dict:
    from compiler.ground_truth import alignment_from_json  # the truth is the compiler's
    return alignment_from_json(data)
