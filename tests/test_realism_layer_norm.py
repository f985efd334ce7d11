"""Realism knobs on LayerNorm models (compile_rasp_to_model(..., layer_norm=True)).

`rotate` turns the content of the residual in the complement of the all-ones vector, so
LayerNorm commutes with it, and perturb's bound covers LayerNorm. These tests compare
knobbed LN models with the reference evaluator (rasp.evaluate) on random inputs, measure
the truth's axis cosines from the saved residual_basis, recompute LayerNorm and its reads
in float32 in four summation orders against the per-read bound, and check the
path-patching re-check, save/load, the seed and the one-line refusals.
Models are library examples at N = 5; the every-example sweep is in the sweep set.
"""

from __future__ import annotations

import dataclasses
import functools
import random

import numpy as np
import pytest

from compiler.compiling import compile_rasp_to_model
from examples.library import EXAMPLES
from interp import realism
from rasp.errors import KnobError
from rasp_runtime.model import CompiledModel
from rasp_runtime.verify import find_mismatches
from tests.test_realism import assert_seeded

NAMES = ["reverse", "hist", "frac_prevs"]


@functools.lru_cache(maxsize=None)
def _layer_norm_model(name: str, n: int = 5) -> CompiledModel:
    example = EXAMPLES[name]
    model = compile_rasp_to_model(example.build(n), set(example.vocab), n,
                                  causal=example.causal, layer_norm=True)
    model.source = {"kind": "example", "name": name}
    return model


def _inputs(name, n=5, count=200, seed=0):
    rng = random.Random(seed)
    return [EXAMPLES[name].sample(rng, n) for _ in range(count)]


def _value_axis_cosine(model: CompiledModel) -> float:
    """The largest |cos(value direction, coordinate axis)|, from the saved basis."""
    basis = np.array(model.ground_truth.residual_basis, np.float64)
    dims = sorted({i for record in model.value_records.values() for i in record.dims})
    rows = basis[dims]
    return float(np.max(np.abs(rows) / np.linalg.norm(rows, axis=1, keepdims=True)))


@pytest.mark.parametrize("name", NAMES)
def test_rotated_layer_norm_model_equals_the_evaluator_off_the_axes(name):
    model = _layer_norm_model(name)
    rotated = realism.rotate(model, 1)
    checked, mismatches = find_mismatches(rotated, model.program, _inputs(name))
    assert checked > 0 and mismatches == []
    assert rotated.config.normalization == "layernorm"
    assert _value_axis_cosine(rotated) < 0.9
    basis = np.array(rotated.ground_truth.residual_basis)
    d = model.config.d_model
    # the rotation fixes the all-ones vector (so LayerNorm commutes with it) and leaves
    # LayerNorm's own two coordinates, balance and mean probe, on their axes
    np.testing.assert_allclose(np.ones(d) @ basis, np.ones(d), atol=1e-12)
    np.testing.assert_allclose(basis[-2:], np.eye(d)[-2:], atol=0)
    assert np.count_nonzero(np.abs(basis[:-2, :-2]) > 1e-6) > 4 * (d - 2)  # mixed, not permuted
    for module, weights in model.params.items():  # the gains and offsets are untouched
        if "scale" in weights:
            assert rotated.params[module]["scale"].tobytes() == weights["scale"].tobytes()
            assert not rotated.params[module]["offset"].any()


def test_rotated_layer_norm_truth_passes_the_recheck_and_round_trips(tmp_path):
    rotated = realism.rotate(_layer_norm_model("reverse"), 1)
    check = realism.recheck_truth(rotated, pairs=16)
    assert check.ok and check.edges > 0, check.failures
    rotated.save(tmp_path / "m.npz")
    loaded = CompiledModel.load(tmp_path / "m.npz")
    assert loaded.knobs == rotated.knobs == [{"knob": "rotate", "seed": 1, "block": 20}]
    assert loaded.ground_truth == rotated.ground_truth
    for module, weights in rotated.params.items():
        for key, array in weights.items():
            assert array.tobytes() == loaded.params[module][key].tobytes()
    assert loaded.apply(["BOS", "a", "b", "c"]).decoded == ["BOS", "c", "b", "a"]


