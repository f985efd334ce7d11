"""Saving and loading compiled models (rasp_runtime/serialize.py), in-process.

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
from examples.library import EXAMPLES
from rasp_runtime import serialize
from rasp_runtime.serialize import ModelFileError, decode_value, encode_value, model_paths

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
    with pytest.raises(ModelFileError, match="m.json was changed after it was saved"):
        CompiledModel.load(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="unembed/w"):  # unchecked, still inconsistent
        CompiledModel.load(tmp_path / "m.npz", verify=False)
    meta["version"] = serialize.VERSION + 1
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="version"):
        CompiledModel.load(tmp_path / "m.npz")


# ------------------------------------------------------------------ ground truth and source


@pytest.mark.parametrize("name", ["reverse", "sort", "shuffle_dyck1"])
def test_saved_model_keeps_its_full_ground_truth(name, tmp_path):
    model = compile_example(name)
    model.save(tmp_path / "m.npz")
    loaded = CompiledModel.load(tmp_path / "m.npz")
    assert loaded.program is None
    alignment = model.ground_truth.alignment
    roles = {site.role for sites in alignment.values() for site in sites}
    assert {"query", "key"} <= roles and (name != "reverse" or "fused" in roles)
    assert loaded.ground_truth.alignment == alignment
    assert loaded.ground_truth == model.ground_truth


def test_reverse_keeps_its_fused_sites(tmp_path):
    model = compile_example("reverse")
    model.save(tmp_path / "rev.npz")
    fused = {label for label, sites in CompiledModel.load(tmp_path / "rev.npz")
             .ground_truth.alignment.items() if any(s.role == "fused" for s in sites)}
    assert fused == {"opp_idx", "opp_idx-1"}  # computed inside the flip head, never written


def test_a_file_without_the_alignment_still_loads(tmp_path):
    model = compile_example("reverse")
    model.save(tmp_path / "rev.npz")
    meta = json.loads((tmp_path / "rev.json").read_text())
    del meta["alignment"]
    (tmp_path / "rev.json").write_text(json.dumps(meta))
    alignment = CompiledModel.load(tmp_path / "rev.npz", verify=False).ground_truth.alignment
    roles = {site.role for sites in alignment.values() for site in sites}
    assert roles == {"embed", "result", "mlp_out"}  # what the components alone say


def test_the_source_is_saved_and_loaded(tmp_path):
    model = compile_example("hist")
    assert model.source is None  # compiled from Python: nothing to record
    model.source = {"kind": "example", "name": "hist", "args": [8]}
    model.save(tmp_path / "hist.npz")
    assert json.loads((tmp_path / "hist.json").read_text())["program"]["source"] == model.source
    assert CompiledModel.load(tmp_path / "hist.npz").source == model.source


# ------------------------------------------------------------------ raspc verify model.npz

USER_PROGRAM = '''
import rasp

def make_doubled(max_seq_len):
    """Each token twice."""
    return rasp.Map(lambda x: x + x, rasp.tokens).named("doubled")
'''


def raspc(capsys, *args) -> tuple[int, str, str]:
    from raspc import cli

    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_verify_takes_a_saved_example_model(tmp_path, capsys):
    path = tmp_path / "reverse.npz"
    assert raspc(capsys, "compile", "reverse", "-o", path)[0] == 0
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["program"]["source"] == {"kind": "example", "name": "reverse", "args": [8]}
    status, out, err = raspc(capsys, "verify", path, "--inputs", "50")
    assert status == 0 and "error" not in err
    assert "✓ all" in out and "agree with the evaluator" in out


def test_verify_takes_a_saved_program_file_model_until_the_file_changes(tmp_path, capsys):
    program = tmp_path / "prog.py"
    program.write_text(USER_PROGRAM)
    path = tmp_path / "doubled.npz"
    assert raspc(capsys, "compile", f"{program}:make_doubled", "-o", path)[0] == 0
    source = json.loads(path.with_suffix(".json").read_text())["program"]["source"]
    assert source == {"kind": "file", "file": str(program.resolve()),
                      "function": "make_doubled", "args": [8]}
    status, out, _ = raspc(capsys, "verify", path, "--inputs", "30", "--trust-program-source")
    assert status == 0 and "✓ all 30 inputs agree" in out

    program.write_text(USER_PROGRAM.replace("rasp.Map(lambda x: x + x, rasp.tokens)",
                                            "rasp.SelectorWidth(rasp.Select(rasp.tokens, "
                                            "rasp.tokens, rasp.EQ))"))
    status, _, err = raspc(capsys, "verify", path, "--trust-program-source")
    assert status == 2 and "no longer matches" in err and err.count("\n") == 1
    program.unlink()
    status, _, err = raspc(capsys, "verify", path, "--trust-program-source")
    assert status == 2 and "cannot be re-imported: no such program file" in err


def test_verify_says_why_a_model_saved_from_python_cannot_be_verified(tmp_path, capsys):
    compile_example("hist").save(tmp_path / "hist.npz")
    status, _, err = raspc(capsys, "verify", tmp_path / "hist.npz")
    assert status == 2 and err.count("\n") == 1
    assert "does not record where its program came from" in err
    status, _, err = raspc(capsys, "verify", tmp_path / "hist.npz", "--vocab", "a,b")
    assert status == 2 and "not to a saved model" in err
