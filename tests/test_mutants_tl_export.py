"""What each export format writes (interp.tl_export), file by file, worked out by hand.

Written to kill the mutants `make mutation` left alive (docs/mutation.md): the files
each format writes and records, the tokenizer table and the circuit's edges of
`reverse` written out from its program, the refusals, and the safetensors header.
TransformerLens loading the weights is tests/test_transformer_lens_export.py's.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys

import numpy as np
import pytest
import torch  # noqa: F401  the transformer-lens extra (make test installs it): imported
# here, at collection, not by the first InterpBench export

from compiler import CompiledModel, compile_rasp_to_model
from examples.library import EXAMPLES
from interp.tl_export import (_plain, circuit_edges, export_model, interpbench_edges,
                              tokenizer_table, write_ground_truth)
from rasp.errors import ModelFileError

# Every format writes these; the model's own pair comes last.
COMMON = {"model.safetensors", "config.json", "tokenizer.json", "ground_truth.json",
          "edges.json", "dataset.json"}
OURS = {"rasp_model.npz", "rasp_model.json"}
ONLY = {"safetensors": set(), "transformer-lens": {"legacy.safetensors", "legacy_config.json"},
        "interpbench": {"ll_model.pth", "ll_model_cfg.pkl", "edges.pkl"}}


@pytest.fixture(scope="module")
def reverse():
    example = EXAMPLES["reverse"]
    return compile_rasp_to_model(example.build(5), example.vocab, 5)


def _recorded(directory) -> dict:
    return json.loads((directory / "rasp_model.json").read_text())["export_files"]


@pytest.mark.parametrize("format", ["transformer-lens", "interpbench"])
def test_each_format_writes_and_records_its_files(reverse, tmp_path, format):
    written = export_model(reverse, tmp_path, format)
    assert sorted(p.name for p in written) == sorted(COMMON | ONLY[format] | OURS)
    assert all(p.parent == tmp_path for p in written)
    assert {p.name for p in tmp_path.iterdir()} == COMMON | ONLY[format] | OURS
    recorded = _recorded(tmp_path)
    others = set().union(*ONLY.values()) - ONLY[format]
    assert {n for n, sha in recorded.items() if sha is None} == others
    for name in COMMON | ONLY[format]:
        assert recorded[name] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_re_exporting_removes_the_other_formats_files(reverse, tmp_path):
    export_model(reverse, tmp_path, "interpbench")
    export_model(reverse, tmp_path, "transformer-lens")
    assert {p.name for p in tmp_path.iterdir()} == COMMON | ONLY["transformer-lens"] | OURS
    export_model(reverse, tmp_path, "safetensors")
    assert {p.name for p in tmp_path.iterdir()} == COMMON | OURS
    CompiledModel.load(tmp_path)


def test_a_model_without_its_program_exports_no_dataset(reverse, tmp_path):
    """A loaded .npz has no program, so no valid pairs: dataset.json is recorded absent,
    and a stale one from an earlier export is removed."""
    reverse.save(tmp_path / "m.npz")
    loaded = CompiledModel.load(tmp_path / "m.npz")
    assert loaded.program is None
    directory = tmp_path / "export"
    directory.mkdir()
    (directory / "dataset.json").write_text("{}")
    written = export_model(loaded, directory, "safetensors")
    assert "dataset.json" not in {p.name for p in written}
    assert not (directory / "dataset.json").exists()
    assert _recorded(directory)["dataset.json"] is None
    CompiledModel.load(directory)


def test_too_few_valid_inputs_export_no_dataset(reverse, tmp_path, monkeypatch):
    """The sampler's ValueError (too few valid inputs) means no dataset.json, not a failure."""
    import interp.circuits.dataset_file as dataset_file

    def too_few(model):
        raise ValueError("only 0 of 640 sampled inputs are valid")

    monkeypatch.setattr(dataset_file, "dataset_json", too_few)
    export_model(reverse, tmp_path)
    assert not (tmp_path / "dataset.json").exists()
    assert _recorded(tmp_path)["dataset.json"] is None


