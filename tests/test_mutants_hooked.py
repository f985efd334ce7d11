"""The hooked forward of interp/circuits/hooked.py on cases worked out by hand.

Written to kill the mutants `make mutation` left alive (docs/mutation.md): the
wiring of a stand-in model, `reverse`'s writers and slots in forward order, the
contributions adding up to the residual, a slot delta at the output moving the
logits through the unembedding, every slot corrupted being the corrupted run, and a
head's key input patched alone.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from examples.library import EXAMPLES
from interp.circuits import example_model, make_dataset
from interp.circuits.hooked import Wiring


@pytest.fixture(scope="module")
def reverse():
    model = example_model("reverse")
    return model, make_dataset(EXAMPLES["reverse"], model, 4, seed=0)


def test_wiring_by_hand():
    """Embeddings (sublayer −1), a head (0), an MLP (1); a q input (0), the MLP input (1),
    the output (2): a writer feeds a slot of a later sublayer only."""
    def site(name, sublayer):
        return SimpleNamespace(name=name, sublayer=sublayer)

    wiring = Wiring((site("embed", -1), site("head", 0), site("mlp", 1)),
                    (site("q", 0), site("mlp_in", 1), site("out", 2)))
    assert wiring.writer_index == {"embed": 0, "head": 1, "mlp": 2}
    assert wiring.slot_index == {"q": 0, "mlp_in": 1, "out": 2}
    assert wiring.upstream.tolist() == [[True, True, True], [False, True, True],
                                        [False, False, True]]
    mask = wiring.mask([{"writer": "head", "slots": ["mlp_in", "out"]},
                        {"writer": "embed", "slots": ["q"]}])
    assert mask.dtype == np.float32 and mask.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_reverse_writers_and_slots_in_forward_order(reverse):
    _, dataset = reverse
    wiring = dataset.hooked.wiring
    assert [w.name for w in wiring.writers] == [
        "hook_embed", "hook_pos_embed", "blocks.0.attn.hook_result[0]", "blocks.0.hook_mlp_out",
        "blocks.1.attn.hook_result[0]"]
    assert [s.name for s in wiring.slots] == [
        "blocks.0.hook_q_input[0]", "blocks.0.hook_k_input[0]", "blocks.0.hook_v_input[0]",
        "blocks.0.hook_mlp_in", "blocks.1.hook_q_input[0]", "blocks.1.hook_k_input[0]",
        "blocks.1.hook_v_input[0]", "blocks.1.hook_resid_post"]


def test_the_contributions_add_up_to_the_residual(reverse):
    """No LayerNorm and zero output biases: the last residual is the sum of what the
    embeddings, each head and each MLP wrote, position by position."""
    _, dataset = reverse
    run = dataset.clean_run
    contributions = np.asarray(run["contributions"])
    valid = dataset.arrays["valid"]
    assert contributions.shape[:3] == (5,) + valid.shape
    total, final = contributions.sum(axis=0), np.asarray(run["residuals"][-1])
    assert np.allclose(total[valid], final[valid], atol=1e-5 * np.abs(final).max())


def test_a_delta_at_the_output_moves_the_logits_through_the_unembedding(reverse):
    """slot_delta on the output slot, a unit on residual direction k at one position of
    one pair, adds the unembedding's row k to that position's logits and nothing else;
    deltas on the other slots are zero."""
    model, dataset = reverse
    hooked, arrays = dataset.hooked, dataset.arrays
    slots, (pairs, width) = len(hooked.wiring.slots), arrays["clean"].shape
    k = model.residual_labels.index("reverse:b")
    delta = np.zeros((slots, pairs, width, model.config.d_model), np.float32)
    delta[-1, 2, 1, k] = 1.0
    out = hooked.run(hooked.weights, arrays["clean"], arrays["valid"], slot_delta=delta)
    change = np.asarray(out["output"]) - np.asarray(dataset.clean_run["output"])
    expected = np.zeros_like(change)
    expected[2, 1] = np.asarray(model.params["unembed"]["w"])[k]
    assert np.allclose(change, expected, atol=1e-5)
    assert expected[2, 1].tolist() == [0.0, 1.0, 0.0]  # the column of the value b


def test_every_slot_corrupted_is_the_corrupted_run():
    """Moving every slot's copy of every writer to its corrupted value is running the
    corrupted inputs; shuffle_dyck2 has three heads in layer 0, each head's q/k/v going
    through its own columns."""
    model = example_model("shuffle_dyck2")
    dataset = make_dataset(EXAMPLES["shuffle_dyck2"], model, 4, seed=0)
    wiring = dataset.hooked.wiring
    alphas = np.ones((4, len(wiring.writers), len(wiring.slots)), np.float32)
    out = dataset.forward("clean", corrupt=dataset.corrupt_run["contributions"], alpha=alphas)
    valid = dataset.arrays["valid"]
    expected = np.asarray(dataset.corrupt_run["output"])
    clean = np.asarray(dataset.clean_run["output"])
    assert np.allclose(np.asarray(out["output"])[valid], expected[valid], atol=1e-4)
    assert not np.allclose(clean[valid], expected[valid], atol=1e-2)


def test_a_heads_key_input_alone_can_be_patched():
    """sort_unique's first head compares each query's token with the keys' tokens: keys
    from the corrupted inputs (queries, values and every other reader clean) change what
    it selects, so the output moves."""
    model = example_model("sort_unique")
    dataset = make_dataset(EXAMPLES["sort_unique"], model, 4, seed=0)
    wiring = dataset.hooked.wiring
    alphas = np.zeros((4, len(wiring.writers), len(wiring.slots)), np.float32)
    alphas[:, :, wiring.slot_index["blocks.0.hook_k_input[0]"]] = 1.0
    out = dataset.forward("clean", corrupt=dataset.corrupt_run["contributions"], alpha=alphas)
    valid = dataset.arrays["valid"]
    clean = np.asarray(dataset.clean_run["output"])
    assert not np.allclose(np.asarray(out["output"])[valid], clean[valid], atol=1e-2)
