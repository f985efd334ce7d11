"""Checksums of saved models: written by `save_model`, checked by `load_model`.

A model file pair records, under the JSON's "checksum" key:

- "npz_sha256": the sha256 of the .npz file's bytes, so any changed byte of it is found;
- "content_sha256": the sha256 of the model itself, independent of file formatting:
  1. the canonical metadata: the JSON's data without its "checksum" key, written by
     `json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`,
     UTF-8 encoded (pure ASCII), then one b"\\n";
  2. then each parameter, in order of its .npz entry name ("module::name", sorted by
     code point): the line f"{name}\\t{dtype.str}\\t{shape joined by ','}\\t{nbytes}\\n"
     (e.g. "unembed::w\\t<f4\\t18,3\\t216\\n"), UTF-8, then its bytes in C order.

An export directory (see interp.tl_export) also records the sha256 of every other file
it holds, under "export_files" (null: a file that must not be there, another format's),
so its safetensors and torch files are one model with the .npz. Every digest is a pure
function of the bytes, so saving stays deterministic (byte-identical files).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from rasp.errors import ModelFileError

ALGORITHM = "sha256"
UNVERIFIED_HINT = "or load it unchecked with verify=False (raspc: --no-verify)"


def file_digest(data: bytes) -> str:
    """The sha256 of a file's bytes, as hex."""
    return hashlib.sha256(data).hexdigest()


def content_digest(metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """The sha256 of the canonical metadata and the parameters (see the module docstring).

    `metadata` must be as JSON gives it back (lists, str keys): the saver round-trips it."""
    digest = hashlib.sha256()
    canonical = {key: value for key, value in metadata.items() if key != "checksum"}
    digest.update(json.dumps(canonical, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=True).encode("utf-8") + b"\n")
    for name in sorted(arrays):
        array = np.asarray(arrays[name])
        shape = ",".join(map(str, array.shape))
        digest.update(f"{name}\t{array.dtype.str}\t{shape}\t{array.nbytes}\n".encode("utf-8"))
        digest.update(array.tobytes(order="C"))
    return digest.hexdigest()


def checksum_entry(metadata: dict[str, Any], arrays: dict[str, np.ndarray],
                   npz_bytes: bytes) -> dict[str, str]:
    """The "checksum" value to store in `metadata` (JSON round-tripped, without it)."""
    return {"algorithm": ALGORITHM, "npz_sha256": file_digest(npz_bytes),
            "content_sha256": content_digest(metadata, arrays)}


def check_checksum(metadata: dict[str, Any], arrays: dict[str, np.ndarray], npz_bytes: bytes,
                   npz_path: Path, json_path: Path) -> None:
    """Raise ModelFileError unless the files are byte for byte what was saved."""
    entry = metadata.get("checksum")
    if not isinstance(entry, dict) or entry.get("algorithm") != ALGORITHM:
        raise ModelFileError(f"{json_path} has no checksum (saved by an older rasp-compiler, "
                             f"or edited): recompile the model, {UNVERIFIED_HINT} and save "
                             "it again to add one")
    if entry.get("npz_sha256") != file_digest(npz_bytes):
        raise ModelFileError(f"{npz_path} was changed after it was saved (its sha256 differs "
                             f"from the one in {json_path.name}): recompile or re-save the "
                             f"model, {UNVERIFIED_HINT}")
    if entry.get("content_sha256") != content_digest(metadata, arrays):
        raise ModelFileError(f"{json_path} was changed after it was saved (its checksum "
                             f"does not match): recompile or re-save the model, "
                             f"{UNVERIFIED_HINT}")


def export_manifest(files: list[Path]) -> dict[str, str]:
    """File name -> sha256 of each file of an export directory (by name, sorted)."""
    return {path.name: file_digest(path.read_bytes())
            for path in sorted(files, key=lambda p: p.name)}


def check_export_files(metadata: dict[str, Any], json_path: Path) -> None:
    """Raise ModelFileError unless every file the export recorded is there, unchanged,
    and no file it recorded as absent (null) is."""
    manifest = metadata.get("export_files")
    if manifest is None:  # a plain .npz/.json pair
        return
    directory = json_path.parent
    if not isinstance(manifest, dict):
        raise ModelFileError(f"{json_path}: malformed export_files (not a mapping)")
    for name, expected in manifest.items():
        path = directory / str(name)
        if Path(str(name)).name != name:  # only files beside the model, nothing elsewhere
            raise ModelFileError(f"{json_path}: export_files names {name!r}, not a file name")
        if expected is None:
            if path.exists():
                raise ModelFileError(f"{path} is not part of the export in {directory} (it "
                                     f"belongs to another format or export): remove it or "
                                     f"export the model again, {UNVERIFIED_HINT}")
            continue
        try:
            actual = file_digest(path.read_bytes())
        except OSError as error:
            raise ModelFileError(f"{path} is missing or unreadable ({error.strerror}), but the "
                                 f"export in {directory} needs it: export the model again, "
                                 f"{UNVERIFIED_HINT}") from None
        if actual != expected:
            raise ModelFileError(f"{path} does not hold the weights of the model saved beside "
                                 f"it (it was changed after the export): export the model "
                                 f"again, {UNVERIFIED_HINT}")
