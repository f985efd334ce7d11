"""The TransformerLens 4 bridge of a compiled model computes what the model computes, hook by hook.

The fast suite covers a representative subset (categorical, numerical, causal,
attention-only, a layer with no heads, several heads per layer) at N = 5 and the
example's default N, natively and through the legacy HookedTransformer layout;
`make test-slow` runs every library example.
"""

from __future__ import annotations

import random

import pytest

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from rasp.errors import InputError
# These need the transformer-lens extra, which `make test` installs.
from interp.transformer_lens import (bridge_from_legacy, to_tokens, to_transformer_lens,
                                     transformer_lens_state_dict)
from tests.tl_checks import compare, ground_truth_hooks, sample_batch

# (example, causal): categorical 2-layer with a no-MLP layer; numerical with an MLP;
# a layer with no heads; causal, numerical and attention-only; 3 heads beside a 0-head layer.
FAST = [("reverse", False), ("count", False), ("sort", False), ("frac_prevs", True),
        ("shuffle_dyck2", False)]


def _model(name: str, n: int, causal: bool):
    example = EXAMPLES[name]
    return example, compile_rasp_to_model(example.build(n), example.vocab, n,
                                          causal or example.causal)


def _check(name: str, n: int, causal: bool = False):
    example, model = _model(name, n, causal)
    bridge = to_transformer_lens(model)
    cache = compare(model, bridge, sample_batch(model, example, n))
    hooks = ground_truth_hooks(model)
    assert hooks <= set(bridge.hook_dict), hooks - set(bridge.hook_dict)
    fired = {h for h in hooks if h in cache or h.replace("hook_resid_post", "hook_out") in cache}
    assert fired == hooks, f"ground-truth hooks that never fire: {hooks - fired}"


@pytest.mark.parametrize("name,causal", FAST)
@pytest.mark.parametrize("default_n", [False, True], ids=["N5", "default-N"])
def test_bridge_matches_model(name, causal, default_n):
    _check(name, EXAMPLES[name].max_seq_len if default_n else 5, causal)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("default_n", [False, True], ids=["N5", "default-N"])
def test_every_example_matches(name, default_n):
    _check(name, EXAMPLES[name].max_seq_len if default_n else 5)


@pytest.mark.parametrize("name,causal", [("count", False), ("frac_prevs", True),
                                         ("previous_token", True)])
def test_legacy_layout_through_tl4_conversion(name, causal):
    """legacy=True -> TransformerLens 4's convert_tl_checkpoint -> bridge: the same function."""
    n = EXAMPLES[name].max_seq_len
    example, model = _model(name, n, causal)
    state_dict, config = transformer_lens_state_dict(model, legacy=True)
    assert state_dict["blocks.0.attn.W_Q"].shape == (config["n_heads"], config["d_model"],
                                                    config["d_head"])
    bridge = bridge_from_legacy(state_dict, config)
    compare(model, bridge, sample_batch(model, example, n))


def test_inputs_of_one_length_need_no_mask():
    """The bridge sees exactly the tokens: no PAD, no attention mask."""
    example, model = _model("reverse", 6, False)
    rng = random.Random(0)
    batch = [[model.config.bos, *(rng.choice(example.vocab) for _ in range(6))] for _ in range(20)]
    ids, mask = to_tokens(model, batch)
    assert mask is None and ids.shape == (20, 7)
    compare(model, to_transformer_lens(model), batch)


def test_to_tokens_pads_masks_and_refuses_bad_inputs():
    """Mixed lengths: the model's own ids, PAD on the right, mask 1 exactly on real tokens;
    a token outside the vocabulary or a missing BOS is one InputError."""
    example, model = _model("reverse", 6, False)
    bos, pad = model.config.bos, model.config.pad
    a, b = example.vocab[0], example.vocab[1]
    ids, mask = to_tokens(model, [[bos, a, b, a], [bos, b]])
    encoding = model.input_encoder.encoding_map
    assert ids.tolist() == [[encoding[t] for t in (bos, a, b, a)],
                            [encoding[bos], encoding[b], encoding[pad], encoding[pad]]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    with pytest.raises(InputError, match="not in the vocabulary"):
        to_tokens(model, [[bos, a], [bos, "not-a-token"]])
    with pytest.raises(InputError, match="BOS"):
        to_tokens(model, [[a, b]])
