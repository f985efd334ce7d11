"""interp/sae.py by hand: codes of a hand-made SAE, the loss and Adam's first step on two
rows, the SAELens hand-off through a stand-in trainer.

Written to kill the mutants `make mutation` found alive (docs/mutation.md). Expected
values are worked out on paper or recomputed in numpy from the documented formulas
(codes = relu((x − b_dec)·W_enc + b_enc), x̂ = codes·D + b_dec, loss = ‖x − x̂‖² +
l1·‖codes‖₁), never read off the code under test.
"""

from __future__ import annotations

import json
import stat
import sys

import numpy as np
import pytest

from interp.circuits import example_model
from interp.extras import MissingExtraError
from interp.sae import (SAE_LENS_TRAINER, SparseAutoencoder, narrow_activations,
                        sae_lens_spec, train_sae, train_sae_lens, train_sae_lens_many)
from rasp.errors import RaspError

# dim 2, 3 latents. x = (3, 2): x − b_dec = (2, 1), ·W_enc = (2, 1, 1), + b_enc = (2, 0, 1).
# x = (0, 5): x − b_dec = (−1, 4), ·W_enc = (−1, 4, −5), + b_enc = (−1, 3, −5) → (0, 3, 0).
HAND = SparseAutoencoder(encoder=np.array([[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]),
                         encoder_bias=np.array([0.0, -1.0, 0.0]),
                         decoder=np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]),
                         decoder_bias=np.array([1.0, 1.0]))
X = np.array([[3.0, 2.0], [0.0, 5.0]])


@pytest.mark.parametrize("top_k,codes", [
    (None, [[2, 0, 1], [0, 3, 0]]),
    (1, [[2, 0, 0], [0, 3, 0]]),
    # k = 2: the second largest of row 0 is 1, kept (≥); row 1's second largest is 0
    (2, [[2, 0, 1], [0, 3, 0]]),
    (3, [[2, 0, 1], [0, 3, 0]]),  # every latent: nothing to drop
    (5, [[2, 0, 1], [0, 3, 0]])])
def test_codes_by_hand(top_k, codes):
    sae = SparseAutoencoder(HAND.encoder, HAND.encoder_bias, HAND.decoder, HAND.decoder_bias,
                            top_k=top_k)
    np.testing.assert_array_equal(sae.encode(X), codes)
    np.testing.assert_array_equal(sae.directions, HAND.decoder)


def test_narrow_activations_are_the_residual_at_each_token_position():
    model = example_model("reverse")  # any CompiledModel: N = 5
    inputs = [["a", "b", "c"], ["c"], ["b", "a", "a", "c", "b"]]
    for layer in (0, 2):
        want = np.concatenate([model.apply(["BOS", *xs]).residuals[layer][1:]
                               for xs in inputs])
        got = narrow_activations(model, inputs, layer)
        assert got.shape == (9, model.config.d_model)
        np.testing.assert_allclose(got, want, atol=1e-6)


# Two rows, x and −x: the start's b_dec is their mean, 0.
TWO_ROWS = np.array([[1.0, 2.0, -1.0], [-1.0, -2.0, 1.0]], np.float32)


def numpy_loss(sae: SparseAutoencoder, x: np.ndarray, l1: float) -> np.ndarray:
    """Each row's loss ‖x − x̂‖² + l1·‖codes‖₁, from the documented formula."""
    codes = np.maximum((x - sae.decoder_bias) @ sae.encoder + sae.encoder_bias, 0.0)
    recon = codes @ sae.decoder + sae.decoder_bias
    return ((recon - x) ** 2).sum(-1) + l1 * np.abs(codes).sum(-1)


