"""Realism knobs (interp/realism.py) keep the model exact and carry its truth along.

Expected values come from the reference evaluator (rasp.evaluate, with intermediates)
and from the unknobbed model's own forward; models are library examples at N = 5.
The every-example sweep (N = 5 and each example's default N) is in the slow set.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

import rasp
from compiler.compiling import compile_rasp_to_model
from examples.library import EXAMPLES
from interp import realism
from interp.circuits import example_model
from rasp.errors import KnobError
from rasp_runtime.model import CompiledModel
from rasp_runtime.verify import find_mismatches, values_agree

NAMES = ["reverse", "sort", "hist", "frac_prevs"]
KNOBS = {"rotate": lambda m: realism.rotate(m, 1),
         "permute_neurons": lambda m: realism.permute_neurons(m, 2),
         "perturb": lambda m: realism.perturb(m, 3),
         "all": lambda m: realism.perturb(realism.permute_neurons(realism.rotate(m, 1), 2), 3)}


def _inputs(name, model, count=200, seed=0):
    rng = random.Random(seed)
    return [EXAMPLES[name].sample(rng, model.config.max_seq_len) for _ in range(count)]


@pytest.mark.parametrize("knob", sorted(KNOBS))
@pytest.mark.parametrize("name", NAMES)
def test_knobbed_outputs_equal_the_evaluator(name, knob):
    model = example_model(name)
    knobbed = KNOBS[knob](model)
    checked, mismatches = find_mismatches(knobbed, model.program, _inputs(name, model))
    assert checked > 0 and mismatches == []
    assert [k["knob"] for k in knobbed.knobs] == \
        (["rotate", "permute_neurons", "perturb"] if knob == "all" else [knob])


@pytest.mark.parametrize("name", NAMES)
def test_rotated_truth_decodes_the_evaluator_values_off_the_axes(name):
    model = example_model(name)
    rotated = realism.rotate(model, 7)
    truth = rotated.ground_truth
    vectors = truth.direction_vectors()
    np.testing.assert_allclose(vectors @ vectors.T, np.eye(len(vectors)), atol=1e-12)
    assert np.max(np.abs(vectors)) < 0.9        # no named direction keeps an axis
    for xs in _inputs(name, model, 5, seed=1):
        _, values = rasp.evaluate(model.program, xs, return_intermediates=True)
        decoded = rotated.decode_intermediates([model.config.bos, *xs])
        for label, got in decoded.items():
            assert all(map(values_agree, values[label], got)), label
        # the raw rotated residual holds no value on its own axes: reading record dims
        # without the basis is not the plain model's residual
        plain = model.apply([model.config.bos, *xs]).residuals[-1]
        residual = rotated.apply([model.config.bos, *xs]).residuals[-1]
        np.testing.assert_allclose(truth.named(residual), plain, atol=1e-3)
        assert not np.allclose(residual, plain, atol=1e-2)


def assert_seeded(knob, model):
    """Seed 5 twice gives byte-identical weights; seed 6 changes some."""
    a, b, c = knob(model, 5), knob(model, 5), knob(model, 6)
    for module, weights in a.params.items():
        for key, array in weights.items():
            assert array.tobytes() == b.params[module][key].tobytes()
    assert any(array.tobytes() != c.params[m][k].tobytes()
               for m, w in a.params.items() for k, array in w.items())


def test_same_seed_same_weights_other_seed_other_weights():
    model = example_model("reverse")
    for knob in (realism.rotate, realism.permute_neurons, realism.perturb):
        assert_seeded(knob, model)


def test_permuted_neuron_records_follow_the_units():
    model = example_model("sort")
    permuted = realism.permute_neurons(model, 4)
    captured = {}

    def run(m, tag):
        hooks = {}
        for layer, config in enumerate(m.config.layers):
            if config.mlp_hidden:
                name = f"blocks.{layer}.mlp.hook_post"
                hooks[name] = lambda x, name=name: captured.setdefault((tag, name), x)
        ids = m.input_encoder.encode_batch([["BOS", 3, 1, 2, 4]])
        m.forward.apply(m.params, ids, ids != m.input_encoder.encoding_map["PAD"], hooks)

    run(model, "plain")
    run(permuted, "permuted")
    mlps = [c for c in permuted.ground_truth.components if c.kind == "mlp"]
    assert mlps and any(c.units != tuple(range(*c.hidden)) for c in mlps)
    for c in mlps:
        name = f"blocks.{c.layer}.mlp.hook_post"
        plain = np.asarray(captured["plain", name])[..., slice(*c.hidden)]
        moved = np.asarray(captured["permuted", name])[..., list(c.units)]
        np.testing.assert_array_equal(moved, plain * np.asarray(c.unit_scales, np.float32))
        assert sorted(c.units) == list(range(*c.hidden))


def test_perturb_fills_every_weight_and_refuses_an_absurd_scale():
    model = example_model("hist")
    noisy = realism.perturb(model, 1)
    scale = noisy.knobs[-1]["scale"]
    assert scale > 0
    for module, weights in noisy.params.items():  # dense: not one exact zero is left
        for key, array in weights.items():
            assert np.all(array != 0), (module, key)
    assert any(np.any(model.params[m][k] == 0) for m, w in model.params.items() for k in w)
    with pytest.raises(KnobError, match="cannot keep this model exact"):
        realism.perturb(model, 1, scale=0.1)
    with pytest.raises(KnobError, match="scale"):
        realism.perturb(model, 1, scale=-1.0)


def test_perturb_of_a_rotated_wide_model_is_refused_in_one_line():
    model = example_model("most_freq")   # d_model 54: rounding alone over the margin
    with pytest.raises(KnobError, match="at any noise scale"):
        realism.perturb(realism.rotate(model, 1), 1)


@pytest.mark.parametrize("name", ["reverse", "hist"])
def test_recheck_passes_on_knobbed_models(name):
    knobbed = KNOBS["all"](example_model(name))
    knobbed.source = {"kind": "example", "name": name}
    check = realism.recheck_truth(knobbed, pairs=16)
    assert check.ok and check.edges > 0, check.failures


def test_a_true_edge_that_the_drawn_pairs_miss_is_tried_on_more_pairs():
    """shuffle_dyck2 (N = 5): no pair of these 32 needs some of its true edges, so on that
    dataset alone they change nothing; the default re-check tries them on 256."""
    from interp.circuits import make_dataset
    model = example_model("shuffle_dyck2")
    few = realism.recheck_truth(model, dataset=make_dataset(EXAMPLES["shuffle_dyck2"], model,
                                                            32, 0))
    assert few.failures and all("changes nothing" in f for f in few.failures)
    assert realism.recheck_truth(model).ok


def test_recheck_fails_when_a_live_edge_is_dropped_from_the_truth():
    model = realism.rotate(example_model("reverse"), 1)
    truth = model.ground_truth
    # the last head loses what its values read (the tokens): a live edge leaves the circuit
    head = [c for c in truth.components if c.kind == "attn"][-1]
    dropped = {i for i, _ in head.value_reads}
    assert [label for _, label in head.value_reads] == ["tokens:a", "tokens:b", "tokens:c"]
    keep = lambda ds: tuple((i, l) for i, l in ds if i not in dropped)  # noqa: E731
    broken = dataclasses.replace(head, value_reads=(), reads=keep(head.reads))
    model.saved_truth = dataclasses.replace(truth, components=tuple(
        broken if c is head else c for c in truth.components)).to_json()
    assert realism.recheck_truth(model, EXAMPLES["reverse"], pairs=16).ok is False
    check = realism.recheck_truth(model, EXAMPLES["reverse"], pairs=16, granularity="acdc_hooks")
    assert "hook_embed -> blocks.1.hook_v_input[0] is off the circuit but changes the output" \
        in check.failures
    with pytest.raises(KnobError, match="re-check"):
        check.raise_if_failed()


def test_save_and_load_keep_knobs_and_truth(tmp_path):
    model = KNOBS["all"](example_model("reverse"))
    model.save(tmp_path / "m.npz")
    loaded = CompiledModel.load(tmp_path / "m.npz")
    assert loaded.knobs == model.knobs
    assert loaded.ground_truth == model.ground_truth
    for module, weights in model.params.items():
        for key, array in weights.items():
            assert array.tobytes() == loaded.params[module][key].tobytes()
    tokens = ["BOS", "a", "b", "c"]
    assert loaded.apply(tokens).decoded == model.apply(tokens).decoded


# Where the per-read bound cannot prove any noise scale (docs/realism.md): perturb refuses.
PERTURB_REFUSED = {("rasp_sort", 8), ("rasp_most_freq", 8)}


@pytest.mark.sweep
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_every_knob(name):
    """Acceptance sweep: N = 5 and the default N; prints the largest axis cosine."""
    example = EXAMPLES[name]
    for n in sorted({min(5, example.max_seq_len), example.max_seq_len}):
        model = compile_rasp_to_model(example.build(n), set(example.vocab), n,
                                      causal=example.causal)
        for knob in ("rotate", "permute_neurons", "perturb"):
            if knob == "perturb" and (name, n) in PERTURB_REFUSED:
                with pytest.raises(KnobError, match="at any noise scale"):
                    KNOBS[knob](model)
                continue
            knobbed = KNOBS[knob](model)
            knobbed.source = {"kind": "example", "name": name}
            checked, mismatches = find_mismatches(knobbed, model.program,
                                                  _inputs(name, model))
            assert checked > 0 and mismatches == [], (knob, n)
            realism.recheck_truth(knobbed).raise_if_failed()
            if knob == "rotate":
                cosine = float(np.max(np.abs(knobbed.ground_truth.direction_vectors())))
                print(f"{name} N={n}: max |cos(value direction, axis)| = {cosine:.3f}")
                assert cosine < 0.9


def test_raspc_compile_applies_and_saves_the_knobs(tmp_path, capsys):
    from raspc import cli
    path = tmp_path / "m.npz"
    assert cli.main(["compile", "reverse", "--max-seq-len", "5", "--rotate", "1",
                     "--permute-neurons", "2", "--perturb", "3", "-o", str(path)]) == 0
    out = capsys.readouterr().out
    assert "realism knobs:   rotate (seed 1, block 20), permute_neurons (seed 2), " \
           "perturb (seed 3, scale " in out
    loaded = CompiledModel.load(path)
    assert [k["knob"] for k in loaded.knobs] == ["rotate", "permute_neurons", "perturb"]
    assert loaded.apply(["BOS", "a", "b", "c"]).decoded == ["BOS", "c", "b", "a"]
    assert cli.main(["compile", "reverse", "--perturb-scale", "1e-9"]) == 2
    assert cli.main(["compile", "reverse", "--max-seq-len", "5", "--perturb", "1",
                     "--perturb-scale", "0.5"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "perturb cannot keep this model exact" in err


def test_the_residual_plot_of_a_rotated_model_is_drawn_in_named_directions():
    from interp.plots import plot_residuals
    model = example_model("reverse")
    tokens = ["BOS", "a", "b", "c"]
    plain, rotated = (plot_residuals(m, tokens).axes[0].images[0].get_array()
                      for m in (model, realism.rotate(model, 1)))
    np.testing.assert_allclose(rotated, plain, atol=1e-4)
