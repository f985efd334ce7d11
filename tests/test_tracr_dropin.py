"""Tracr drop-in: a Tracr script runs after changing only its imports.

Checks `rasp` exports every public name of Tracr's rasp module (the list is read
from tests/data/tracr_rasp_names.txt, taken once from Tracr's source), that
`compile_rasp_to_model` takes `mlp_exactness`, that `model_config` and
`ModelOutput.transformer_output` / `.input_embeddings` have Tracr's names and
shapes, and that `examples.lib` holds Tracr's library under its names.
"""

from __future__ import annotations

import inspect
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from examples import lib
from tests.tracr_references import (ref_count, ref_count_less_freq, ref_detect_pattern,
                                    ref_frac_prevs, ref_hist, ref_pair_balance, ref_reverse,
                                    ref_shift_by, ref_shuffle_dyck, ref_sort_freq,
                                    ref_stable_sort)

NAMES_FILE = Path(__file__).parent / "data" / "tracr_rasp_names.txt"


def tracr_rasp_names() -> list[str]:
    lines = NAMES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# ------------------------------------------------------------------ rasp names


def test_rasp_exports_every_public_name_of_tracrs_rasp_module():
    names = tracr_rasp_names()
    assert len(names) == 48 and "Value" in names  # the file is Tracr's full list
    missing = [n for n in names if n not in rasp.__all__ or not hasattr(rasp, n)]
    assert missing == []


def test_tracr_type_aliases_work_in_type_hints():
    def pattern_length(pattern: Sequence[rasp.Value]) -> rasp.NumericValue:
        return len(pattern)

    assert pattern_length("abc") == 3
    assert rasp.Value.__args__ == (type(None), int, float, str, bool)
    matrix: rasp.SelectorValue = rasp.evaluate(
        rasp.Select(rasp.indices, rasp.indices, rasp.LEQ), [0, 0])
    assert matrix == [[True, False], [True, True]]


def test_tracr_selector_helpers_and_sop_not_evaluate_like_the_operators():
    eq = rasp.Select(rasp.tokens, rasp.tokens, rasp.EQ)
    lt = rasp.Select(rasp.indices, rasp.indices, rasp.LT)
    xs = ["a", "b", "a"]
    assert rasp.evaluate(rasp.selector_and(eq, lt), xs) == [
        [False, False, False], [False, False, False], [True, False, False]]
    assert rasp.evaluate(rasp.selector_or(eq, lt), xs) == [
        [True, False, True], [True, True, False], [True, True, True]]
    assert rasp.evaluate(rasp.selector_not(eq), xs) == [
        [False, True, False], [True, False, True], [False, True, False]]
    assert rasp.evaluate(rasp.sop_not(rasp.tokens == "a"), xs) == [False, True, False]


def test_default_rasp_evaluator_and_annotators():
    assert rasp.DefaultRASPEvaluator().evaluate(lib.make_reverse(rasp.tokens), "abc") == \
        ["c", "b", "a"]
    assert isinstance(rasp.DefaultRASPEvaluator(), rasp.RASPEvaluator)
    unnamed = rasp.Map(lambda x: x, rasp.tokens)
    assert unnamed.annotations["name"] == unnamed.name == unnamed.label
    assert unnamed.annotations["encoding"] is rasp.Encoding.CATEGORICAL
    rasp.DEFAULT_ANNOTATORS["kind"] = lambda expr: type(expr).__name__
    try:
        assert unnamed.annotations["kind"] == "Map"
        assert unnamed.annotated(kind="mine").annotations["kind"] == "mine"
    finally:
        del rasp.DEFAULT_ANNOTATORS["kind"]
    with pytest.raises(KeyError, match="no annotation 'kind'"):
        unnamed.annotations["kind"]
    with pytest.raises(TypeError, match="not an SOp"):
        rasp.Select(rasp.tokens, rasp.tokens, rasp.EQ).annotations["encoding"]


# ------------------------------------------------------------------ compiling


def test_mlp_exactness_is_accepted_and_changes_nothing():
    program = lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1)
    models = [compile_rasp_to_model(program, {1, 2, 3}, 5, mlp_exactness=e) for e in (1, 100, 0.5)]
    for model in models[1:]:
        for module, weights in models[0].params.items():
            for name, array in weights.items():
                assert np.array_equal(array, model.params[module][name])


@pytest.mark.parametrize("bad", [0, -3, "100", None, True, float("nan")])
def test_mlp_exactness_must_be_a_positive_number(bad):
    with pytest.raises(rasp.CompileError, match="mlp_exactness must be a positive number"):
        compile_rasp_to_model(lib.make_hist(), {"a"}, 3, mlp_exactness=bad)


