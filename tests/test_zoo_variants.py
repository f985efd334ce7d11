"""Realism variants in the zoo, and the `sae` dictionary method of `raspc zoo bench`.

A 4-model zoo (reverse and hist at N = 3, variants rotate and soft-attention) is
built once through the command line. Expected outputs come from the evaluator, the
rotation is checked against a plain model compiled here, knob seeds against the
documented rule, and the SAE's score against random unit vectors sampled here.
Benches run in-process (`workers=1`), without Ray.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.zoo.bench import bench_zoo, read_results
from raspc.cli import main
from rasp_runtime.model import CompiledModel
from rasp_runtime.verify import outputs_agree

SEED = 3
BUILD = ["--examples", "reverse,hist", "--lengths", "3", "--variants", "rotate,soft-attention",
         "--seed", str(SEED), "--recheck-truth", "--no-progress"]
HARD_GAP = 100.0  # the logit gap of a hard-attention head (compile_rasp_to_model's docstring)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("variants")
    with pytest.MonkeyPatch.context() as patch:  # capsys is per test, not per module
        patch.setattr("builtins.print", lambda *a, **k: None)
        assert main(["zoo", "build", str(out), *BUILD]) == 0
    return out


def manifest(out) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_each_variant_is_kept_with_its_knob_and_parameters(zoo):
    rows = {r["id"]: r for r in manifest(zoo)}
    assert list(rows) == [f"lib-{name}-n3-{variant}" for name in ("reverse", "hist")
                          for variant in ("rotate", "soft-attention")]
    for model_id, row in rows.items():
        knob = row["knobs"][0]
        assert len(row["knobs"]) == 1 and row["verification"]["mismatches"] == 0
        if row["variant"] == "rotate":  # seed: sha256("{zoo seed}:{model id}"), 4 bytes
            seed = int.from_bytes(hashlib.sha256(f"{SEED}:{model_id}".encode()).digest()[:4],
                                  "big")
            assert knob == {"knob": "rotate", "seed": seed, "block": row["d_model"]}
            assert row["truth_recheck"]["failures"] == 0 and row["truth_recheck"]["edges"] > 0
        else:  # a compile-time variant: its truth is the compiler's, not re-checked
            assert "truth_recheck" not in row
            assert knob["knob"] == "soft_attention" and knob["gaps"]
            assert all(0 < gap < HARD_GAP for gap in knob["gaps"].values())


def test_each_variant_model_loads_and_is_exact_on_its_dataset(zoo):
    for row in manifest(zoo):
        model = CompiledModel.load(zoo / row["id"])  # checks every file's checksum
        program = EXAMPLES[row["family"]].build(row["max_seq_len"])
        pairs = json.loads((zoo / row["id"] / "dataset.json").read_text())["pairs"]
        inputs = [p[side] for p in pairs for side in ("clean", "corrupted")]
        for xs, decoded in zip(inputs, model.apply_batch([["BOS", *xs] for xs in inputs])):
            expected = rasp.evaluate(program, xs, causal=row["causal"])
            assert outputs_agree(expected, decoded[1:]), (row["id"], xs, expected, decoded)


def test_a_rotated_model_has_its_truth_off_the_axes_and_in_its_weights(zoo):
    for name in ("reverse", "hist"):
        model = CompiledModel.load(zoo / f"lib-{name}-n3-rotate")
        example = EXAMPLES[name]
        plain = compile_rasp_to_model(example.build(3), set(example.vocab), 3,
                                      causal=example.causal)
        basis = np.asarray(model.ground_truth.direction_vectors())
        np.testing.assert_allclose(basis @ basis.T, np.eye(len(basis)), atol=1e-9)
        assert np.abs(basis).max() < 1 - 1e-3  # no named direction is a coordinate axis
        for table in ("token_embed", "pos_embed"):  # the plain writes, moved by the basis
            np.testing.assert_allclose(model.params[table]["embeddings"],
                                       plain.params[table]["embeddings"] @ basis, atol=1e-6)


def test_a_rotated_models_features_are_scored_where_the_rotation_put_them(zoo):
    from interp.compress_truth import CompressedGroundTruth, score_dictionary

    model = CompiledModel.load(zoo / "lib-reverse-n3-rotate")
    truth = model.ground_truth
    view = CompressedGroundTruth.viewed_through(truth, np.eye(model.config.d_model))
    layer = len(model.config.layers)
    basis = np.asarray(truth.direction_vectors())
    assert score_dictionary(view, basis, layer).recovered == 1.0
    axes = score_dictionary(view, np.eye(model.config.d_model), layer)
    assert axes.recovered == 0.0 and axes.mean_max_cosine < 0.9


def test_a_variant_its_knob_refuses_is_counted_with_the_reason(tmp_path, capsys):
    # perturb refuses rasp_sort at N = 6 (d_model 45) at any noise scale (docs/realism.md)
    assert main(["zoo", "build", str(tmp_path), "--examples", "rasp_sort", "--lengths", "6",
                 "--variants", "perturb", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("0 models in ") and "1 refused" in printed
    refused = [json.loads(line) for line in (tmp_path / "refused.jsonl").read_text().splitlines()]
    assert [r["id"] for r in refused] == ["lib-rasp_sort-n6-perturb"]
    assert refused[0]["reason"].startswith("refused by the perturb knob: perturb cannot keep "
                                           "this model exact at any noise scale")
    assert json.loads((tmp_path / "build.json").read_text())["refused"] == {
        refused[0]["reason"]: 1}
    assert (tmp_path / "manifest.jsonl").read_text() == ""
    assert not (tmp_path / "lib-rasp_sort-n6-perturb").exists()


def random_max_cosine(dim: int, candidates: int, trials: int = 4000) -> float:
    """Mean over trials of the best cosine of `candidates` random unit vectors with a
    fixed unit vector in R^dim, by sampling."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((trials, candidates, dim))
    cosines = vectors[..., 0] / np.linalg.norm(vectors, axis=-1)
    return float(cosines.max(axis=1).mean())


def test_sae_method_scores_above_random_directions_in_a_table_of_its_own(zoo, tmp_path):
    summary = bench_zoo(zoo, ["eap", "sae"], granularities=["component", "sp_hooks"],
                        workers=1, limit=2, out=tmp_path, progress=False)
    assert summary.ran == 2 * 2 + 2  # the sae cell is one per model, whatever granularity
    rows = [r for r in read_results(tmp_path) if r["method"] == "sae"]
    assert sorted(r["cell"] for r in rows) == [f"lib-reverse-n3-{v}|sae|residual"
                                              for v in ("rotate", "soft-attention")]
    for row in rows:
        assert row["status"] == "ok", row["error"]
        assert row["latents"] == 2 * row["features"] and row["features"] >= 3
        random_score = random_max_cosine(row["dim"], row["latents"])
        assert abs(row["random_mean_max_cosine"] - random_score) < 0.01
        assert row["mean_max_cosine"] > random_score + 0.03, row
        assert 0 <= row["recovered"] <= 1
    board = (tmp_path / "leaderboard.md").read_text()
    auroc, dictionary = board.split("Dictionary methods:")
    assert "| eap | 4 |" in auroc and "| sae" not in auroc
    assert "| sae | all | 2 | 0 |" in dictionary and "| eap" not in dictionary


def test_build_help_lists_every_variant(capsys):
    with pytest.raises(SystemExit):
        main(["zoo", "build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for variant in ("plain", "rotate", "permute-neurons", "perturb", "soft-attention",
                    "layer-norm"):
        assert f"{variant}:" in text
