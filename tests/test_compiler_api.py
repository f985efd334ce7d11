"""The compiler's public contract: parameters, CompiledModel, errors, determinism."""

import hashlib
import os
import random
import subprocess
import sys

import haiku as hk
import jax
import numpy as np
import pytest

import rasp
from compiler import CompiledModel, CompileError, InputError, compile_rasp_to_model
from examples import programs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def reverse_model():
    return compile_rasp_to_model(programs.make_reverse(rasp.tokens), {"a", "b", "c"}, 6)


def test_parameter_names_follow_haiku_conventions(reverse_model):
    names = set(reverse_model.params)
    assert {"token_embed", "pos_embed", "unembed"} <= names
    for i, layer in enumerate(reverse_model.config.layers):
        prefix = f"transformer/layer_{i}"
        if layer.num_heads:
            assert {f"{prefix}/attn/{n}" for n in ("query", "key", "value", "linear")} <= names
        if layer.mlp_hidden:
            assert {f"{prefix}/mlp/linear_1", f"{prefix}/mlp/linear_2"} <= names
    assert not any("norm" in n for n in names)


def test_params_match_the_haiku_module_structure(reverse_model):
    config = reverse_model.config
    ids = np.zeros((1, config.max_seq_len + 1), np.int32)
    fresh = reverse_model.forward.init(jax.random.PRNGKey(0), ids, ids == 0)
    shapes = jax.tree_util.tree_map(np.shape, fresh)
    assert shapes == jax.tree_util.tree_map(np.shape, hk.data_structures.to_mutable_dict(
        reverse_model.params))


def test_apply_gives_bos_decoded_residuals_and_logits(reverse_model):
    out = reverse_model.apply(["BOS", "a", "b", "c"])
    assert out.decoded == ["BOS", "c", "b", "a"]
    layers = len(reverse_model.config.layers)
    assert len(out.residuals) == 2 * layers + 1 and len(out.layer_outputs) == 2 * layers
    assert all(r.shape == (4, reverse_model.config.d_model) for r in out.residuals)
    for layer, logits in zip(reverse_model.config.layers, out.attn_logits):
        assert (logits is None) == (layer.num_heads == 0)
        if logits is not None:
            assert logits.shape == (layer.num_heads, 4, 4)
    assert len(reverse_model.residual_labels) == reverse_model.config.d_model
    assert reverse_model.residual_labels[:2] == ["one", "bos"]


def test_apply_batch_agrees_with_apply_on_mixed_lengths(reverse_model):
    rng = random.Random(0)
    batch = [["BOS"] + [rng.choice("abc") for _ in range(rng.randint(1, 6))] for _ in range(40)]
    assert reverse_model.apply_batch(batch) == [reverse_model.apply(xs).decoded for xs in batch]


def test_apply_batch_is_jitted_once_per_model(reverse_model):
    batch = [["BOS", "a"], ["BOS", "b", "c"]]
    reverse_model.apply_batch(batch)
    before = reverse_model._jitted_outputs._cache_size()
    reverse_model.apply_batch([["BOS", "c", "c"], ["BOS", "a", "b", "a"]])
    assert reverse_model._jitted_outputs._cache_size() == before


@pytest.mark.parametrize("tokens, message", [
    (["BOS", "a", "z"], "not in the vocabulary"),
    (["a", "b"], "BOS"),
    (["BOS"] + ["a"] * 7, "max_seq_len"),
    ("BOS a", "list"),
])
def test_bad_input_raises_input_error(reverse_model, tokens, message):
    with pytest.raises(InputError, match=message):
        reverse_model.apply(tokens)
    with pytest.raises(InputError):
        reverse_model.apply_batch([["BOS", "a"], tokens])


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab": {"a", "BOS"}}, "compiler_bos"),
    ({"vocab": {"a", "PAD"}}, "compiler_pad"),
    ({"vocab": set()}, "empty"),
    ({"max_seq_len": 0}, "max_seq_len"),
])
def test_bad_compile_arguments_raise_compile_error(kwargs, message):
    arguments = {"program": rasp.tokens, "vocab": {"a"}, "max_seq_len": 3, **kwargs}
    with pytest.raises(CompileError, match=message):
        compile_rasp_to_model(**arguments)


def test_length_cannot_be_compiled_causally():
    with pytest.raises(CompileError, match="causal") as error:
        compile_rasp_to_model(rasp.length + 0, {"a"}, 4, causal=True)
    assert error.value.label == "length" and "SelectorWidth" in error.value.hint


def test_length_is_a_primitive():
    model = compile_rasp_to_model(rasp.length, {"a", "b"}, 7)
    for n in range(1, 8):
        assert model.apply(["BOS"] + ["a"] * n).decoded == ["BOS"] + [n] * n