def test_model_config_has_tracrs_fields():
    model = compile_rasp_to_model(lib.make_sort_freq(5), {"a", "b", "c"}, 5, causal=False)
    config = model.model_config
    assert set(vars(config)) == {"num_heads", "num_layers", "key_size", "mlp_hidden_size",
                                 "dropout_rate", "activation_function", "layer_norm", "causal"}
    layers = model.config.layers
    assert config.num_layers == len(layers) == 3
    assert config.num_heads == max(l.num_heads for l in layers)
    assert config.mlp_hidden_size == max(l.mlp_hidden for l in layers) > 0
    assert config.key_size == max(l.key_size for l in layers if l.num_heads) > 0
    assert (config.dropout_rate, config.layer_norm, config.causal) == (0.0, False, False)
    assert config.activation_function(np.float32(-2.0)) == 0.0
    assert config.activation_function(np.float32(3.0)) == 3.0
    causal = compile_rasp_to_model(lib.make_frac_prevs(rasp.tokens == "a"), {"a", "b"}, 4,
                                   causal=True)
    assert causal.model_config.causal is True


def test_transformer_output_has_tracrs_shapes():
    model = compile_rasp_to_model(lib.make_reverse(rasp.tokens), {"a", "b", "c"}, 6)
    out = model.apply(["BOS", "a", "b", "c"])
    seq, d, layers = 4, model.config.d_model, len(model.config.layers)
    tracr = out.transformer_output
    assert len(tracr.layer_outputs) == len(tracr.residuals) == 2 * layers
    assert all(x.shape == (1, seq, d) for x in tracr.layer_outputs + tracr.residuals)
    assert [x.shape for x in tracr.attn_logits] == [
        (1, l.num_heads, seq, seq) for l in model.config.layers]
    assert out.input_embeddings.shape == tracr.input_embeddings.shape == (1, seq, d)
    assert tracr.shape == np.asarray(tracr).shape == (1, seq, d)
    # the residual stream is the embedding plus what each sublayer added
    total = out.input_embeddings + np.cumsum(np.stack(tracr.layer_outputs), axis=0)
    np.testing.assert_allclose(np.stack(tracr.residuals), total, atol=1e-5)
    np.testing.assert_array_equal(tracr[0], tracr.residuals[-1][0])
    # our own unbatched fields are unchanged views of the same arrays
    np.testing.assert_array_equal(out.residuals[0], out.input_embeddings[0])
    for ours, theirs in zip(out.residuals[1:], tracr.residuals):
        np.testing.assert_array_equal(ours, theirs[0])
    for ours, theirs in zip(out.attn_logits, tracr.attn_logits):
        np.testing.assert_array_equal(ours, theirs[0])


def test_a_layer_without_heads_has_empty_tracr_logits():
    model = compile_rasp_to_model(rasp.Map(lambda x: x == "a", rasp.tokens), {"a", "b"}, 3)
    out = model.apply(["BOS", "b", "a"])
    assert out.attn_logits == [None]
    assert out.transformer_output.attn_logits[0].shape == (1, 0, 3, 3)


# ------------------------------------------------------------------ lib


LIB_NAMES = ["make_length", "make_reverse", "make_hist", "make_sort_unique", "make_sort",
             "make_sort_freq", "make_frac_prevs", "make_pair_balance", "make_shuffle_dyck",
             "make_shuffle_dyck2", "shift_by", "detect_pattern", "make_count",
             "make_count_less_freq", "make_nary_sequencemap"]

# Tracr's signatures (tracr/compiler/lib.py), parameter names and kinds.
TRACR_SIGNATURES = {
    "make_length": "()", "make_reverse": "(sop)", "make_hist": "()",
    "make_sort_unique": "(vals, keys)", "make_sort": "(vals, keys, *, max_seq_len, min_key)",
    "make_sort_freq": "(max_seq_len)", "make_frac_prevs": "(bools)",
    "make_pair_balance": "(sop, open_token, close_token)", "make_shuffle_dyck": "(pairs)",
    "make_shuffle_dyck2": "()", "shift_by": "(offset, /, sop)",
    "detect_pattern": "(sop, pattern)", "make_count": "(sop, token)",
    "make_count_less_freq": "(n)", "make_nary_sequencemap": "(f, *sops)",
}


@pytest.mark.parametrize("name", LIB_NAMES)
def test_lib_has_tracrs_names_and_signatures(name):
    signature = inspect.signature(getattr(lib, name))
    plain = signature.replace(parameters=[p.replace(annotation=p.empty)
                                          for p in signature.parameters.values()],
                              return_annotation=signature.empty)
    assert str(plain) == TRACR_SIGNATURES[name]