@pytest.mark.parametrize("name", ["sort", "frac_prevs"])
def test_layer_norm_reads_of_the_rotated_residual_stay_within_the_bound(name):
    """LayerNorm and every read of it, in float32 in four summation orders, on the rotated
    model's own residuals: the observed error of each read against the float64 read of
    the residual stays within realism_bounds' per-read LayerNorm bound."""
    from craft.float_bounds import UNIT_ROUNDOFF as u
    from craft.float_bounds import gamma
    from interp.realism_bounds import named_magnitudes, norm_statistics
    from rasp_runtime.interventions import run_batch
    from tests.test_layer_norm_bounds import ORDERS, _layer_norm
    model = _layer_norm_model(name)
    rotated = realism.rotate(model, 1)
    mean, scale, _ = norm_statistics(model, rotated.params, rotated.ground_truth,
                                     named_magnitudes(model, model.ground_truth))
    # the bound's own assumptions (realism_bounds: half of each slack) hold here, so a
    # statistics function that returned huge values could not pass this test
    assert mean <= 2.0 ** -9 and scale <= 2.0 ** -18
    batch = [[model.config.bos, *xs] for xs in _inputs(name, count=30, seed=2)]
    run = run_batch(rotated, batch)
    real = np.arange(6)[None, :] < np.array([len(b) for b in batch])[:, None]
    rows = np.concatenate([np.asarray(r)[:, :6][real] for r in run["residuals"]])
    rows = rows.astype(np.float32)
    exact = rows.astype(np.float64)
    eps = model.config.layer_norm_eps
    readers = [np.asarray(w["w"], np.float32) for module, w in rotated.params.items()
               if module == "unembed" or module.endswith(("/query", "/key", "/value",
                                                          "/linear_1"))]
    for total in ORDERS:
        computed_mean, out = _layer_norm(rows, eps, np.sqrt(eps), total)
        assert np.abs(computed_mean).max() <= mean
        for w in readers:
            want = exact @ w.astype(np.float64)
            terms = (out[:, :, None] * w[None]).astype(np.float32)
            got = total(np.moveaxis(terms, 1, -1)).astype(np.float64)
            size = np.abs(exact) @ np.abs(w.astype(np.float64))    # Σ|w_k x_k| per read
            absolute = np.abs(w).sum(axis=0, dtype=np.float64)
            column_sum = np.abs(w.sum(axis=0, dtype=np.float64))
            allowed = gamma(w.shape[0] + 1) * (1 + scale) * (1 + u) * (size + mean * absolute) \
                + scale * size + (1 + scale) * (mean * column_sum + u * (size + mean * absolute))
            assert (np.abs(got - want) <= allowed).all(), total.__name__


def test_rotate_of_a_layer_norm_model_is_deterministic_in_its_seed():
    assert_seeded(realism.rotate, _layer_norm_model("hist"))


def test_a_wide_layer_norm_model_rotates_in_groups_that_stay_exact():
    model = _layer_norm_model("sort")
    rotated = realism.rotate(model, 1, block=8)
    assert rotated.knobs[-1]["block"] == 8
    checked, mismatches = find_mismatches(rotated, model.program, _inputs("sort", count=100))
    assert checked > 0 and mismatches == []
    assert _value_axis_cosine(rotated) < 0.9


def test_rotate_refuses_in_one_line_naming_what_layer_norm_costs(monkeypatch):
    from interp import realism_bounds
    model = _layer_norm_model("reverse")
    monkeypatch.setattr(realism_bounds, "READ_MARGIN", 1e-7)  # no group size fits now
    with pytest.raises(KnobError, match=r"of it from LayerNorm\), over the margin 1e-07") \
            as caught:
        realism.rotate(model, 1)
    assert "\n" not in str(caught.value)
    monkeypatch.setattr(realism_bounds, "READ_MARGIN", 1e-5)
    monkeypatch.setattr(realism_bounds, "MEAN_SLACK", 1e-12)  # the mean's premise fails
    with pytest.raises(KnobError, match="LayerNorm's computed mean or scale error"):
        realism.rotate(model, 1)


def test_permute_neurons_keeps_a_layer_norm_model_exact():
    model = _layer_norm_model("frac_prevs")
    permuted = realism.permute_neurons(realism.rotate(model, 1), 2)
    checked, mismatches = find_mismatches(permuted, model.program, _inputs("frac_prevs"))
    assert checked > 0 and mismatches == []


def test_rotate_refuses_a_layer_norm_whose_gain_is_not_uniform():
    model = _layer_norm_model("reverse")
    params = {m: dict(w) for m, w in model.params.items()}
    gain = params["transformer/ln_final"]["scale"].copy()
    gain[0] *= 2
    params["transformer/ln_final"] = {**params["transformer/ln_final"], "scale": gain}
    uneven = CompiledModel(params, model.config, model.residual_labels, model.components,
                           model.value_records.values(), model.program)
    with pytest.raises(KnobError, match="gain equal on all coordinates") as caught:
        realism.rotate(uneven, 1)
    assert "\n" not in str(caught.value)
    other = CompiledModel(model.params, dataclasses.replace(model.config,
                                                            normalization="rmsnorm"),
                          model.residual_labels, model.components,
                          model.value_records.values(), model.program)
    with pytest.raises(KnobError, match="normalization 'rmsnorm'"):
        realism.rotate(other, 1)


