"""The one forward's hook points: every named point can be read, replaced or added to.

Expected values come from the unhooked forward or from edited parameters, never from
the hooks themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

from interp.circuits import example_model
from rasp_runtime.forward import hook_names


@pytest.fixture(scope="module")
def model():
    return example_model("sort")  # attention and MLPs in several layers


def _run(model, hooks=None, params=None):
    ids = model.input_encoder.encode_batch([["BOS", 3, 1, 2], ["BOS", 2, 2, 1, 4, 3]],
                                           model.config.max_seq_len + 1)
    out = model.forward.apply(params or model.params, ids, ids != ids.max(), hooks)
    return {k: v for k, v in out.items()}


def test_reading_every_hook_changes_nothing_and_sees_tl_shapes(model):
    seen = {}
    hooks = {name: (lambda name: lambda x: seen.setdefault(name, x.shape) and x)(name)
             for name in hook_names(model.config)}
    plain, hooked = _run(model), _run(model, hooks)
    assert list(seen) == hook_names(model.config)  # called once each, in forward order
    np.testing.assert_array_equal(np.asarray(hooked["output"]), np.asarray(plain["output"]))
    layer = next(i for i, l in enumerate(model.config.layers) if l.num_heads)
    heads, d = model.config.layers[layer].num_heads, model.config.d_model
    seq = model.config.max_seq_len + 1
    assert seen[f"blocks.{layer}.attn.hook_result"] == (2, seq, heads, d)
    assert seen[f"blocks.{layer}.attn.hook_pattern"] == (2, heads, seq, seq)
    assert seen["unembed.hook_out"] == plain["output"].shape


def test_adding_at_resid_pre_equals_shifting_the_position_embedding(model):
    shift = np.linspace(-0.5, 0.5, model.config.d_model).astype(np.float32)
    params = {k: dict(v) for k, v in model.params.items()}
    params["pos_embed"]["embeddings"] = np.asarray(params["pos_embed"]["embeddings"]) + shift
    added = _run(model, {"blocks.0.hook_resid_pre": lambda x: x + shift})
    np.testing.assert_allclose(np.asarray(added["output"]),
                               np.asarray(_run(model, params=params)["output"]), atol=1e-5)


def test_replaced_head_results_and_inputs_flow_on(model):
    layer = next(i for i, l in enumerate(model.config.layers) if l.num_heads)
    plain = _run(model)
    zeroed = _run(model, {f"blocks.{layer}.attn.hook_result": lambda r: r * 0.0})
    attn_out = np.asarray(zeroed["layer_outputs"][2 * layer])
    bias = np.asarray(model.params[f"transformer/layer_{layer}/attn/linear"]["b"])
    np.testing.assert_allclose(attn_out, np.broadcast_to(bias, attn_out.shape), atol=1e-6)
    # A per-head input that is a new array equal to the old goes the per-head way: same output.
    same = _run(model, {f"blocks.{layer}.hook_q_input": lambda x: x + 0.0})
    np.testing.assert_allclose(np.asarray(same["output"]), np.asarray(plain["output"]),
                               atol=1e-4)