def test_bad_targets_are_refused_before_anything_is_written(reverse, tmp_path):
    with pytest.raises(ModelFileError) as refused:
        export_model(reverse, tmp_path / "x", "onnx")
    assert str(refused.value) == ("unknown export format 'onnx'; choose one of safetensors, "
                                  "transformer-lens, interpbench")
    for target in (tmp_path / "model.npz", tmp_path / "model.json"):
        with pytest.raises(ModelFileError, match="must be a directory for format 'safetensors'"):
            export_model(reverse, target)
    (tmp_path / "file").write_text("")
    with pytest.raises(ModelFileError, match=r"file must be a directory .*\.npz format takes"):
        export_model(reverse, tmp_path / "file", "interpbench")
    assert {p.name for p in tmp_path.iterdir()} == {"file"}


def test_the_tokenizer_table_of_reverse_and_count(reverse):
    """Ids: BOS 0, the vocabulary in order, PAD last; reverse's output columns are its
    value set a, b, c; count's output is one number."""
    assert tokenizer_table(reverse) == {
        "bos_id": 0, "pad_id": 4,
        "input": [{"id": 0, "token": "BOS"}, {"id": 1, "token": "a"}, {"id": 2, "token": "b"},
                  {"id": 3, "token": "c"}, {"id": 4, "token": "PAD"}],
        "output_numerical": False,
        "output": [{"column": 0, "value": "a"}, {"column": 1, "value": "b"},
                   {"column": 2, "value": "c"}],
        "decode": "categorical: the argmax column's value if its logit > 0.5, else None"}
    example = EXAMPLES["count"]
    count = compile_rasp_to_model(example.build(5), example.vocab, 5)
    table = tokenizer_table(count)
    assert (table["output_numerical"], table["output"]) == (True, [])
    assert table["decode"] == "numerical: logits[..., 0] is the value"


def test_reverse_circuit_edges_by_hand(reverse):
    """reverse: layer 0's head counts the tokens (every input: one, BOS, tokens) and its
    MLP turns the count into length; layer 1's head queries length - i - 1 (length from
    the MLP, indices from the positions), keys the positions, moves the tokens."""
    tokens = ["one", "bos", "tokens:a", "tokens:b", "tokens:c"]
    head0, head1 = "blocks.0.attn.hook_result[0]", "blocks.1.attn.hook_result[0]"
    mlp0, out = "blocks.0.hook_mlp_out", "blocks.1.hook_resid_post"
    edges = [  # (from, to, inputs, directions)
        ("hook_embed", head0, ["q", "k", "v"], tokens),
        ("hook_embed", mlp0, [], ["one"]),
        ("hook_embed", head1, ["q", "k", "v"], tokens),
        ("hook_pos_embed", head1, ["q", "k"], [f"indices:{i}" for i in range(5)]),
        (head0, mlp0, [], ["length.width"]),
        (mlp0, head1, ["q"], [f"length:{n}" for n in range(6)]),
        (head1, out, [], ["reverse:a", "reverse:b", "reverse:c"])]
    bridge = {"hook_embed": "embed.hook_out", "hook_pos_embed": "pos_embed.hook_out",
              head0: head0, head1: head1, mlp0: "blocks.0.mlp.hook_out",
              out: "blocks.1.hook_out"}
    got = sorted(circuit_edges(reverse.ground_truth), key=lambda e: (e["from"], e["to"]))
    assert got == sorted(({"from": u, "to": v, "from_bridge": bridge[u], "to_bridge": bridge[v],
                           "inputs": inputs, "directions": directions}
                          for u, v, inputs, directions in edges),
                         key=lambda e: (e["from"], e["to"]))


def test_plain_values_for_json():
    assert _plain(np.int64(3)) == 3 and type(_plain(np.int64(3))) is int
    assert _plain(np.float32(0.5)) == 0.5 and type(_plain(np.bool_(True))) is bool
    assert _plain((1, ("a", None))) == [1, ["a", None]]
    assert _plain([np.int8(2)]) == [2] and _plain(frozenset({7})) == [7]
    assert _plain(complex(1, 2)) == "(1+2j)"


