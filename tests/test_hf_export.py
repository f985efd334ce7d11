"""The Hugging Face GPT-2 export (interp.hf_export, `raspc export --format hf`).

Causal LayerNorm models at N = 5. Expected values come from our own forward (the
model the export must agree with) and from the reference evaluator, never from the
export. The loading test runs in an interpreter that cannot import our packages
(`python -I -S`, cwd outside the repo, only site-packages on its path) and offline.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.hf_export import save_hf
from rasp.errors import ModelFileError
from rasp.evaluate import evaluate
from raspc import cli
from rasp_runtime.forward import hook_names
from rasp_runtime.model import CompiledModel

N = 5
TOLERANCE = 1e-5  # of the largest entry, at every hook
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def ln_model(name: str, form: str = "per-position") -> CompiledModel:
    example = EXAMPLES[name]
    shape = {"form": form} if form == "completion" else {"causal": True}
    return compile_rasp_to_model(example.build(N), set(example.vocab), N, layer_norm=True,
                                 **shape)


def inputs(name: str, count: int, seed: int = 0) -> list[list]:
    """`count` valid inputs of length N (one length: each forward traces once)."""
    rng = random.Random(seed)
    example = EXAMPLES[name]
    return [example.sampler(rng, list(example.vocab), N) for _ in range(count)]


@pytest.fixture(scope="module", autouse=True)
def offline():
    saved = {k: os.environ.get(k) for k in OFFLINE}
    os.environ.update(OFFLINE)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def dyck1(tmp_path_factory):
    model = ln_model("dyck1")
    directory = tmp_path_factory.mktemp("hf") / "dyck1"
    save_hf(model, directory)
    return model, directory


def _ours(model, batch, hooks=None):
    """Our forward's outputs on token lists of one length, and the ids fed to it."""
    ids = np.array([model.input_encoder.encode([model.config.bos, *xs]) for xs in batch],
                   np.int32)
    return model.forward.apply(model.params, ids, np.ones_like(ids, bool), hooks), ids


@pytest.mark.parametrize("name", ["previous_token", "first_occurrence", "dyck1"])
def test_logits_equal_ours_and_argmax_is_the_programs_output(name):
    model = ln_model(name)
    hf = model.to_hf()
    tokenizer_vocab = {i: t for t, i in _tokens_of(hf, model).items()}
    output_ids = [_id_of(hf, model, value) for value in model.config.output_values]
    batch = inputs(name, 8)
    out, ids = _ours(model, batch)
    ours = np.asarray(out["output"])
    with torch.no_grad():
        logits = hf(torch.from_numpy(ids).long()).logits.numpy()
    np.testing.assert_allclose(logits[..., output_ids], ours,
                               atol=TOLERANCE * np.abs(ours).max())  # of the largest entry
    for xs, row in zip(batch, logits):
        expected = evaluate(model.program, xs, causal=True)
        got = [tokenizer_vocab[i] for i in row.argmax(-1)[1:]]
        assert [g for g, e in zip(got, expected) if e is not None] == \
            [str(e) for e in expected if e is not None], xs


def _tokens_of(hf, model) -> dict[str, int]:
    from interp.hf_tokens import token_table
    table = token_table(model.config)
    assert hf is None or len(table.tokens) == hf.config.vocab_size
    return table.vocab


def _id_of(hf, model, value) -> int:
    return _tokens_of(hf, model)[str(value)]


def test_every_layers_residual_and_outputs_through_nnsight_equal_ours(dyck1):
    from nnsight import LanguageModel

    model, directory = dyck1
    # nnsight 0.8.1 cannot find the tokenizer of a local directory with transformers 5.24
    # by itself (it reads the pipeline class as a string); it is passed in.
    lm = LanguageModel(str(directory), tokenizer=AutoTokenizer.from_pretrained(directory))
    d, layers = model.config.d_model, len(model.config.layers)
    batch = inputs("dyck1", 3, seed=1)
    saved = {}
    with lm.trace([" ".join([model.config.bos, *xs]) for xs in batch]):
        for i in range(layers):
            block = lm.transformer.h[i]
            # nnsight 0.8 reads modules in the order they run
            saved[f"blocks.{i}.hook_resid_pre"] = block.input.save()
            if model.config.layers[i].num_heads:
                saved[f"blocks.{i}.hook_attn_out"] = block.attn.output[0].save()
            saved[f"blocks.{i}.hook_resid_mid"] = block.ln_2.input.save()
            if model.config.layers[i].mlp_hidden:
                saved[f"blocks.{i}.hook_mlp_out"] = block.mlp.output.save()
            saved[f"blocks.{i}.hook_resid_post"] = block.output.save()
        logits = lm.lm_head.output.save()
    ours = {}
    _ours(model, batch, {name: (lambda name: lambda x: ours.setdefault(name, x) is None or x)(
        name) for name in saved})
    assert len(ours) == len(saved) >= 3 * layers + 2
    output_ids = [_id_of(None, model, value) for value in model.config.output_values]
    ours["unembed.hook_out"] = _ours(model, batch)[0]["output"]
    saved["unembed.hook_out"] = logits[..., output_ids]
    for name, theirs in saved.items():
        theirs, expected = theirs.detach().numpy(), np.asarray(ours[name])
        scale = np.abs(expected).max()  # the largest entry
        np.testing.assert_allclose(theirs[..., :d], expected, atol=TOLERANCE * scale,
                                   err_msg=name)
        if name.startswith("blocks."):  # padding coordinates stay zero
            assert np.abs(theirs[..., d:]).max() <= TOLERANCE * scale, name


