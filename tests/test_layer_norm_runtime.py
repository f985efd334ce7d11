"""The forward's LayerNorm (config normalization="layernorm"): pre-LN before each
sublayer and the unembedding, its hook points, and saving and loading its config.

The expected LayerNorm is computed here in numpy from the residual the forward hands
to it (hook_resid_pre / hook_mlp_in / the last residual), never from the LN hooks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from interp.circuits import example_model
from rasp.errors import ModelFileError
from rasp_runtime.forward import hook_names
from rasp_runtime.model import CompiledModel
from rasp_runtime.serialize import load_model

EPS = 0.25


def with_layer_norm(model) -> CompiledModel:
    """`model` with LayerNorms of random gains and offsets inserted (not exact: a test
    of the forward, not of the compiler). hook_normalized is before gain and offset,
    so the test checks those through the output."""
    rng = np.random.default_rng(0)
    d = model.config.d_model
    params = {k: dict(v) for k, v in model.params.items()}

    def norm():
        return {"scale": rng.uniform(0.5, 2, d).astype(np.float32),
                "offset": rng.uniform(-1, 1, d).astype(np.float32)}
    for i, layer in enumerate(model.config.layers):
        if layer.num_heads:
            params[f"transformer/layer_{i}/ln_1"] = norm()
        if layer.mlp_hidden:
            params[f"transformer/layer_{i}/ln_2"] = norm()
    params["transformer/ln_final"] = norm()
    config = dataclasses.replace(model.config, normalization="layernorm", layer_norm_eps=EPS)
    return CompiledModel(params, config, model.residual_labels, model.components,
                         model.value_records.values())


@pytest.fixture(scope="module")
def ln_model():
    return with_layer_norm(example_model("sort"))


def _layer_norm(x, norm):
    centred = x - x.mean(-1, keepdims=True)
    scale = np.sqrt((centred ** 2).mean(-1, keepdims=True) + EPS)
    return scale, centred / scale


def test_each_layer_norm_normalises_what_its_sublayer_reads(ln_model):
    ids = ln_model.input_encoder.encode_batch([["BOS", 3, 1, 2]], ln_model.config.max_seq_len + 1)
    seen = {}
    hooks = {name: (lambda name: lambda x: seen.setdefault(name, np.asarray(x)) is None or x)(
        name) for name in hook_names(ln_model.config)}
    out = ln_model.forward.apply(ln_model.params, ids, ids != ids.max(), hooks)
    names = hook_names(ln_model.config)
    for i, layer in enumerate(ln_model.config.layers):
        for ln, source, present in (("ln1", "hook_resid_pre", layer.num_heads),
                                    ("ln2", "hook_mlp_in", layer.mlp_hidden)):
            point = f"blocks.{i}.{ln}"
            assert (f"{point}.hook_scale" in names) == bool(present)
            if present:
                norm = ln_model.params[f"transformer/layer_{i}/ln_{ln[-1]}"]
                scale, normalized = _layer_norm(seen[f"blocks.{i}.{source}"], norm)
                assert seen[f"{point}.hook_scale"].shape == scale.shape == (1, ids.shape[1], 1)
                np.testing.assert_allclose(seen[f"{point}.hook_scale"], scale, rtol=1e-5)
                np.testing.assert_allclose(seen[f"{point}.hook_normalized"], normalized,
                                           rtol=1e-4, atol=1e-4)
    norm = ln_model.params["transformer/ln_final"]
    final = _layer_norm(np.asarray(out["residuals"][-1]), norm)[1]
    np.testing.assert_allclose(seen["ln_final.hook_normalized"], final, rtol=1e-4, atol=1e-4)
    unembed = ln_model.params["unembed"]["w"]
    np.testing.assert_allclose(np.asarray(out["output"]),
                               (final * norm["scale"] + norm["offset"]) @ unembed,
                               rtol=1e-4, atol=1e-4)
    assert names.index("ln_final.hook_scale") == len(names) - 3


def test_plain_models_have_no_layer_norm_hooks():
    assert not [n for n in hook_names(example_model("sort").config) if ".ln" in n or "ln_" in n]


def test_saving_keeps_the_layer_norm_and_checks_its_parameters(ln_model, tmp_path):
    ln_model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.config == ln_model.config
    assert loaded.model_config.layer_norm
    params = {k: dict(v) for k, v in ln_model.params.items()}
    del params["transformer/ln_final"]
    broken = CompiledModel(params, ln_model.config, ln_model.residual_labels,
                           ln_model.components, ln_model.value_records.values())
    broken.save(tmp_path / "b.npz")
    with pytest.raises(ModelFileError, match="ln_final"):
        load_model(tmp_path / "b.npz")