def test_no_step_gives_the_start_tied_weights_and_the_mean_as_decoder_bias():
    start = train_sae(TWO_ROWS, latents=4, steps=0)
    assert start.losses == () and start.top_k is None
    assert start.decoder.shape == (4, 3) and start.encoder.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(start.decoder, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(start.encoder, start.decoder.T)
    np.testing.assert_array_equal(start.encoder_bias, np.zeros(4))
    np.testing.assert_array_equal(start.decoder_bias, np.zeros(3))
    np.testing.assert_array_equal(train_sae(TWO_ROWS, latents=4, steps=0, seed=0).decoder,
                                  start.decoder)  # the default seed is 0
    assert not np.array_equal(train_sae(TWO_ROWS, latents=4, steps=0, seed=1).decoder,
                              start.decoder)
    shifted = train_sae(TWO_ROWS + np.float32(5.0), latents=4, steps=0)
    np.testing.assert_allclose(shifted.decoder_bias, [5.0, 5.0, 5.0], atol=1e-6)


@pytest.mark.parametrize("l1", [None, 0.5])
def test_the_first_loss_is_the_starts_loss_on_a_batch_of_both_rows(l1):
    """A batch of 4096 draws of the two rows holds each about half the time (±3%), so
    the first recorded loss (before any update) is about the mean of the two rows'."""
    kwargs = {} if l1 is None else {"l1": l1}
    start = train_sae(TWO_ROWS, latents=4, steps=0, seed=3)
    rows = numpy_loss(start, TWO_ROWS, 1e-2 if l1 is None else l1)
    first = train_sae(TWO_ROWS, latents=4, steps=1, batch_size=4096, seed=3, **kwargs)
    assert len(first.losses) == 1
    assert abs(first.losses[0] - rows.mean()) <= 0.06 * abs(rows[0] - rows[1]) + 1e-4


def test_adams_first_step_moves_each_parameter_by_the_learning_rate():
    """Adam's first update is −lr·g/(|g| + ε): ±lr wherever the gradient is not 0."""
    start = train_sae(TWO_ROWS, latents=4, steps=0, seed=3)
    for lr, kwargs in ((3e-3, {}), (1e-2, {"learning_rate": 1e-2})):
        moved = train_sae(TWO_ROWS, latents=4, steps=1, batch_size=64, seed=3, **kwargs)
        step = np.abs(moved.decoder_bias - start.decoder_bias)
        np.testing.assert_allclose(step, lr, rtol=1e-3)
        bias_step = np.abs(moved.encoder_bias - start.encoder_bias)
        assert np.all(np.isclose(bias_step, lr, rtol=1e-3) | (bias_step == 0))
        assert np.isclose(bias_step, lr, rtol=1e-3).any()


def test_training_reconstructs_sparse_rows_and_l1_silences_codes():
    """Rows c·e_i (one of three axes, c in [1, 2]): with a small L1 weight the trained SAE
    reconstructs them to a tenth of their variance; a huge one drives every code to 0."""
    rng = np.random.default_rng(0)
    axes = rng.integers(0, 3, 600)
    rows = np.eye(3, dtype=np.float32)[axes] * rng.uniform(1, 2, (600, 1)).astype(np.float32)
    variance = ((rows - rows.mean(0)) ** 2).sum(-1).mean()
    sae = train_sae(rows, latents=6, l1=1e-3, steps=200, learning_rate=1e-2, seed=0)
    assert len(sae.losses) == 200 and np.mean(sae.losses[-20:]) < 0.3 * np.mean(sae.losses[:20])
    recon = sae.encode(rows) @ sae.decoder + sae.decoder_bias
    assert ((recon - rows) ** 2).sum(-1).mean() < 0.1 * variance
    silent = train_sae(rows, latents=6, steps=100, l1=100.0, learning_rate=1e-2, seed=0)
    assert silent.encode(rows).max() < 1e-3


def test_a_default_run_takes_3000_steps():
    assert len(train_sae(TWO_ROWS, latents=2).losses) == 3000


def test_sae_lens_specs():
    assert sae_lens_spec(8) == {"latents": 8, "architecture": "standard", "k": None,
                                "l1": 1e-2, "steps": 3000, "batch_size": 256,
                                "learning_rate": 3e-3, "seed": 0}
    assert sae_lens_spec(8, l1=0.5, k=3, steps=7, batch_size=5, learning_rate=0.1, seed=2) == \
        {"latents": 8, "architecture": "topk", "k": 3, "l1": 0.5, "steps": 7,
         "batch_size": 5, "learning_rate": 0.1, "seed": 2}


# A stand-in for the sae-lens venv's python: it checks what train_sae_lens_many hands it and
# writes, per spec i, a decoder whose rows have norms 2, 0.5 and 0, times i + 1.
STAND_IN = """#!{python}
import json, os, sys
import numpy as np
flag, trainer, activations, specs, out = sys.argv[1:]
with open(os.path.join(os.path.dirname(sys.argv[0]), "seen.json"), "w") as f:
    json.dump({{"flag": flag, "trainer": trainer,
               "env": [os.environ.get(k) for k in ("HF_HUB_OFFLINE", "WANDB_MODE",
                                                   "TQDM_DISABLE")],
               "activations": np.load(activations)["activations"].tolist(),
               "dtype": str(np.load(activations)["activations"].dtype),
               "specs": json.load(open(specs))}}, f)
if {fail!r} == "pickle":  # an object array: loading it would unpickle
    np.savez(out, **{{"0/W_dec": np.array([{{"a": 1}}], dtype=object)}})
    sys.exit(0)
if {fail!r}:
    if {fail!r} != "silent":
        print("first line", file=sys.stderr)
    if {fail!r} == "loud":
        print("boom: the last line", file=sys.stderr)
    sys.exit(1)
weights = {{}}
for i, _ in enumerate(json.load(open(specs))):
    weights[f"{{i}}/W_dec"] = np.array([[2.0, 0.0], [0.0, -0.5], [0.0, 0.0]]) * (i + 1)
    weights[f"{{i}}/b_dec"] = np.array([0.25, -1.0]) + i
    weights[f"{{i}}/W_enc"] = np.array([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]])
    weights[f"{{i}}/b_enc"] = np.array([1.0, 2.0, 3.0])
np.savez(out, **weights)
"""


def stand_in(tmp_path, fail=""):
    path = tmp_path / "bin" / f"python{fail}"
    path.parent.mkdir(exist_ok=True)
    path.write_text(STAND_IN.format(python=sys.executable, fail=fail))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_sae_lens_weights_come_back_with_unit_decoder_rows(tmp_path):
    acts = np.array([[1.0, 2.0], [3.0, 4.0]])  # float64 in, float32 to the trainer
    specs = [sae_lens_spec(3, steps=5), sae_lens_spec(3, k=2, steps=5)]
    plain, topk = train_sae_lens_many(acts, specs, python=stand_in(tmp_path))
    seen = json.loads((tmp_path / "bin" / "seen.json").read_text())
    assert (seen["flag"], seen["trainer"]) == ("-P", SAE_LENS_TRAINER)
    assert seen["env"] == ["1", "disabled", "1"]
    assert (seen["activations"], seen["dtype"]) == ([[1.0, 2.0], [3.0, 4.0]], "float32")
    assert seen["specs"] == specs
    # spec 0: decoder row norms 2, 0.5 and 0 (kept at 0, no division by it); the encoder's
    # columns and biases times those norms, so the reconstructions do not change
    np.testing.assert_array_equal(plain.decoder, [[1, 0], [0, -1], [0, 0]])
    np.testing.assert_allclose(plain.encoder, [[2, 0.5, 1e-8], [6, 1.5, 3e-8]], rtol=1e-12)
    np.testing.assert_allclose(plain.encoder_bias, [2, 1, 3e-8], rtol=1e-12)
    np.testing.assert_array_equal(plain.decoder_bias, [0.25, -1])
    assert (plain.top_k, topk.top_k) == (None, 2)
    # spec 1: norms 4, 1, 0
    np.testing.assert_array_equal(topk.decoder, [[1, 0], [0, -1], [0, 0]])
    np.testing.assert_allclose(topk.encoder_bias, [4, 2, 3e-8], rtol=1e-12)
    np.testing.assert_array_equal(topk.decoder_bias, [1.25, 0])


def test_train_sae_lens_hands_one_spec_over_and_leaves_no_file_behind(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    python, seen = stand_in(tmp_path), tmp_path / "bin" / "seen.json"
    one = train_sae_lens(np.array([[1.0, 2.0]]), 3, python=python)
    assert json.loads(seen.read_text())["specs"] == [
        {"latents": 3, "architecture": "standard", "k": None, "l1": 1e-2, "steps": 3000,
         "batch_size": 256, "learning_rate": 3e-3, "seed": 0}]  # the documented defaults
    assert json.loads(seen.read_text())["activations"] == [[1.0, 2.0]]
    np.testing.assert_allclose(one.encoder_bias, [2, 1, 3e-8], rtol=1e-12)
    assert one.top_k is None
    topk = train_sae_lens(np.ones((2, 2)), 3, l1=0.5, k=2, steps=5, batch_size=7,
                          learning_rate=0.1, seed=4, python=python)
    assert json.loads(seen.read_text())["specs"] == [
        {"latents": 3, "architecture": "topk", "k": 2, "l1": 0.5, "steps": 5,
         "batch_size": 7, "learning_rate": 0.1, "seed": 4}]
    assert topk.top_k == 2
    assert list((tmp_path / "cwd").iterdir()) == []  # the files live in a temporary folder


def test_a_trainer_output_holding_pickles_is_not_loaded(tmp_path):
    with pytest.raises(ValueError, match="allow_pickle"):
        train_sae_lens_many(np.ones((2, 2)), [sae_lens_spec(2)],
                            python=stand_in(tmp_path, "pickle"))


@pytest.mark.parametrize("fail,last", [("loud", "boom: the last line"), ("quiet", "first line"),
                                       ("silent", "no output")])
def test_a_failing_sae_lens_trainer_is_one_error_line(tmp_path, fail, last):
    with pytest.raises(RaspError, match=rf"^the SAELens trainer failed: {last}$"):
        train_sae_lens_many(np.ones((2, 2)), [sae_lens_spec(2)], python=stand_in(tmp_path, fail))


def test_a_missing_sae_lens_venv_says_how_to_build_it(tmp_path):
    with pytest.raises(MissingExtraError, match=r"^SAELens runs in a venv of its own, not found at .*nowhere/python: "
                                                  r"build it with `make sae-lens-venv`$"):
        train_sae_lens(np.ones((2, 2)), 2, python=str(tmp_path / "nowhere" / "python"))
