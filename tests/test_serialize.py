"""Saving and loading compiled models (compiler/serialize.py), in-process.

A loaded model must be the same model: identical parameter bytes, config,
residual labels, components and value records, and identical outputs and
residuals, without recompiling.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

import rasp
from compiler import CompiledModel, compile_rasp_to_model
from compiler import serialize
from compiler.serialize import ModelFileError, decode_value, encode_value, model_paths
from examples.library import EXAMPLES

# Int vocab with float values; tuples; bools with None; numerical output, compiled causal.
ROUND_TRIP = ["sort", "nary_sequencemap", "detect_pattern", "count"]


def compile_example(name: str, causal: bool = False) -> CompiledModel:
    example = EXAMPLES[name]
    return compile_rasp_to_model(example.build(example.max_seq_len), example.vocab,
                                 example.max_seq_len, causal=causal or example.causal)


def same_type_and_value(a, b) -> bool:
    """Equal with identical types all the way down (so 1, 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(map(same_type_and_value, a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@pytest.mark.parametrize("value", [
    None, True, False, 0, 1, -7, 2**70, 1.0, 0.1, -0.0, float("inf"), float("nan"), 1 / 3,
    "", "a", "BOS", "1", "True", (), (1, "1", 1.0, True, None), (("a", 0), (False,)),
    np.int64(3), np.float32(0.5), np.bool_(True), frozenset({1, 2}),
])
def test_tagged_values_round_trip_with_their_types(value):
    decoded = decode_value(json.loads(json.dumps(encode_value(value))))
    if isinstance(value, np.generic):
        assert type(decoded) is type(value) and decoded == value
    else:
        assert same_type_and_value(decoded, value)


def test_unsupported_and_malformed_values_are_refused():
    with pytest.raises(ModelFileError, match="cannot save value"):
        encode_value([1, 2])
    with pytest.raises(ModelFileError, match="unknown value tag"):
        decode_value({"complex": "1j"})


def test_model_paths():
    assert model_paths("d/m.npz") == model_paths("d/m.json") == model_paths("d/m")
    npz, meta = model_paths("d/m.v2")
    assert (npz.name, meta.name) == ("m.v2.npz", "m.v2.json")


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_save_load_gives_the_same_model(name, tmp_path):
    model = compile_example(name, causal=name == "count")
    npz, meta = model.save(tmp_path / "model.npz", description=f"{name} test")
    assert npz.exists() and meta.exists()
    loaded = CompiledModel.load(tmp_path / "model.npz")

    assert loaded.config == model.config
    assert all(same_type_and_value(a, b) for a, b in zip(loaded.config.vocab, model.config.vocab))
    assert all(same_type_and_value(a, b)
               for a, b in zip(loaded.config.output_values, model.config.output_values))
    assert loaded.residual_labels == model.residual_labels
    assert loaded.components == model.components
    assert loaded.value_records == model.value_records
    assert loaded.params.keys() == model.params.keys()
    for module, weights in model.params.items():
        assert loaded.params[module].keys() == weights.keys()
        for key, array in weights.items():
            got = loaded.params[module][key]
            assert got.dtype == array.dtype and got.shape == array.shape
            assert got.tobytes() == array.tobytes()

    rng = random.Random(1)  # apply() only: one jit trace per model keeps this fast
    for _ in range(100):
        tokens = ["BOS", *EXAMPLES[name].sample(rng)]
        expected, got = model.apply(tokens), loaded.apply(tokens)
        assert repr(got.decoded) == repr(expected.decoded)  # repr: 1 vs 1.0 vs True differ
        for a, b in zip(expected.residuals, got.residuals):
            np.testing.assert_array_equal(a, b)


def test_metadata_is_readable_json(tmp_path):
    model = compile_example("reverse")
    model.save(tmp_path / "rev", description="the input reversed")
    meta = json.loads((tmp_path / "rev.json").read_text())
    for key in ("config", "encoders", "residual_labels", "program", "components",
                "value_records"):
        assert key in meta
    assert meta["program"]["description"] == "the input reversed"
    assert [e["label"] for e in meta["program"]["expressions"]][-1] == "reverse"
    assert meta["config"]["vocab"] == [{"str": "a"}, {"str": "b"}, {"str": "c"}]
    assert [c["info"]["op"] for c in meta["components"]] == [c.info.op for c in model.components]
    assert {"selector_width", "aggregate"} <= {c["info"]["op"] for c in meta["components"]}


def test_load_does_not_recompile(tmp_path, monkeypatch):
    import compiler.compiling

    model = compile_example("hist")
    model.save(tmp_path / "hist.npz")

    def refuse(*args, **kwargs):
        raise AssertionError("load recompiled the program")

    for stage in ("lower_program", "extract_graph", "build_blocks", "assemble_params"):
        monkeypatch.setattr(compiler.compiling, stage, refuse)
    loaded = CompiledModel.load(tmp_path / "hist.json")  # either file names the model
    assert loaded.program is None
    assert loaded.apply(["BOS", "a", "b", "a"]).decoded == ["BOS", 2, 1, 2]


def test_user_program_with_int_vocab_round_trips(tmp_path):
    program = rasp.numerical(rasp.Map(lambda x: x / 2, rasp.tokens)).named("half")
    model = compile_rasp_to_model(program, [1, 2, 3], 4)
    model.save(tmp_path / "half.npz")
    loaded = CompiledModel.load(tmp_path / "half.npz")
    assert loaded.config.vocab == (1, 2, 3)
    assert all(type(t) is int for t in loaded.config.vocab)
    assert loaded.apply(["BOS", 1, 3]).decoded == model.apply(["BOS", 1, 3]).decoded


def test_bad_files_give_model_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="no saved model"):
        CompiledModel.load(tmp_path / "missing.npz")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "other.npz").write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a saved rasp-compiler model"):
        CompiledModel.load(tmp_path / "other.npz")

    model = compile_example("length")
    model.save(tmp_path / "m.npz")
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["params"]["unembed"]["w"]["shape"] = [1, 1]
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="unembed/w"):
        CompiledModel.load(tmp_path / "m.npz")
    meta["version"] = serialize.VERSION + 1
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="version"):
        CompiledModel.load(tmp_path / "m.npz")
