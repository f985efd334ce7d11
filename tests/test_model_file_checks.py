"""Every saved file is verified: checksums, consistency checks, export directories.

A changed file is refused on load with one ModelFileError line naming it (and
`raspc: error:` on the command line), never a traceback from numpy, json or haiku,
and never a model that runs with wrong weights. `verify=False` / `--no-verify` skips
the checksum only: a model whose parts disagree is refused either way.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil

import numpy as np
import pytest

import rasp
from compiler import CompiledModel, compile_rasp_to_model
from examples.library import EXAMPLES
from rasp.errors import ModelFileError
from rasp_runtime.serialize import ModelFileError as ReExported
from raspc import cli
from tests.test_cli import assert_clean_error, raspc

CHANGED = "was changed after it was saved"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """`reverse` at N = 4, saved as a pair (m.npz, m.json) and as an export directory."""
    example = EXAMPLES["reverse"]
    model = compile_rasp_to_model(example.build(4), example.vocab, 4)
    folder = tmp_path_factory.mktemp("saved")
    model.save(folder / "m.npz")
    model.save(folder / "export", format="safetensors")
    return model, folder


@pytest.fixture
def copy(saved, tmp_path):
    """A fresh copy of the saved pair and export directory, free to edit."""
    _, folder = saved
    for name in ("m.npz", "m.json"):
        shutil.copy(folder / name, tmp_path / name)
    shutil.copytree(folder / "export", tmp_path / "export")
    return tmp_path


def refusal(path, verify: bool = True) -> str:
    """The one-line message of the ModelFileError loading `path` raises."""
    with pytest.raises(ModelFileError) as refused:
        CompiledModel.load(path, verify=verify)
    message = str(refused.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def edit_json(path, change) -> None:
    metadata = json.loads(path.read_text(encoding="utf-8"))
    change(metadata)
    path.write_text(json.dumps(metadata), encoding="utf-8")


def edit_npz(path, change) -> None:
    with np.load(path) as npz:
        arrays = dict(npz)
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# ------------------------------------------------------------------ the checksum

def test_model_file_error_lives_with_the_other_errors():
    assert ReExported is ModelFileError and issubclass(ModelFileError, rasp.RaspError)


def test_save_writes_the_documented_checksum_and_is_deterministic(saved, tmp_path):
    model, folder = saved
    model.save(tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == (folder / "m.npz").read_bytes()
    assert (tmp_path / "again.json").read_bytes() == (folder / "m.json").read_bytes()

    # Recomputed here from the definition in rasp_runtime/checksum.py's docstring.
    metadata = json.loads((folder / "m.json").read_text(encoding="utf-8"))
    checksum = metadata.pop("checksum")
    assert checksum["npz_sha256"] == hashlib.sha256((folder / "m.npz").read_bytes()).hexdigest()
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True, separators=(",", ":"))
                            .encode() + b"\n")
    with np.load(folder / "m.npz") as npz:
        for name in sorted(npz.files):
            array = npz[name]
            digest.update(f"{name}\t{array.dtype.str}\t{','.join(map(str, array.shape))}\t"
                          f"{array.nbytes}\n".encode() + array.tobytes())
    assert checksum["content_sha256"] == digest.hexdigest()


def test_reformatting_the_json_keeps_the_model(copy):
    """The checksum covers the metadata's content, not its layout."""
    metadata = json.loads((copy / "m.json").read_text(encoding="utf-8"))
    (copy / "m.json").write_text(json.dumps(metadata, indent=4, sort_keys=True))
    assert CompiledModel.load(copy / "m.npz").apply(["BOS", "a", "b"]).decoded == \
        ["BOS", "b", "a"]


def test_a_file_without_a_checksum_is_refused_unless_unverified(copy):
    edit_json(copy / "m.json", lambda m: m.pop("checksum"))
    message = refusal(copy / "m.npz")
    assert "no checksum" in message and "verify=False" in message and "--no-verify" in message
    assert CompiledModel.load(copy / "m.npz", verify=False).apply(["BOS", "a", "b"]).decoded \
        == ["BOS", "b", "a"]


def test_swapped_query_and_key_weights_are_refused(copy):
    """Same shapes, so only the checksum can tell; unverified, the model runs wrong."""
    def swap(arrays):
        q, k = "transformer/layer_1/attn/query::w", "transformer/layer_1/attn/key::w"
        arrays[q], arrays[k] = arrays[k], arrays[q]

    edit_npz(copy / "m.npz", swap)
    message = refusal(copy / "m.npz")
    assert f"{copy / 'm.npz'} {CHANGED}" in message and "--no-verify" in message
    assert CompiledModel.load(copy / "m.npz", verify=False).apply(
        ["BOS", "a", "b", "c"]).decoded != ["BOS", "c", "b", "a"]


