"""LayerNorm models (layer_norm=True) in every export, read by the real consumers.

TransformerLens 4 loads the safetensors directory, the legacy transformer-lens files
and the InterpBench files with normalization_type="LN" and our eps; `compare` then
checks it against our forward hook by hook (teacher-forced, within 1e-5 of the largest
entry), including every ln1/ln2/ln_final hook_scale and hook_normalized.
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch  # the transformer-lens extra, which `make test` installs

from compiler import CompiledModel, compile_rasp_to_model
from examples.library import EXAMPLES
from interp.transformer_lens import bridge_from_legacy, bridge_from_state_dict
from tests.tl_checks import compare, ground_truth_hooks, sample_batch


@pytest.fixture(scope="module", params=["sort", "count"])
def case(request):
    example = EXAMPLES[request.param]
    model = compile_rasp_to_model(example.build(5), example.vocab, 5, causal=example.causal,
                                  layer_norm=True)
    return example, model, sample_batch(model, example, 5, count=40)


def test_safetensors_directory_loads_as_a_layer_norm_bridge(case, tmp_path):
    example, model, batch = case
    model.save(tmp_path, format="safetensors")
    loaded = CompiledModel.load(tmp_path)
    assert loaded.config == model.config and loaded.residual_labels[-2:] == \
        ["balance", "mean_probe"]
    assert loaded.apply_batch(batch) == model.apply_batch(batch)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["normalization_type"], config["eps"]) == ("LN", model.config.layer_norm_eps)
    from safetensors.torch import load_file
    bridge = bridge_from_state_dict(config, load_file(tmp_path / "model.safetensors"))
    compare(model, bridge, batch)
    hooks = set(bridge.hook_dict)
    assert {"ln_final.hook_scale", "blocks.0.ln1.hook_normalized"} <= hooks
    assert ground_truth_hooks(model) <= hooks


def test_legacy_and_interpbench_files_load_with_layer_norm(case, tmp_path):
    _, model, batch = case
    model.save(tmp_path / "tl", format="transformer-lens")
    from safetensors.torch import load_file
    legacy = load_file(tmp_path / "tl" / "legacy.safetensors")
    config = json.loads((tmp_path / "tl" / "legacy_config.json").read_text())
    assert (config["normalization_type"], config["eps"]) == ("LN", model.config.layer_norm_eps)
    assert "ln_final.w" in legacy and "blocks.0.ln1.b" in legacy
    compare(model, bridge_from_legacy(legacy, config), batch)

    model.save(tmp_path / "ib", format="interpbench")
    state_dict = torch.load(tmp_path / "ib" / "ll_model.pth", weights_only=True)
    with open(tmp_path / "ib" / "ll_model_cfg.pkl", "rb") as f:
        ib_config = pickle.load(f)
    assert ib_config == config
    compare(model, bridge_from_legacy(state_dict, ib_config), batch)