def test_the_safetensors_header_and_file_mode(reverse, tmp_path):
    """One metadata entry, {"format": "pt"} (torch's loaders expect it); the file gets the
    usual permissions (safetensors alone writes 0600)."""
    export_model(reverse, tmp_path)
    raw = (tmp_path / "model.safetensors").read_bytes()
    size, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    assert header["__metadata__"] == {"format": "pt"}
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_files_are_indented_utf8_with_a_final_newline(tmp_path):
    example = EXAMPLES["reverse"]
    model = compile_rasp_to_model(example.build(3), ["é", "ß"], 3)
    export_model(model, tmp_path)
    text = (tmp_path / "tokenizer.json").read_text(encoding="utf-8")
    assert '"token": "é"' in text and text.endswith("}\n") and text.startswith('{\n "bos_id"')


def test_the_ground_truth_file_with_and_without_hf_modules(reverse, tmp_path):
    write_ground_truth(tmp_path / "plain.json", reverse.ground_truth)
    text = (tmp_path / "plain.json").read_text()
    assert text.startswith('{\n "') and text.endswith("}\n")  # indented as every JSON file
    plain = json.loads(text)
    assert plain == json.loads(reverse.ground_truth.to_json()) and "hf_modules" not in plain
    write_ground_truth(tmp_path / "hf.json", reverse.ground_truth, reverse.config)
    text = (tmp_path / "hf.json").read_text()
    assert text.startswith('{\n "') and text.endswith("}\n")
    hf = json.loads(text)
    assert hf.pop("hf_modules")["blocks.1.hook_resid_post"] == {"module": "transformer.h.1",
                                                                "read": "output"}
    assert hf == plain


def test_a_nested_new_directory_and_the_description(reverse, tmp_path):
    target = tmp_path / "zoo" / "reverse"  # neither exists yet
    export_model(reverse, target, "safetensors", description="reverse at N = 5")
    metadata = json.loads((target / "rasp_model.json").read_text())
    assert metadata["program"]["description"] == "reverse at N = 5"


def test_only_interpbench_needs_torch(reverse, tmp_path, monkeypatch):
    """Without torch, the safetensors and transformer-lens formats still export; InterpBench
    (ll_model.pth is a torch file) is refused in one line naming the extra, writing nothing."""
    from interp.extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed
    export_model(reverse, tmp_path / "tl", "transformer-lens")
    assert (tmp_path / "tl" / "legacy.safetensors").is_file()
    with pytest.raises(MissingExtraError) as refused:
        export_model(reverse, tmp_path / "ib", "interpbench")
    assert str(refused.value) == ("this needs torch, which is not installed: "
                                  "pip install 'rasp-compiler[transformer-lens]'")
    assert not (tmp_path / "ib").exists()


def test_reverse_interpbench_edges_by_hand(reverse):
    """InterpBench's edges of reverse (see test_reverse_circuit_edges_by_hand): both
    embeddings send from blocks.0.hook_resid_pre, so the position embedding's q and k
    edges into the flip head are the token embedding's; a head receives at the q/k/v
    inputs it reads with, an MLP at hook_mlp_in."""
    pre, result0, result1 = "blocks.0.hook_resid_pre", "blocks.0.attn.hook_result[0]", \
        "blocks.1.attn.hook_result[0]"
    expected = [(pre, f"blocks.{layer}.hook_{side}_input[0]") for layer in (0, 1)
                for side in "qkv"]
    expected += [(pre, "blocks.0.hook_mlp_in"), (result0, "blocks.0.hook_mlp_in"),
                 ("blocks.0.hook_mlp_out", "blocks.1.hook_q_input[0]"),
                 (result1, "blocks.1.hook_resid_post")]
    edges = interpbench_edges(reverse.ground_truth)
    assert len(edges) == len(set(edges)) and sorted(edges) == sorted(expected)
