"""Datasets and metrics of interp/circuits/data.py on cases worked out by hand.

Written to kill the mutants `make mutation` left alive (docs/mutation.md): the two
metrics on tiny logits, where the inputs come from and what is refused, the padded
arrays of two inputs, which inputs are valid, and the inert tolerance.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import rasp
from compiler import CompiledModel
from examples.library import EXAMPLES
from interp.circuits import example_model, make_dataset
from interp.circuits.data import (MAX_DRAWS, Dataset, is_valid_input, kl_divergence, mse,
                                  output_metric)


@pytest.fixture(scope="module")
def reverse():
    return example_model("reverse")


def test_kl_divergence_by_hand():
    """Row 0, position 1: p = (1/4, 3/4) against q = (1/2, 1/2); position 2: p = q.
    Position 0 (BOS) and 3 (PAD) are not scored, whatever their logits."""
    clean = np.log(np.array([[[5.0, 1.0], [1.0, 3.0], [2.0, 2.0], [1.0, 9.0]]], np.float32))
    patched = np.log(np.array([[[1.0, 5.0], [1.0, 1.0], [2.0, 2.0], [9.0, 1.0]]], np.float32))
    scored = np.array([[False, True, True, False]])
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    got = np.asarray(kl_divergence(clean, patched, scored))
    assert got.shape == (1,) and got[0] == pytest.approx(kl / 2, rel=1e-5)
    # rows may carry leading axes (several interventions): still a mean over positions
    stacked = np.asarray(kl_divergence(np.stack([clean, clean]), np.stack([patched, clean]),
                                       np.stack([scored, scored])))
    assert stacked.shape == (2, 1) and stacked[:, 0] == pytest.approx([kl / 2, 0.0], abs=1e-6)


def test_mse_by_hand_and_a_row_with_nothing_scored():
    """Only column 0 is the value: ((4 − 2)² + (0 − 3)²) / 2 = 6.5; a row with no scored
    position gives 0, not a division by zero."""
    clean = np.array([[[1, 7], [2, 7], [3, 7]], [[1, 0], [1, 0], [1, 0]]], np.float32)
    patched = np.array([[[9, 1], [4, 1], [0, 1]], [[5, 1], [5, 1], [5, 1]]], np.float32)
    scored = np.array([[False, True, True], [False, False, False]])
    assert np.asarray(mse(clean, patched, scored)).tolist() == [6.5, 0.0]


def test_output_metric_follows_the_output_type():
    clean = np.array([[[0, 0], [2, 0]]], np.float32)
    patched = np.zeros((1, 2, 2), np.float32)
    scored = np.array([[False, True]])
    numerical = SimpleNamespace(config=SimpleNamespace(output_numerical=True))
    categorical = SimpleNamespace(config=SimpleNamespace(output_numerical=False))
    assert float(output_metric(numerical, clean, patched, scored)[0]) == 4.0
    # softmax((2, 0)) = (s, 1 − s), s = e²/(e² + 1), against (1/2, 1/2)
    s = math.exp(2) / (math.exp(2) + 1)
    kl = s * math.log(2 * s) + (1 - s) * math.log(2 * (1 - s))
    assert float(output_metric(categorical, clean, patched, scored)[0]) == \
        pytest.approx(kl, rel=1e-5)


def test_the_padded_arrays_of_two_inputs(reverse):
    """Ids: BOS 0, a 1, b 2, c 3, PAD 4 (the vocabulary in order); the shorter input is
    padded; `scored` is every real position but BOS."""
    dataset = Dataset(SimpleNamespace(model=reverse), (("a", "b"), ("c",)), (("b", "b"), ("a",)))
    arrays = dataset.arrays
    width = reverse.config.max_seq_len + 1
    pad = [4] * (width - 3)
    assert arrays["clean"].tolist() == [[0, 1, 2] + pad, [0, 3, 4] + pad]
    assert arrays["corrupt"].tolist() == [[0, 2, 2] + pad, [0, 1, 4] + pad]
    assert arrays["valid"].tolist() == [[True] * 3 + [False] * (width - 3),
                                        [True] * 2 + [False] * (width - 2)]
    assert arrays["scored"].tolist() == [[False, True, True] + [False] * (width - 3),
                                         [False, True] + [False] * (width - 2)]
    assert len(dataset) == 2


def test_pairs_from_a_list_keep_their_length(reverse):
    """From a list, the corruption is drawn among the inputs of the clean one's length; an
    input alone at its length is its own corruption (after MAX_DRAWS tries)."""
    # ["z"] and ["z", "z"] are not in the vocabulary: never drawn, never a corruption
    inputs = [["a"], ["z"], ["b", "c"], ["z", "z"], ["c", "b"]]
    dataset = make_dataset(inputs, reverse, pairs=20, seed=1)
    assert len(dataset) == 20 and {c for c in dataset.clean} == {("a",), ("b", "c"), ("c", "b")}
    for clean, corrupt in zip(dataset.clean, dataset.corrupt):
        assert corrupt == ({("b", "c"): ("c", "b"), ("c", "b"): ("b", "c")}.get(clean, clean))


def test_what_make_dataset_refuses(reverse):
    with pytest.raises(ValueError) as refused:
        make_dataset([], reverse)
    assert str(refused.value) == "make_dataset needs at least one input to draw from"
    with pytest.raises(ValueError) as refused:
        make_dataset(5, reverse)
    assert str(refused.value) == ("make_dataset takes an Example, a sampler f(rng, vocab, "
                                  "length) or a list of inputs, not int")
    with pytest.raises(ValueError) as refused:  # "z" is not in the vocabulary
        make_dataset(lambda rng, vocab, n: ["z"] * n, reverse, pairs=3)
    assert str(refused.value) == (f"only 0 of {3 * MAX_DRAWS} sampled inputs are valid for the "
                                  f"evaluator; give a sampler of valid inputs")


def test_an_example_is_sampled_at_random_lengths_up_to_n(reverse):
    dataset = make_dataset(EXAMPLES["reverse"], reverse, pairs=40, seed=2)
    lengths = {len(xs) for xs in dataset.clean}
    assert lengths == set(range(1, 6))  # 40 draws of 1..5 reach every length
    assert all(len(a) == len(b) and a != b for a, b in zip(dataset.clean, dataset.corrupt)
               if len(a) > 1)


def test_which_inputs_are_valid(reverse, tmp_path):
    assert is_valid_input(reverse, ("a", "c"))
    assert not is_valid_input(reverse, ("a", "z"))  # not in the vocabulary
    assert not is_valid_input(reverse, ())  # the evaluator refuses an empty input
    reverse.save(tmp_path / "m.npz")
    loaded = CompiledModel.load(tmp_path / "m.npz")
    assert is_valid_input(loaded, ())  # no program: only the vocabulary is checked
    assert not is_valid_input(loaded, ("z",))


def test_the_inert_tolerance():
    """Plain: 1e-5. Knobbed: a quarter of the 1/(N+1)² value gap, between 1e-5 and 1e-3."""
    def tolerance(knobs, n):
        model = SimpleNamespace(knobs=knobs, config=SimpleNamespace(max_seq_len=n))
        return Dataset(SimpleNamespace(model=model), (), ()).inert_tolerance

    assert tolerance([], 20) == 1e-5
    assert tolerance([{"knob": "rotate"}], 5) == 1e-3  # 1/144 is above the cap
    assert tolerance([{"knob": "rotate"}], 20) == pytest.approx(1 / 441 / 4)
    assert tolerance([{"knob": "rotate"}], 400) == 1e-5  # 1/(4·401²) is below the floor


def test_example_model_caps_the_length():
    assert example_model("reverse", 3).config.max_seq_len == 3
    assert example_model("frac_prevs", 99).config.max_seq_len == EXAMPLES["frac_prevs"].max_seq_len
    assert example_model("frac_prevs").config.causal == EXAMPLES["frac_prevs"].causal


def test_differs_reads_only_real_positions_above_the_tolerance():
    """A stand-in writer whose clean and corrupted values differ by exactly the tolerance
    at a real position (not a difference) and by 1 at a PAD position (not read): it does
    not differ; one more unit in the last place at the real position and it does."""
    def dataset(real_gap: float) -> Dataset:
        model = SimpleNamespace(knobs=[], config=SimpleNamespace(max_seq_len=2))
        hooked = SimpleNamespace(model=model, wiring=SimpleNamespace(writer_index={"w": 0}),
                                 truth=SimpleNamespace(named=lambda x: x))
        data = Dataset(hooked, (("a",),), (("b",),))
        clean = np.zeros((1, 1, 3, 2))  # [writers, pairs, positions, directions]
        corrupt = clean.copy()
        corrupt[0, 0, 1, 1] = real_gap  # position 1, direction 1
        corrupt[0, 0, 2, :] = 1.0  # position 2 is PAD
        for name, value in (("arrays", {"valid": np.array([[True, True, False]])}),
                            ("clean_run", {"contributions": clean}),
                            ("corrupt_run", {"contributions": corrupt})):
            object.__setattr__(data, name, value)  # what the cached properties would hold
        return data

    tolerance = dataset(0.0).inert_tolerance
    assert tolerance == 1e-5
    assert not dataset(tolerance).differs("w", [0, 1])
    assert dataset(np.nextafter(tolerance, 1.0)).differs("w", [0, 1])
    assert not dataset(1.0).differs("w", [0])  # direction 0 is the same everywhere read


def test_the_defaults_and_a_shared_hooked_model(reverse):
    """32 pairs from seed 0 unless told; the same seed draws the same pairs; a given
    HookedModel is the one the dataset runs (its jitted forward is shared)."""
    first = make_dataset(EXAMPLES["reverse"], reverse)
    assert len(first) == 32
    again = make_dataset(EXAMPLES["reverse"], reverse, 32, 0, hooked=first.hooked)
    assert (again.clean, again.corrupt) == (first.clean, first.corrupt)
    assert again.hooked is first.hooked
    assert make_dataset(EXAMPLES["reverse"], reverse, 32, 1).clean != first.clean


def test_validity_is_judged_as_the_model_reads(reverse):
    """Each position takes the token of the one key at or after it: several keys, so an
    error, unless the model is causal (then the key is the position itself)."""
    program = rasp.categorical(rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.indices, rasp.GEQ), rasp.tokens))

    def stand_in(causal: bool):
        return SimpleNamespace(program=program,
                               config=SimpleNamespace(vocab=("a", "b"), causal=causal))
    assert is_valid_input(stand_in(True), ("a", "b"))
    assert not is_valid_input(stand_in(False), ("a", "b"))


def test_forward_takes_the_patches(reverse):
    """Moving every slot's copy of every writer to its corrupted value is running the
    corrupted inputs; moving none is running the clean ones."""
    dataset = make_dataset(EXAMPLES["reverse"], reverse, pairs=4, seed=0)
    wiring = dataset.hooked.wiring
    corrupt = dataset.corrupt_run["contributions"]
    for alpha, expected in ((1.0, dataset.corrupt_run), (0.0, dataset.clean_run)):
        alphas = np.full((4, len(wiring.writers), len(wiring.slots)), alpha, np.float32)
        out = dataset.forward("clean", corrupt=corrupt, alpha=alphas)["output"]
        assert np.allclose(out, expected["output"], atol=1e-4)
    assert not np.allclose(dataset.clean_run["output"], dataset.corrupt_run["output"], atol=1e-2)