def test_lib_programs_agree_with_plain_python_references():
    rng = random.Random(5)
    words = [[rng.choice("ab(){}") for _ in range(rng.randint(1, 8))] for _ in range(60)]
    numbers = [[rng.randint(0, 5) for _ in range(rng.randint(1, 8))] for _ in range(60)]
    sort = lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=8, min_key=1)
    for xs in numbers:
        assert rasp.evaluate(sort, xs) == ref_stable_sort(xs, xs)
    cases = [
        (lib.make_reverse(rasp.tokens), ref_reverse),
        (lib.make_hist(), ref_hist),
        (lib.make_sort_freq(8), ref_sort_freq),
        (lib.make_frac_prevs(rasp.tokens == "a"), lambda xs: ref_frac_prevs([x == "a" for x in xs])),
        (lib.make_pair_balance(rasp.tokens, "(", ")"), lambda xs: ref_pair_balance(xs, "(", ")")),
        (lib.make_shuffle_dyck2(), lambda xs: ref_shuffle_dyck(xs, ["()", "{}"])),
        (lib.shift_by(2, rasp.tokens), lambda xs: ref_shift_by(2, xs)),
        (lib.detect_pattern(rasp.tokens, "ab"), lambda xs: ref_detect_pattern(xs, "ab")),
        (lib.make_count(rasp.tokens, "a"), lambda xs: ref_count(xs, "a")),
        (lib.make_count_less_freq(2), lambda xs: ref_count_less_freq(xs, 2)),
    ]
    for program, reference in cases:
        for xs in words:
            got, expected = rasp.evaluate(program, xs), reference(xs)
            assert got == pytest.approx(expected), (program.label, xs)


def test_lib_rejects_what_tracr_asserts_on():
    with pytest.raises(ValueError, match="two-character"):
        lib.make_shuffle_dyck(["(", "{}"])
    with pytest.raises(ValueError, match="at least one element"):
        lib.detect_pattern(rasp.tokens, "")


# ------------------------------------------------------------------ a Tracr script

# Written against Tracr; the test swaps the three import lines and nothing else.
TRACR_SCRIPT = '''
from typing import Sequence

from tracr.compiler import compiling
from tracr.compiler import lib
from tracr.rasp import rasp


def make_ends_with(sop: rasp.SOp, suffix: Sequence[rasp.Value]) -> rasp.SOp:
  return rasp.Map(lambda x: 1 if x else 0, lib.detect_pattern(sop, suffix))


programs = {
    "sort": lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1),
    "frac_a": lib.make_frac_prevs(rasp.tokens == "a"),
    "count_b": lib.make_count(rasp.tokens, "b"),
    "ends_ab": make_ends_with(rasp.tokens, ["a", "b"]),
    "balance": lib.make_pair_balance(rasp.tokens, "a", "b"),
}
vocabs = {"sort": {1, 2, 3, 4}}
inputs = {"sort": [3, 1, 4, 1]}
results, layers = {}, {}
for name, program in programs.items():
  model = compiling.compile_rasp_to_model(
      program, vocab=vocabs.get(name, {"a", "b", "c"}), max_seq_len=5,
      compiler_bos="BOS", mlp_exactness=100)
  out = model.apply(["BOS"] + inputs.get(name, ["a", "b", "c", "a", "b"]))
  results[name] = out.decoded[1:]
  layers[name] = (model.model_config.num_layers, len(model.config.layers),
                  len(out.transformer_output.residuals), out.input_embeddings.shape[:2],
                  len(out.decoded))
'''

IMPORT_SWAP = {
    "from tracr.compiler import compiling": "from compiler import compiling",
    "from tracr.compiler import lib": "from examples import lib",
    "from tracr.rasp import rasp": "import rasp",
}


def test_a_tracr_script_runs_with_only_its_imports_changed():
    script = TRACR_SCRIPT
    for tracr_import, ours in IMPORT_SWAP.items():
        assert script.count(tracr_import) == 1
        script = script.replace(tracr_import, ours)
    namespace: dict = {}
    exec(compile(script, "tracr_script.py", "exec"), namespace)
    results = namespace["results"]
    assert results["sort"] == [1, 1, 3, 4]
    assert results["frac_a"] == pytest.approx([1, 1 / 2, 1 / 3, 2 / 4, 2 / 5], abs=1e-5)
    assert results["count_b"] == [2, 2, 2, 2, 2]
    assert results["ends_ab"] == [None, 1, 0, 0, 1]
    assert results["balance"] == pytest.approx([1, 0, 0, 1 / 4, 0], abs=1e-5)
    for num_layers, layer_count, residuals, batch_and_seq, seq in namespace["layers"].values():
        assert num_layers == layer_count
        assert residuals == 2 * layer_count
        assert batch_and_seq == (1, seq)