# ------------------------------------------------------------------ consistency checks

def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(metadata):
        for key in keys[:-1]:
            metadata = metadata[key]
        metadata[keys[-1]] = value
    return change


def _extra_layer(metadata):
    metadata["config"]["layers"].append(dict(metadata["config"]["layers"][0]))


# (what is changed, the change, words the unverified refusal must hold)
JSON_PROBES = [
    ("last layer dropped", lambda m: m["config"]["layers"].pop(), "config.layers (1 layers)"),
    ("wrong d_model", _set("config", "d_model", 17), "d_model 17"),
    ("two heads", _set("config", "layers", 0, "num_heads", 2), "layer_0/attn/query/w"),
    ("an extra layer", _extra_layer, "config.layers (3 layers)"),
    ("max_seq_len 20", _set("config", "max_seq_len", 20), "pos_embed/embeddings"),
    ("max_seq_len -3", _set("config", "max_seq_len", -3), "max_seq_len must be a whole number"),
    ("max_seq_len 2.0", _set("config", "max_seq_len", 2.0), "max_seq_len must be a whole number"),
    ("fewer output values", lambda m: m["config"]["output_values"].pop(), "unembed/w"),
    ("a token more", lambda m: m["config"]["vocab"].append({"str": "d"}), "vocabulary"),
    ("dims out of range", _set("value_records", 0, "dims", [999]), "a dim must be"),
    ("repeated dims", _set("value_records", 0, "dims", [2, 2, 3, 4]), "repeats a residual dim"),
    ("a missing head", _set("components", 0, "head", 3), "head must be"),
    ("a missing layer", _set("components", 0, "layer", 5), "layer must be"),
    ("residual labels short", lambda m: m["residual_labels"].pop(), "residual_labels has 17"),
    ("an unknown site", _set("alignment", "reverse", 0, "component", "L7.H0"), "L7.H0"),
    ("a list for a dict", _set("config", "layers", [[1, 2]]), "malformed"),
]


@pytest.mark.parametrize("change, words", [p[1:] for p in JSON_PROBES],
                         ids=[p[0] for p in JSON_PROBES])
def test_inconsistent_metadata_is_refused_checked_or_not(copy, change, words):
    edit_json(copy / "m.json", change)
    assert f"{copy / 'm.json'} {CHANGED}" in refusal(copy / "m.npz")
    message = refusal(copy / "m.npz", verify=False)
    assert str(copy / "m.json") in message and words in message, message


def test_non_finite_weights_are_refused_checked_or_not(copy):
    edit_npz(copy / "m.npz", lambda arrays: arrays["unembed::w"].__setitem__((0, 0), np.nan))
    assert CHANGED in refusal(copy / "m.npz")
    assert "unembed/w holds NaN or infinite weights" in refusal(copy / "m.npz", verify=False)


@pytest.mark.parametrize("old, new, words", [
    ('"max_seq_len": 4', '"max_seq_len": 1e999', "max_seq_len must be a whole number"),
    ('"description": null', '"description": ' + "[" * 100_000 + "]" * 100_000,
     "not valid model JSON"),
    ('"max_seq_len": 4', '"max_seq_len": ' + "9" * 5000, "not valid model JSON"),
])
def test_json_that_breaks_the_parser_is_a_model_file_error(copy, old, new, words):
    text = (copy / "m.json").read_text(encoding="utf-8")
    assert old in text
    (copy / "m.json").write_text(text.replace(old, new), encoding="utf-8")
    assert words in refusal(copy / "m.npz", verify=False)
    refusal(copy / "m.npz")


# ------------------------------------------------------------------ export directories

def test_an_export_directory_is_one_model(copy, saved):
    model, _ = saved
    loaded = CompiledModel.load(copy / "export")
    assert loaded.apply(["BOS", "a", "b", "c"]).decoded == ["BOS", "c", "b", "a"]
    recorded = json.loads((copy / "export" / "rasp_model.json").read_text())["export_files"]
    assert {name for name, sha in recorded.items() if sha} == {
        "model.safetensors", "config.json", "tokenizer.json", "ground_truth.json", "edges.json",
        "dataset.json"}
    assert {name for name, sha in recorded.items() if sha is None} == {  # other formats'
        "legacy.safetensors", "legacy_config.json", "ll_model.pth", "ll_model_cfg.pkl",
        "edges.pkl"}
    (copy / "export" / "ll_model.pth").write_bytes(b"weights of some other model")
    assert "ll_model.pth is not part of the export" in refusal(copy / "export")
    (copy / "export" / "ll_model.pth").unlink()

    from safetensors.numpy import load_file, save_file
    weights = load_file(copy / "export" / "model.safetensors")
    q, k = "blocks.1.attn.q.weight", "blocks.1.attn.k.weight"
    weights[q], weights[k] = weights[k], weights[q]
    save_file(weights, copy / "export" / "model.safetensors", metadata={"format": "pt"})
    message = refusal(copy / "export")
    assert "model.safetensors does not hold the weights" in message
    CompiledModel.load(copy / "export", verify=False)  # the escape hatch

    (copy / "export" / "model.safetensors").unlink()
    assert "model.safetensors is missing" in refusal(copy / "export")