def test_selector_program_is_refused():
    with pytest.raises(CompileError, match="SOp"):
        compile_rasp_to_model(rasp.Select(rasp.tokens, rasp.tokens, rasp.EQ), {"a"}, 3)


def test_decoded_values_keep_their_types():
    ints = compile_rasp_to_model(rasp.tokens + 1, {1, 2}, 3).apply(["BOS", 1, 2]).decoded
    assert ints[1:] == [2, 3] and all(type(v) is int for v in ints[1:])
    bools = compile_rasp_to_model(rasp.tokens == 1, {1, 2}, 3).apply(["BOS", 1, 2]).decoded
    assert bools[1:] == [True, False] and all(type(v) is bool for v in bools[1:])
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.LEQ),
                                         rasp.numerical(rasp.tokens), default=0))
    floats = compile_rasp_to_model(mean, {1, 2}, 3).apply(["BOS", 1, 2]).decoded
    assert all(type(v) is float for v in floats[1:])
    assert floats[1:] == pytest.approx([1.0, 1.5], abs=1e-5)


def test_none_decodes_as_none():
    shifted = programs.make_shift_by(1, rasp.tokens)
    model = compile_rasp_to_model(shifted, {"a", "b"}, 4)
    assert model.apply(["BOS", "a", "b", "b"]).decoded == ["BOS", None, "a", "b"]


def _params_digest(model: CompiledModel) -> str:
    digest = hashlib.sha256()
    for name in sorted(model.params):
        for key in sorted(model.params[name]):
            digest.update(name.encode() + key.encode() + model.params[name][key].tobytes())
    return digest.hexdigest()


def test_compilation_is_deterministic_in_process():
    build = lambda: programs.make_sort_freq(6)  # noqa: E731
    first = compile_rasp_to_model(build(), {"a", "b", "c"}, 6)
    second = compile_rasp_to_model(build(), {"c", "b", "a"}, 6)
    assert _params_digest(first) == _params_digest(second)
    assert first.residual_labels == second.residual_labels


def test_compilation_is_deterministic_across_hash_seeds():
    script = ("import rasp, hashlib; from compiler import compile_rasp_to_model; "
              "from examples import programs; "
              "from tests.test_compiler_api import _params_digest; "
              "m = compile_rasp_to_model(programs.make_sort_freq(5), {'x','y','z','w'}, 5); "
              "print(_params_digest(m))")
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": ROOT}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env=env, cwd=ROOT, check=True)
        digests.add(result.stdout.strip())
    assert len(digests) == 1


@pytest.mark.parametrize("program_name", ["length", "hist"])
def test_exact_at_256_positions(program_name):
    program = programs.make_length() if program_name == "length" else programs.make_hist()
    model = compile_rasp_to_model(program, {"a", "b", "c"}, 256)
    rng = random.Random(7)
    lengths = [1, 2, 9, 10, 11, 64, 128, 200, 255, 256] + [rng.randint(1, 256) for _ in range(40)]
    batch = [[rng.choice("abc") for _ in range(n)] for n in lengths]
    decoded = model.apply_batch([["BOS", *xs] for xs in batch])
    for xs, out in zip(batch, decoded):
        assert out[1:] == rasp.evaluate(program, xs)


def test_a_block_too_large_to_build_is_refused_by_name():
    # 140 tokens × 140 positions: a lookup with 19,600 units and 19,600 outputs.
    pair = rasp.SequenceMap(lambda x, i: x * 140 + i, rasp.tokens, rasp.indices).named("pair")
    with pytest.raises(CompileError, match="weight matrix") as caught:
        compile_rasp_to_model(pair, range(140), 140)
    assert caught.value.label == "pair" and "distinct values" in caught.value.hint


def test_a_model_too_large_to_assemble_is_refused(monkeypatch):
    import craft.bases
    # The lookup's own matrices are 31 × 30 and 30 × 30; the residual stream is wider.
    monkeypatch.setattr(craft.bases, "MAX_MATRIX_ENTRIES", 1000)
    program = rasp.Map(lambda t: (t + 1) % 30, rasp.tokens).named("next")
    with pytest.raises(CompileError, match="assembled model") as caught:
        compile_rasp_to_model(program, range(30), 2)
    assert caught.value.label == "next" and "'tokens' (30)" in caught.value.hint


def test_compiling_does_not_import_jax():
    # a cold `raspc compile` pays for jax only when a model first runs
    code = ("import sys\nfrom compiler import compile_rasp_to_model\n"
            "from examples.library import EXAMPLES\n"
            "ex = EXAMPLES['sort']\n"
            "model = compile_rasp_to_model(ex.build(5), ex.vocab, 5)\n"
            "print(sorted({'jax', 'haiku'} & set(sys.modules)))\n"
            "model.apply(['BOS', 3, 1, 2])\n"
            "print(sorted({'jax', 'haiku'} & set(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "['haiku', 'jax']"]
