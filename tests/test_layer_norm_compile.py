"""compile_rasp_to_model(..., layer_norm=True): pre-LN models that agree with the evaluator.

Every library example compiles exactly at N = 5 (at its default size in the slow set);
the model has the balance and mean-probe coordinates, a power-of-four epsilon with gain
√eps, and every residual sums to (nearly) zero; a reader whose tolerance cannot absorb
the LayerNorm's error is refused by name.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import rasp
from compiler import CompileError, compile_rasp_to_model
from examples.library import EXAMPLES
from rasp_runtime.forward import hook_names
from rasp_runtime.interventions import run_batch
from rasp_runtime.model import CompiledModel
from tests.helpers import assert_compiles_exactly


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_is_exact_with_layer_norm(name):
    example = EXAMPLES[name]
    model, _ = assert_compiles_exactly(example, 5, causal=example.causal, random_count=100,
                                       layer_norm=True)
    assert model.config.normalization == "layernorm"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_is_exact_with_layer_norm_at_its_default_size(name):
    example = EXAMPLES[name]
    assert_compiles_exactly(example, example.max_seq_len, causal=example.causal,
                            random_count=200, layer_norm=True)


def test_the_layer_norm_model_is_the_plain_one_balanced():
    example = EXAMPLES["sort"]
    plain = compile_rasp_to_model(example.build(5), example.vocab, 5)
    model = compile_rasp_to_model(example.build(5), example.vocab, 5, layer_norm=True)
    eps = model.config.layer_norm_eps
    assert model.residual_labels[-2:] == ["balance", "mean_probe"]
    assert math.log(eps, 4) == round(math.log(eps, 4))
    for name in ("transformer/layer_1/ln_1", "transformer/ln_final"):
        assert (model.params[name]["scale"] == np.float32(math.sqrt(eps))).all()
        assert not model.params[name]["offset"].any()
    assert plain.config.normalization == "none" and "balance" not in plain.residual_labels
    rng = random.Random(0)
    batch = [["BOS", *example.sample(rng, 5)] for _ in range(20)]
    run = run_batch(model, batch)
    for residual in run["residuals"]:
        sums = np.abs(np.asarray(residual, np.float64).sum(axis=-1))
        assert sums.max() <= model.layer_norm_proof.residual_sum
        assert not np.asarray(residual)[..., -1].any()  # nothing writes the mean probe
    assert model.apply_batch(batch) == plain.apply_batch(batch)


def test_hook_scale_is_nearly_constant():
    example = EXAMPLES["hist"]
    model = compile_rasp_to_model(example.build(5), example.vocab, 5, layer_norm=True)
    scales = []
    hooks = {name: (lambda x: scales.append(np.asarray(x)) or x)
             for name in hook_names(model.config) if name.endswith("hook_scale")}
    ids = model.input_encoder.encode_batch([["BOS", "a", "b", "a"]], 6)
    model.forward.apply(model.params, ids, ids != ids.max(), hooks)
    assert scales and all(np.allclose(s, math.sqrt(model.config.layer_norm_eps), rtol=1e-6)
                          for s in scales)


def test_a_reader_that_cannot_absorb_the_layer_norm_is_named():
    scaled = rasp.numerical(rasp.Map(lambda x: 8 * x, rasp.tokens))
    mean = rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE), scaled, default=0))
    mean = mean.named("mean_of_eights")
    compile_rasp_to_model(mean, [1, 2, 3, 4, 5], 5)  # plain: within budget
    with pytest.raises(CompileError, match="mean_of_eights.*LayerNorm"):
        compile_rasp_to_model(mean, [1, 2, 3, 4, 5], 5, layer_norm=True)


def test_layer_norm_must_be_a_bool():
    with pytest.raises(CompileError, match="layer_norm must be True or False"):
        compile_rasp_to_model(rasp.tokens, [1, 2], 3, layer_norm="yes")


def test_raspc_compile_and_export_take_layer_norm(tmp_path, capsys):
    from raspc import cli
    from rasp_runtime.serialize import load_model

    path = tmp_path / "hist.npz"
    assert cli.main(["compile", "hist", "--max-seq-len", "5", "--layer-norm",
                     "-o", str(path)]) == 0
    assert "LayerNorm:" in capsys.readouterr().out
    assert load_model(path).config.normalization == "layernorm"
    assert cli.main(["export", "hist", "--max-seq-len", "5", "--layer-norm",
                     "-o", str(tmp_path / "tl")]) == 0
    assert load_model(tmp_path / "tl").config.normalization == "layernorm"
    capsys.readouterr()
    assert cli.main(["export", str(path), "--layer-norm", "-o", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--layer-norm, --prefer and --no-fuse apply when compiling" in error


def _mean_of_ones(name):
    """For each query token q: the share of tokens ≤ q that are 1, named `name`."""
    is_one = rasp.numerical(rasp.Map(lambda t: t == 1, rasp.tokens))
    select = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LEQ)
    return rasp.numerical(rasp.Aggregate(select, is_one, default=0)).named(name)


@pytest.mark.parametrize("name", ["one", "bos", "balance", "mean_probe"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_an_sop_named_like_a_special_direction_keeps_its_own(name, layer_norm, tmp_path):
    # Worked by hand on [1, 2, 1]: query 1 sees the two 1s (share 1), query 2 sees all
    # three tokens (share 2/3). An SOp called `one` once shared the constant direction
    # and read 2, 5/3, 2; an LN model with an SOp called `balance` would not load.
    model = compile_rasp_to_model(_mean_of_ones(name), [1, 2], 3, layer_norm=layer_norm)
    assert len(set(model.residual_labels)) == len(model.residual_labels)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = CompiledModel.load(path)
    got = loaded.apply(["BOS", 1, 2, 1]).decoded[1:]
    assert got == pytest.approx([1.0, 2 / 3, 1.0], abs=1e-4)
