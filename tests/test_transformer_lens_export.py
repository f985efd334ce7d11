"""Export directories, hook names, the standalone loader, InterpBench files and Tracr's converter.

Each consumer is the real one: TransformerLens 4 loads what we write, a
subprocess without rasp-compiler on its path runs the README's loader, and
TransformerLens's own Tracr converter reads `tracr_view(model)`.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch  # the transformer-lens extra, which `make test` installs

import rasp
from compiler import CompiledModel, compile_rasp_to_model
from compiler.hook_names import bridge_hook, split_index
from examples.library import EXAMPLES
from interp.transformer_lens import (add_result_hooks, bridge_from_legacy, bridge_from_state_dict,
                                     to_tokens, to_transformer_lens)
from rasp_runtime.interventions import ablated_params, run_batch
from raspc import cli
from tests.tl_checks import compare, ground_truth_hooks, sample_batch

ROOT = Path(__file__).resolve().parents[1]
SITE_PACKAGES = Path(torch.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reverse():
    example = EXAMPLES["reverse"]
    return example, compile_rasp_to_model(example.build(5), example.vocab, 5)


def test_importing_our_packages_does_not_import_torch():
    code = ("import sys, compiler, rasp, raspc, raspc.cli, interp, interp.tl_weights, "
            "compiler.hook_names, interp.hf_export, interp.zoo, interp.zoo.bench\n"
            "heavy = {'torch', 'transformer_lens', 'matplotlib', 'transformers', 'nnsight', 'ray'}"
            " & set(sys.modules)\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_bridge_hook_names_are_the_same_hook_points(reverse):
    _, model = reverse
    bridge = to_transformer_lens(model)
    hooks = bridge.hook_dict
    pairs = {(c.hook, c.tl_bridge_hook) for c in model.ground_truth.components}
    for c in model.ground_truth.components:
        pairs |= {(c.hooks[n], c.bridge_hooks[n]) for n in c.hooks}
    pairs |= {(e.hook, bridge_hook(e.hook)) for e in model.ground_truth.embeddings}
    assert ("blocks.0.attn.hook_z", "blocks.0.attn.o.hook_in") in pairs
    for legacy, native in pairs:
        assert hooks[legacy] is hooks[native], (legacy, native)
    assert bridge_hook("blocks.1.attn.hook_z[2]") == "blocks.1.attn.o.hook_in[2]"
    assert split_index("blocks.1.attn.hook_result[2]") == ("blocks.1.attn.hook_result", 2)
    assert bridge_hook("output") == "output"


def test_compatibility_mode_keeps_the_function_and_the_hooks(reverse):
    """Without weight processing, compatibility mode changes names only, not numbers."""
    example, model = reverse
    bridge = to_transformer_lens(model)
    bridge.enable_compatibility_mode(no_processing=True, disable_warnings=True)
    assert ground_truth_hooks(model) <= set(bridge.hook_dict)
    compare(model, bridge, sample_batch(model, example, 5, count=50))


def test_patching_hook_result_is_ablating_the_head(reverse):
    """Zeroing a head at hook_result gives what our model gives with that head ablated."""
    example, model = reverse
    bridge = to_transformer_lens(model)
    batch = sample_batch(model, example, 5, count=50)
    ids, mask = to_tokens(model, batch)

    def zero_head(result, hook):
        result[:, :, 0] = 0.0
        return result

    with torch.no_grad():
        logits = bridge.run_with_hooks(ids, attention_mask=mask,
                                       fwd_hooks=[("blocks.1.attn.hook_result", zero_head)])
    ablated = run_batch(model, batch, ablated_params(model, ["L1.H0"]))["output"]
    real = np.arange(ids.shape[1])[None, :] < np.array([len(t) for t in batch])[:, None]
    got, ours = logits.numpy(), ablated[:, :ids.shape[1]]
    assert np.abs(got - ours)[real].max() <= 1e-5 * max(np.abs(ours[real]).max(), 1.0)
    assert not np.allclose(got, bridge(ids, attention_mask=mask).detach().numpy())


def test_safetensors_directory_round_trip(reverse, tmp_path):
    _, model = reverse
    written = model.save(tmp_path, "reverse", format="safetensors")
    names = {p.name for p in written}
    assert {"model.safetensors", "config.json", "tokenizer.json", "ground_truth.json",
            "edges.json"} <= names
    loaded = CompiledModel.load(tmp_path)
    for module, weights in model.params.items():
        for name, array in weights.items():
            assert np.array_equal(loaded.params[module][name], array)
    tokens = ["BOS", "a", "c", "b", "b"]
    assert loaded.apply(tokens).decoded == model.apply(tokens).decoded

    truth = model.ground_truth
    assert json.loads((tmp_path / "ground_truth.json").read_text()) == json.loads(truth.to_json())
    tokenizer = json.loads((tmp_path / "tokenizer.json").read_text())
    assert {e["token"]: e["id"] for e in tokenizer["input"]} == model.input_encoder.encoding_map
    assert [e["value"] for e in tokenizer["output"]] == list(model.output_encoder.values)
    edges = json.loads((tmp_path / "edges.json").read_text())
    graph = truth.circuit_graph("hook")
    assert len(edges) == graph.number_of_edges()
    last = f"blocks.{truth.n_layers - 1}.hook_resid_post"
    assert {(e["from"], e["to"]) for e in edges} == \
        {tuple(last if x == "output" else x for x in edge) for edge in graph.edges}

    config = json.loads((tmp_path / "config.json").read_text())
    from safetensors.torch import load_file
    bridge = bridge_from_state_dict(config, load_file(tmp_path / "model.safetensors"))
    compare(model, bridge, [tokens, ["BOS", "b"]])


def test_transformer_lens_and_interpbench_formats_load_in_tl4(tmp_path):
    example = EXAMPLES["count"]
    model = compile_rasp_to_model(example.build(5), example.vocab, 5)
    batch = sample_batch(model, example, 5, count=50)
    model.save(tmp_path / "tl", format="transformer-lens")
    from safetensors.torch import load_file
    legacy = load_file(tmp_path / "tl" / "legacy.safetensors")
    config = json.loads((tmp_path / "tl" / "legacy_config.json").read_text())
    assert legacy["blocks.0.attn.W_Q"].shape == (config["n_heads"], config["d_model"],
                                                 config["d_head"])
    compare(model, bridge_from_legacy(legacy, config), batch)

    model.save(tmp_path / "ib", format="interpbench")
    state_dict = torch.load(tmp_path / "ib" / "ll_model.pth", weights_only=True)
    with open(tmp_path / "ib" / "ll_model_cfg.pkl", "rb") as f:
        ib_config = pickle.load(f)
    assert isinstance(ib_config, dict) and ib_config == config
    compare(model, bridge_from_legacy(state_dict, ib_config), batch)
    with open(tmp_path / "ib" / "edges.pkl", "rb") as f:
        edges = pickle.load(f)
    assert edges and all(isinstance(u, str) and isinstance(v, str) for u, v in edges)
    hook = re.compile(r"^(blocks\.\d+\.(hook_[qkv]_input\[\d+\]|attn\.hook_result\[\d+\]|"
                      r"hook_mlp_(in|out)|hook_resid_(pre|post)))$")
    assert all(hook.match(u) and hook.match(v) for u, v in edges), edges
    # edge for edge the true circuit at ACDC's hook granularity, both embeddings
    # entering as blocks.0.hook_resid_pre
    graph = model.ground_truth.circuit_graph("acdc_hooks")
    embeddings = {"hook_embed", "hook_pos_embed"}
    expected = {("blocks.0.hook_resid_pre" if u in embeddings else u, v)
                for u, v, attrs in graph.edges(data=True) if not attrs["internal"]}
    assert len(expected) > 3 and len(edges) == len(set(edges)) and set(edges) == expected


def _readme_loader() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    loader, = [b for b in blocks if "no rasp-compiler" in b]
    return loader


def test_raspc_export_then_the_readme_loader_without_rasp_compiler(tmp_path, capsys):
    directory = tmp_path / "reverse_tl"
    loader = _readme_loader().strip().splitlines()  # its last line is the decoded values
    assert cli.main(["export", "reverse", "--max-seq-len", "5", "--format", "safetensors",
                     "-o", str(directory)]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    # -I -S: no PYTHONPATH, no cwd, no site hooks (so no editable install of ours);
    # only the site-packages directory, for torch, safetensors and transformer_lens.
    code = "\n".join([
        "import sys",
        f"sys.path.append({str(SITE_PACKAGES)!r})",
        "for name in ('compiler', 'rasp', 'interp', 'raspc', 'craft'):",
        "    try:",
        "        __import__(name)",
        "    except ImportError:",
        "        continue",
        "    raise SystemExit(f'{name} is importable')",
        f"directory = {str(directory)!r}",
        *loader[:-1],
        "print(repr(" + loader[-1].split("  #")[0].strip() + "))",
    ])
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = rasp.evaluate(EXAMPLES["reverse"].build(5), ["a", "b", "c"])
    assert result.stdout.strip().splitlines()[-1] == repr(expected)


def test_raspc_export_reports_mistakes_in_one_line(tmp_path, capsys):
    target = tmp_path / "file.npz"
    target.write_text("")
    assert cli.main(["export", "reverse", "-o", str(target)]) != 0
    err = capsys.readouterr().err
    assert err.startswith("raspc: error: ") and "directory" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.main(["export", "reverse", "--format", "onnx", "-o", str(tmp_path / "x")])
    from interp.tl_export import FORMATS
    from raspc.export import FORMATS as CLI_FORMATS
    assert CLI_FORMATS == (*FORMATS, "hf")  # hf: interp.hf_export
    model_path = tmp_path / "saved" / "reverse.npz"
    assert cli.main(["compile", "reverse", "-o", str(model_path)]) == 0
    assert cli.main(["export", str(model_path), "--format", "interpbench",
                     "-o", str(tmp_path / "ib")]) == 0
    assert (tmp_path / "ib" / "ll_model.pth").is_file()


def test_a_missing_extra_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # as if not installed
    assert cli.main(["export", "reverse", "-o", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'rasp-compiler[transformer-lens]'" in err
    assert not (tmp_path / "out").exists()


def test_tracr_converter_of_transformer_lens_reads_our_model(reverse):
    """TransformerLens's Tracr converter on `tracr_view(model)` builds the same function.

    TransformerLens 4.3.0's converter names the MLP and unembedding weights so that
    a strict load reports their bridge aliases as missing; they do load (the
    hook-by-hook comparison below proves it), so the load is not strict.
    """
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities import tracr as tl_tracr

    from interp.tl_tracr import tracr_view

    for name in ("reverse", "sort", "shuffle_dyck2"):
        example = EXAMPLES[name]
        model = compile_rasp_to_model(example.build(5), example.vocab, 5)
        view = tracr_view(model)
        state_dict = tl_tracr.make_tracr_transformer_bridge_state_dict(
            view, model.config.output_label)
        bridge = TransformerBridge.boot_native(tl_tracr.make_tracr_transformer_bridge_config(view))
        assert not bridge.load_state_dict(state_dict, strict=False).unexpected_keys
        compare(model, add_result_hooks(bridge), sample_batch(model, example, 5, count=50))
    numerical = compile_rasp_to_model(EXAMPLES["count"].build(5), EXAMPLES["count"].vocab, 5)
    with pytest.raises(NotImplementedError, match="categorical"):
        tl_tracr.make_tracr_transformer_bridge_state_dict(tracr_view(numerical))


def test_exports_are_deterministic(reverse, tmp_path):
    _, model = reverse
    model.save(tmp_path / "a", format="interpbench")
    model.save(tmp_path / "b", format="interpbench")
    for name in ("model.safetensors", "config.json", "tokenizer.json", "edges.json",
                 "edges.pkl", "ll_model_cfg.pkl", "ground_truth.json", "ll_model.pth",
                 "rasp_model.npz", "rasp_model.json"):  # its checksums are deterministic too
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