@pytest.mark.parametrize("name", ["reverse", "frac_prevs"])
def test_all_knobs_keep_a_layer_norm_model_exact_and_dense(name):
    model = _layer_norm_model(name)
    knobbed = realism.perturb(realism.permute_neurons(realism.rotate(model, 1), 2), 3)
    assert [k["knob"] for k in knobbed.knobs] == ["rotate", "permute_neurons", "perturb"]
    assert knobbed.knobs[-1]["scale"] > 0
    for module, weights in knobbed.params.items():  # no exact zero left in a weight matrix
        if "w" in weights:
            assert np.all(weights["w"] != 0), module
    checked, mismatches = find_mismatches(knobbed, model.program, _inputs(name))
    assert checked > 0 and mismatches == []
    with pytest.raises(KnobError, match="perturb cannot keep this model exact") as caught:
        realism.perturb(model, 1, scale=1e-3)
    assert "\n" not in str(caught.value)


def test_raspc_compile_rotates_a_layer_norm_model(tmp_path, capsys):
    from raspc import cli
    path = tmp_path / "m.npz"
    assert cli.main(["compile", "reverse", "--max-seq-len", "5", "--layer-norm",
                     "--rotate", "1", "-o", str(path)]) == 0
    assert "realism knobs:   rotate (seed 1, block 20)" in capsys.readouterr().out
    loaded = CompiledModel.load(path)
    assert loaded.config.normalization == "layernorm"
    assert loaded.apply(["BOS", "a", "b", "c"]).decoded == ["BOS", "c", "b", "a"]


SWEEP_SIZES = [(name, n) for name in sorted(EXAMPLES)
               for n in sorted({min(5, EXAMPLES[name].max_seq_len), EXAMPLES[name].max_seq_len})]
# At their default N these LayerNorm models are refused, in one line, by the knobs named.
# Rotating any group of their residual, or noise on every weight of the dyck models,
# could move LayerNorm's computed mean or scale past what their reads were compiled to
# absorb (realism_bounds.MEAN_SLACK, NORM_SLACK); noise on every weight of the others
# would cost more than a read's margin by rounding alone (as for rasp_sort and
# rasp_most_freq without LayerNorm, test_realism.PERTURB_REFUSED). permute_neurons takes
# them all.
_STATISTICS = "LayerNorm's computed mean or scale"
_ROUNDING = "at any noise scale: rounding alone"
REFUSED_AT_DEFAULT_N = {
    **{(name, 8): {"rotate": _STATISTICS, "perturb": f"at any noise scale: {_STATISTICS}"}
       for name in ("dyck2", "dyck3", "rasp_dyck2", "rasp_dyck3")},
    **{(name, 8): {"rotate": _STATISTICS, "perturb": _ROUNDING}
       for name in ("most_freq", "rasp_most_freq", "sort_freq")},
    ("rasp_sort", 8): {"perturb": _ROUNDING}}
KNOBS = {"rotate": lambda m: realism.rotate(m, 1),
         "permute_neurons": lambda m: realism.permute_neurons(m, 2),
         "perturb": lambda m: realism.perturb(m, 3)}


@pytest.mark.sweep
@pytest.mark.parametrize("name,n", SWEEP_SIZES)
def test_every_layer_norm_example_takes_every_knob_exactly(name, n):
    """Acceptance sweep at N = 5 and the default N: exact, truth re-checked, value
    cosines below 0.9; or, where listed, refused by the knob in one line."""
    model = _layer_norm_model(name, n)
    refused = REFUSED_AT_DEFAULT_N.get((name, n), {})
    for knob, apply in KNOBS.items():
        if knob in refused:
            with pytest.raises(KnobError, match=refused[knob]):
                apply(model)
            continue
        knobbed = apply(model)
        if knob == "rotate":
            assert _value_axis_cosine(knobbed) < 0.9
        checked, mismatches = find_mismatches(knobbed, model.program, _inputs(name, n))
        assert checked > 0 and mismatches == [], knobbed.knobs
        realism.recheck_truth(knobbed, pairs=64).raise_if_failed()  # shuffle_dyck needs 64