def test_re_exporting_in_another_format_leaves_one_model(saved, tmp_path):
    model, _ = saved
    model.save(tmp_path, format="transformer-lens")
    model.save(tmp_path, format="safetensors")
    assert not (tmp_path / "legacy.safetensors").exists()
    CompiledModel.load(tmp_path)


# ------------------------------------------------------------------ the command line

def test_raspc_refuses_a_changed_model_in_one_line(copy, capsys):
    edit_json(copy / "m.json", _set("value_records", 0, "dims", [999]))
    for command in (["run", copy / "m.npz", "a", "b", "--trace"],
                    ["report", copy / "m.npz", "-o", copy / "r.html"],
                    ["export", copy / "m.npz", "-o", copy / "out"]):
        for flag in ([], ["--no-verify"]):
            assert cli.main([str(a) for a in command + flag]) == 2
            err = capsys.readouterr().err
            assert err.startswith("raspc: error: ") and err.count("\n") == 1, err
            assert (CHANGED if not flag else "a dim must be") in err
    assert not (copy / "out").exists() and not (copy / "r.html").exists()

    (copy / "export" / "edges.json").write_text("[]")
    assert cli.main(["verify", str(copy / "export" / "rasp_model.npz")]) == 2
    assert "edges.json does not hold the weights" in capsys.readouterr().err


def test_python_m_raspc_run_refuses_nan_weights_even_unverified(copy):
    edit_npz(copy / "m.npz", lambda arrays: arrays["unembed::w"].__setitem__((0, 0), np.nan))
    assert_clean_error(raspc("run", copy / "m.npz", "a", "b", "c", "--no-verify"), 2,
                       "m.json is inconsistent", "NaN or infinite")


# ------------------------------------------------------------------ acceptance

FLIPS_PER_FILE = 40


@pytest.mark.parametrize("name", ["m.npz", "m.json", "export/model.safetensors"])
def test_flipping_any_single_byte_is_refused(copy, name):
    """All 8 bits of one byte flipped, at 40 seeded offsets spread over the file."""
    path = copy / name
    original = path.read_bytes()
    rng = random.Random(name)
    step = len(original) / FLIPS_PER_FILE
    offsets = [int(i * step) + rng.randrange(max(int(step), 1)) for i in range(FLIPS_PER_FILE)]
    target = copy / "export" if name.startswith("export") else copy / "m.npz"
    for offset in offsets:
        flipped = bytearray(original)
        flipped[offset] ^= 0xFF
        path.write_bytes(bytes(flipped))
        with pytest.raises(ModelFileError) as refused:
            CompiledModel.load(target)
        assert path.name in str(refused.value) and "\n" not in str(refused.value), offset
    path.write_bytes(original)
    CompiledModel.load(target)



def test_a_layer_whose_mlp_has_no_units_round_trips(tmp_path):
    """An MLP computing an SOp with no possible value has no hidden units; its layer
    gets no MLP in the config and none in the parameters (the file used to be refused)."""
    never = rasp.Map(lambda x: None, rasp.tokens)
    program = rasp.SequenceMap(lambda x, y: y, never, rasp.length)  # always None
    model = compile_rasp_to_model(program, ["a", "b"], 3)
    assert model.config.layers[1].mlp_hidden == 0
    assert not any(key.startswith("transformer/layer_1/mlp") for key in model.params)
    model.save(tmp_path)
    loaded = CompiledModel.load(tmp_path)
    assert loaded.config == model.config
    assert [(c.layer, c.kind) for c in loaded.components] == [(0, "attn"), (0, "mlp")]
    for xs in (["a"], ["b", "a"], ["a", "b", "b"]):
        expected = rasp.evaluate(program, xs)
        assert expected == [None] * len(xs)
        assert loaded.apply([loaded.config.bos, *xs]).decoded[1:] == expected
