"""interp/compress.py: what a CompressedModel carries, its file section, the recipes and the
options `compress` refuses, exact_match's tolerance, on frac_prevs (d_model 14, read rank 11).

Written to kill the mutants `make mutation` found alive (docs/mutation.md). Expected
values come from the evaluator, from numpy on the original model's own residuals, or
from the documentation (`compress`'s docstring, docs/superposition.md); no test trains.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import rasp
from compiler import CompiledModel, compile_rasp_to_model
from examples.library import EXAMPLES
from interp.circuits import example_model
from tests.helpers import compile_example
from interp.compress import (RECIPES, CompressedModel, choose_recipe, compress, exact_match,
                             layer_cosines, sampler_for)
from rasp_runtime.serialize import ModelFileError, read_metadata, save_model


@pytest.fixture(scope="module")
def frac_prevs():
    return compile_example("frac_prevs")


def keep(d_model, *coordinates):
    """W whose rows pick residual coordinates: z = x[coordinates], z·W = x with the rest 0."""
    return np.eye(d_model)[list(coordinates)]


@pytest.mark.parametrize("shape", [(14,), (2, 13), (0, 14), (2, 14, 1)])
def test_the_projection_must_be_a_nonempty_dim_by_d_model_matrix(frac_prevs, shape):
    with pytest.raises(ValueError, match=r"^the projection must be dim × d_model = \? × 14, "
                                         rf"got shape \({shape[0]},"):
        CompressedModel(frac_prevs, np.zeros(shape))


def test_a_compressed_model_carries_the_original_and_its_records(frac_prevs, tmp_path):
    frac_prevs.save(tmp_path / "fp.npz")
    loaded = CompiledModel.load(tmp_path / "fp.npz")  # with a saved alignment and domain
    narrow = CompressedModel(loaded, keep(14, 0, 3, 5), {"note": 1})
    assert narrow.projection.dtype == np.float32 and narrow.dim == 3
    assert narrow.original is loaded and narrow.training == {"note": 1}
    assert narrow.config.d_model == 3 and narrow.config.vocab == loaded.config.vocab
    assert narrow.residual_labels == ["narrow:0", "narrow:1", "narrow:2"]
    assert narrow.saved_alignment is loaded.saved_alignment is not None
    assert narrow.domain is loaded.domain
    assert narrow.components == loaded.components
    assert list(narrow.value_records) == list(loaded.value_records)
    assert CompressedModel(frac_prevs, keep(14, 1)).program is frac_prevs.program


def test_the_reconstructed_embedding_residual_is_the_original_with_dropped_coordinates(
        frac_prevs):
    tokens = ["BOS", "x", "z", "y"]
    narrow = CompressedModel(frac_prevs, keep(14, 0, 2, 3, 7))
    want = np.asarray(frac_prevs.apply(tokens).residuals[0]).copy()
    want[:, [1, 4, 5, 6, 8, 9, 10, 11, 12, 13]] = 0.0
    rebuilt = narrow.reconstructed_residuals(tokens)
    assert len(rebuilt) == len(frac_prevs.apply(tokens).residuals)
    assert rebuilt[0].shape == (4, 14)
    np.testing.assert_allclose(rebuilt[0], want, atol=1e-6)


def section_file(tmp_path, model, section):
    save_model(model, tmp_path / "m.npz", sections={"compression": section})
    return tmp_path / "m.json"


def test_the_saved_section_holds_w_and_the_training(frac_prevs, tmp_path):
    w = keep(14, 2, 9)
    CompressedModel(frac_prevs, w, {"steps": 3}).save(tmp_path / "n.npz", "two coordinates")
    section = read_metadata(tmp_path / "n.json")["compression"]
    assert section == {"format": "rasp-compiler-compression", "version": 1, "dim": 2,
                       "projection": w.tolist(), "training": {"steps": 3}}
    assert read_metadata(tmp_path / "n.json")["program"]["description"] == "two coordinates"
    loaded = CompressedModel.load(tmp_path / "n.npz", verify=False)
    np.testing.assert_array_equal(loaded.projection, w)


@pytest.mark.parametrize("section,message", [
    ({"format": "other", "version": 1, "projection": [[1.0] * 14]},
     "is not a compressed model \\(no compression section\\); load it with CompiledModel.load$"),
    ({"format": "rasp-compiler-compression", "version": 2, "projection": [[1.0] * 14]},
     "has compression version 2; this version reads 1$"),
    ({"format": "rasp-compiler-compression", "version": 1}, "malformed compression section"),
    ({"format": "rasp-compiler-compression", "version": 1, "projection": [[1.0] * 13]},
     "malformed compression section: the projection must be")])
def test_bad_compression_sections_are_one_model_file_error(frac_prevs, tmp_path, section,
                                                           message):
    path = section_file(tmp_path, frac_prevs, section)
    with pytest.raises(ModelFileError, match=rf"^{tmp_path}.*{message}"):
        CompressedModel.load(path)


def test_a_section_that_is_not_a_dict_is_not_a_compressed_model(frac_prevs, tmp_path):
    with pytest.raises(ModelFileError, match="not a compressed model"):
        CompressedModel.load(section_file(tmp_path, frac_prevs, ["rasp-compiler-compression"]))


def test_the_default_sampler_is_uniform_over_the_vocab_and_lengths_1_to_n(frac_prevs):
    sample, rng = sampler_for(frac_prevs), random.Random(0)
    drawn = [sample(rng) for _ in range(400)]
    assert {len(xs) for xs in drawn} == set(range(1, 9))
    assert {x for xs in drawn for x in xs} == {"x", "y", "z"}
    # an example's sampler, at the model's length and vocab
    example, a, b = EXAMPLES["frac_prevs"], random.Random(5), random.Random(5)
    assert [sampler_for(frac_prevs, "frac_prevs")(a) for _ in range(20)] == \
        [example.sample(b, 8, ["x", "y", "z"]) for _ in range(20)]


def test_the_recipes_are_the_documented_ones():
    # compress's docstring: "pca" 3e-3, 2,000 steps, 1 start, 256 validation inputs;
    # "superposed" init_scale 0.3, margin_weight 100, 1e-2, 3 starts of 20,000 steps, 1,000
    assert RECIPES == {
        "pca": {"init": "pca", "init_scale": 1.0, "residual_weight": 1.0, "margin_weight": 0.0,
                "learning_rate": 3e-3, "steps": 2000, "restarts": 1, "validation_size": 256},
        "superposed": {"init": "random", "init_scale": 0.3, "residual_weight": 0.0,
                       "margin_weight": 100.0, "learning_rate": 1e-2, "steps": 20_000,
                       "restarts": 3, "validation_size": 1000}}


def test_the_recipe_turns_at_the_read_rank(frac_prevs):
    # docs/superposition.md: frac_prevs's residuals span 11 dimensions as the readers see them
    sample = sampler_for(frac_prevs, "frac_prevs")
    assert choose_recipe(frac_prevs, 11, sample) == ("pca", 11)
    assert choose_recipe(frac_prevs, 10, sample) == ("superposed", 11)


@pytest.mark.parametrize("kwargs,message", [
    ({"dim": "3"}, r"^dim must be a positive integer, got '3'$"),
    ({"dim": 2.0}, r"^dim must be a positive integer, got 2.0$"),
    ({"dim": -1}, r"^dim must be a positive integer, got -1$"),
    ({"dim": 15}, r"^dim 15 is wider than the model \(d_model 14\); compress to at most 14$"),
    ({"dim": 4, "recipe": "fast"}, r"^recipe must be 'auto', 'pca' or 'superposed', "
                                   r"got 'fast'$"),
    ({"dim": 4, "init": "zeros"}, r"^init must be 'random' or 'pca', got 'zeros'$"),
    ({"dim": 4, "restarts": 0}, r"^init_scale must be > 0, margin_weight ≥ 0 and restarts a "
                                r"positive integer; got 0.3, 100.0, 0$")])
def test_bad_options_are_refused_in_one_line(frac_prevs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compress(frac_prevs, progress=False, **kwargs)


def test_full_width_is_exact_at_once_and_the_summary_says_so(frac_prevs, capsys):
    # dim = d_model ≥ the read rank: the PCA recipe, exact before any step
    full = compress(frac_prevs, 14, learning_rate=0.5, residual_weight=0.25,
                    validation_size=16, example="frac_prevs")
    assert "compress to 14" in capsys.readouterr().err  # a progress bar by default
    assert full.training == {
        "recipe": "pca", "read_rank": 11,
        "settings": {"dim": 14, "steps": 2000, "batch_size": 64, "learning_rate": 0.5,
                     "seed": 0, "residual_weight": 0.25, "residual_metric": "reads",
                     "init": "pca", "feature_scales": True, "init_scale": 1.0,
                     "margin_weight": 0.0, "restarts": 1, "validation_size": 16,
                     "eval_every": 50, "numeric_tolerance": 1e-2},
        "steps_run": 0, "starts": 1, "kept_start": 1, "steps_all_starts": 0,
        "stopped_early": True, "first_loss": None, "final_loss": None,
        "validation": [[0, 1.0]]}


def test_exact_match_holds_numbers_to_the_tolerance(frac_prevs):
    """frac_prevs outputs fractions k/n (n ≤ 8); scaling the unembedding by 1.0045 moves
    each by 0.0045·value. Within 1e-2 every input agrees; within 1e-3 exactly those with
    some output above 2/9 do not (counted from the evaluator)."""
    scaled = CompressedModel(frac_prevs, np.eye(14))
    scaled.params["unembed"]["w"] = np.asarray(scaled.params["unembed"]["w"]) * 1.0045
    rng = random.Random(2)
    inputs = [EXAMPLES["frac_prevs"].sample(rng) for _ in range(40)]
    outputs = [rasp.evaluate(frac_prevs.program, xs) for xs in inputs]
    near = sum(all(0.0045 * v <= 0.95e-3 for v in out) for out in outputs) / len(inputs)
    assert 0.0 < near < 1.0 and all(all(not 0.95e-3 < 0.0045 * v < 1.05e-3 for v in out)
                                    for out in outputs)  # no value near the edge
    assert exact_match(scaled, inputs) == 1.0
    assert exact_match(scaled, inputs, tolerance=1e-3) == pytest.approx(near)
    assert exact_match(scaled, []) == 1.0


def test_exact_match_of_a_plain_model_is_against_the_evaluator(frac_prevs):
    damaged = CompiledModel({m: dict(w) for m, w in frac_prevs.params.items()},
                            frac_prevs.config, frac_prevs.residual_labels,
                            frac_prevs.components, list(frac_prevs.value_records.values()),
                            frac_prevs.program)
    damaged.params["unembed"] = {"w": np.asarray(frac_prevs.params["unembed"]["w"]) * 1.5}
    rng = random.Random(3)
    inputs = [EXAMPLES["frac_prevs"].sample(rng) for _ in range(30)]
    # wrong wherever some output is above 0.02 (an error of half of it passes 1e-2)
    right = sum(all(0.5 * v <= 1e-2 for v in rasp.evaluate(frac_prevs.program, xs))
                for xs in inputs) / len(inputs)
    assert right < 1.0
    assert exact_match(damaged, inputs) == pytest.approx(right)


def test_one_dimension_is_a_width(frac_prevs):
    narrow = compress(frac_prevs, 1, steps=0, validation_size=2, example="frac_prevs",
                      progress=False)
    assert narrow.dim == 1 and narrow.training["recipe"] == "superposed"


@pytest.mark.parametrize("name", ["reverse", "hist"])  # hist: a value written by the last MLP
def test_decode_intermediates_read_each_value_after_its_sublayer(name):
    model = example_model(name)
    same = CompressedModel(model, np.eye(model.config.d_model))
    tokens = ["BOS", *list(model.config.vocab)[:3]]
    assert same.decode_intermediates(tokens) == model.decode_intermediates(tokens)


def test_other_formats_export_the_narrow_transformer(tmp_path):
    narrow = CompressedModel(example_model("reverse"), keep(20, *range(7)))
    narrow.save(tmp_path / "tl", "seven of twenty", format="safetensors")
    assert '"d_model": 7' in (tmp_path / "tl" / "config.json").read_text()
    assert "seven of twenty" in (tmp_path / "tl" / "rasp_model.json").read_text()


def test_a_changed_file_is_refused_unless_told_not_to_check(frac_prevs, tmp_path):
    CompressedModel(frac_prevs, keep(14, 0, 1)).save(tmp_path / "n.npz")
    with np.load(tmp_path / "n.npz") as saved:
        arrays = {name: saved[name] for name in saved.files}
    unembed = next(name for name in arrays if "unembed" in name)
    arrays[unembed] = arrays[unembed] * 2
    np.savez(tmp_path / "n.npz", **arrays)
    with pytest.raises(ModelFileError):
        CompressedModel.load(tmp_path / "n.npz")
    assert CompressedModel.load(tmp_path / "n.npz", verify=False).dim == 2


def test_validation_inputs_come_from_the_examples_sampler():
    """sort_unique's sampler draws distinct tokens; the score recorded at step 0 is the
    share of such inputs the start gets right (drawn again here from the seed plus
    compress's offset 1,000,003), not of uniform ones."""
    model = example_model("sort_unique")
    narrow = compress(model, 25, recipe="pca", steps=0, validation_size=64, seed=3,
                      example="sort_unique", progress=False)
    score = narrow.training["validation"][0][1]
    drawn = {}
    for name in ("sort_unique", None):
        sample, rng = sampler_for(model, name), random.Random(3 + 1_000_003)  # seed + offset
        drawn[name] = exact_match(narrow, [sample(rng) for _ in range(64)])
    assert 0.0 < score == pytest.approx(drawn["sort_unique"]) and score != drawn[None]


def test_exact_match_without_a_program_is_against_the_original():
    model = example_model("reverse")
    bare = CompiledModel(model.params, model.config, model.residual_labels, model.components,
                         list(model.value_records.values()))
    lossy = CompressedModel(bare, keep(20, *range(9), *range(10, 20)))  # drops tokens:c
    rng = random.Random(6)
    inputs = [EXAMPLES["reverse"].sample(rng, 5) for _ in range(40)]
    batch = [["BOS", *xs] for xs in inputs]
    want = np.mean([a == b for a, b in zip(lossy.apply_batch(batch), bare.apply_batch(batch))])
    assert 0.0 < want < 1.0
    assert exact_match(lossy, inputs) == pytest.approx(want)


def test_layer_cosines_do_not_depend_on_the_scale_of_w(frac_prevs):
    """At the embeddings z = x·Wᵀ, so z·W = 0.01·x on the kept coordinates: the cosine
    with x is |x_kept| / |x| per position, however small W is."""
    kept = [0, 2, 3, 7]
    inputs = [["x", "y"], ["z", "z", "x"], ["y"]]
    got = layer_cosines(CompressedModel(frac_prevs, 0.1 * keep(14, *kept)), inputs)[0]
    ratios = []
    for xs in inputs:
        x = np.asarray(frac_prevs.apply(["BOS", *xs]).residuals[0], np.float64)[1:]
        ratios.extend(np.linalg.norm(x[:, kept], axis=-1) / np.linalg.norm(x, axis=-1))
    assert got == pytest.approx(float(np.mean(ratios)), abs=1e-5)


def test_an_examples_sampler_keeps_to_the_models_length_and_vocab():
    small = compile_rasp_to_model(EXAMPLES["frac_prevs"].build(4), ["x", "y"], 4)
    sample, rng = sampler_for(small, "frac_prevs"), random.Random(0)
    drawn = [sample(rng) for _ in range(200)]
    assert {len(xs) for xs in drawn} == {1, 2, 3, 4}
    assert {x for xs in drawn for x in xs} == {"x", "y"}


def test_every_setting_given_reaches_the_training(frac_prevs, capsys):
    full = compress(frac_prevs, 14, batch_size=5, seed=3, residual_metric="euclidean",
                    feature_scales=False, eval_every=7, numeric_tolerance=0.05,
                    validation_size=4, progress=False)
    assert capsys.readouterr().err == ""
    settings = full.training["settings"]
    assert (settings["batch_size"], settings["seed"], settings["residual_metric"],
            settings["feature_scales"], settings["eval_every"],
            settings["numeric_tolerance"]) == (5, 3, "euclidean", False, 7, 0.05)


def test_first_and_final_loss_of_a_single_step(frac_prevs):
    """One step: both losses are the start's loss on the first batch, recomputed here with
    make_loss (the superposed recipe: W = 0.3 × the random rows, residual weight 0,
    hinge 100; the batch drawn from random.Random(seed))."""
    import jax

    from interp.compress_fold import initial_projection
    from interp.compress_train import encode_batch, make_loss
    one = compress(frac_prevs, 3, steps=1, batch_size=4, validation_size=4, seed=2,
                   example="frac_prevs", progress=False)
    training = one.training
    assert (training["recipe"], training["steps_run"]) == ("superposed", 1)
    rng, sample = random.Random(2), sampler_for(frac_prevs, "frac_prevs")
    ids, valid = encode_batch(frac_prevs, [sample(rng) for _ in range(4)])
    start = 0.3 * initial_projection(jax.random.PRNGKey(2), 3, 14)
    want = float(jax.jit(make_loss(frac_prevs, 3, 0.0, "reads", 100.0, 1e-2))(start, ids, valid))
    assert training["first_loss"] == pytest.approx(want, rel=1e-5)
    assert training["final_loss"] == pytest.approx(want, rel=1e-5)