_LOADER = r"""
import json, sys
try:
    import compiler
except ImportError:
    pass
else:
    raise SystemExit("our package is importable here: " + compiler.__file__)
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

results = {}
for directory, mode, prompts in json.loads(sys.argv[1]):
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")
        generated = model.generate(**ids)[0, ids["input_ids"].shape[1]:]
        if mode == "argmax":  # per position: the logits' argmax; generate's is the last one's
            with torch.no_grad():
                best = model(**ids).logits[0].argmax(-1)
            assert generated[0] == best[-1], (generated, best)
            generated = best[1:]
        out.append(tokenizer.convert_ids_to_tokens(generated.tolist()))
    results[directory] = out
print(json.dumps(results))
"""


def test_a_process_without_our_packages_loads_and_runs_the_export(dyck1, tmp_path):
    model, per_position = dyck1
    completion = tmp_path / "reverse"
    save_hf(ln_model("reverse", form="completion"), completion)
    dyck_inputs = inputs("dyck1", 4, seed=2)
    reverse_inputs = [xs[:(N - 1) // 2] for xs in inputs("reverse", 4, seed=3)]
    jobs = [[str(per_position), "argmax", [" ".join(["BOS", *xs]) for xs in dyck_inputs]],
            [str(completion), "generate", [" ".join(["BOS", *xs, "SEP"])
                                           for xs in reverse_inputs]]]
    site = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    script = "import sys; sys.path[:0] = %r\n" % sorted(site) + _LOADER
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script, json.dumps(jobs)],
                            cwd=tmp_path, env={**env, **OFFLINE}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    for xs, tokens in zip(dyck_inputs, got[str(per_position)]):
        expected = evaluate(model.program, xs, causal=True)
        assert [t for t, e in zip(tokens, expected) if e is not None] == \
            [str(e) for e in expected if e is not None]
    reverse = EXAMPLES["reverse"].build(N)
    for xs, tokens in zip(reverse_inputs, got[str(completion)]):
        assert tokens == [str(y) for y in evaluate(reverse, xs)] + ["EOS"], xs


def test_exporting_twice_gives_identical_files(dyck1, tmp_path):
    model, first = dyck1
    save_hf(model, tmp_path)
    for name in ("model.safetensors", "config.json", "tokenizer.json",
                 "generation_config.json", "ground_truth.json"):
        assert (tmp_path / name).read_bytes() == (first / name).read_bytes(), name


def test_the_ground_truth_names_each_hooks_module_in_the_hf_model(dyck1):
    model, directory = dyck1
    truth = json.loads((directory / "ground_truth.json").read_text())
    modules = dict(model.to_hf().named_modules())
    assert set(truth["hf_modules"]) == set(hook_names(model.config))
    for hook, place in truth["hf_modules"].items():
        assert place["module"] in modules, hook
    assert truth["hf_modules"]["blocks.1.hook_resid_post"] == {
        "module": "transformer.h.1", "read": "output"}
    assert truth["hf_modules"]["blocks.0.hook_resid_mid"] == {
        "module": "transformer.h.0.ln_2", "read": "input"}
    assert truth["components"] == json.loads(model.ground_truth.to_json())["components"]


def test_the_export_loads_back_as_our_model(tmp_path):
    model = ln_model("previous_token")
    save_hf(model, tmp_path)
    loaded = CompiledModel.load(tmp_path)
    batch = [["BOS", *xs] for xs in inputs("previous_token", 4, seed=4)]
    assert loaded.apply_batch(batch) == model.apply_batch(batch)


@pytest.mark.parametrize("shape, fragment", [
    ({"causal": False, "layer_norm": True}, "causal"),
    ({"causal": True, "layer_norm": False}, "LayerNorm"),
])
def test_models_gpt2_cannot_run_are_refused_in_one_line(shape, fragment):
    example = EXAMPLES["previous_token"]
    model = compile_rasp_to_model(example.build(N), set(example.vocab), N, **shape)
    with pytest.raises(ModelFileError, match=fragment) as error:
        model.to_hf()
    assert "layer_norm=True" in str(error.value) and "\n" not in str(error.value)


def test_a_numerical_output_is_refused():
    example = EXAMPLES["frac_prevs"]
    model = compile_rasp_to_model(example.build(N), set(example.vocab), N, causal=True,
                                  layer_norm=True)
    with pytest.raises(ModelFileError, match="numerical"):
        model.to_hf()


def test_raspc_export_hf_refuses_a_model_without_layer_norm(tmp_path, capsys):
    assert cli.main(["export", "previous_token", "--causal", "--format", "hf",
                     "-o", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip()
    assert "--layer-norm" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_raspc_export_hf_writes_a_saved_model(tmp_path, capsys):
    ln_model("first_occurrence").save(tmp_path / "m.npz")
    assert cli.main(["export", str(tmp_path / "m.npz"), "--format", "hf",
                     "-o", str(tmp_path / "out")]) == 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
            "ground_truth.json"} <= names
    assert "config.json" in capsys.readouterr().out


def test_without_transformers_the_export_names_the_extra(monkeypatch):
    from interp.extras import MissingExtraError

    model = ln_model("previous_token")
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"rasp-compiler\[hf\]"):
        model.to_hf()


def test_a_residual_that_does_not_sum_to_zero_is_refused():
    """GPT-2's LayerNorm centres over the padded width: only a mean-zero residual (the
    compiler's balance coordinate) gives the same centring as ours."""
    model = ln_model("previous_token")
    params = {k: dict(v) for k, v in model.params.items()}
    params["pos_embed"]["embeddings"] = np.asarray(params["pos_embed"]["embeddings"]) + 1.0
    unbalanced = CompiledModel(params, model.config, model.residual_labels,
                               model.components, model.value_records.values())
    with pytest.raises(ModelFileError, match="pos_embed/embeddings .* sum to zero"):
        unbalanced.to_hf()
