"""The completion form: a causal decoder reads `x1 … xn SEP` and writes the output, then EOS.

Expected outputs come from the reference evaluator on the prompt; the model is run
through `generate` (greedy decoding) and, for many inputs at once, teacher-forced
(`rasp_runtime.verify.find_mismatches`). The slow test sweeps the whole library, as written and
causally, at N = 5 and at each example's default N, and pins which examples are
refused, and why.
"""

from __future__ import annotations

import json
import random

import pytest

import rasp
from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from raspc import cli
from rasp.errors import CompileError, InputError
from rasp_runtime.model import CompiledModel
from rasp_runtime.verify import find_mismatches, outputs_agree
from tests.helpers import vocab_for

N = 5


def completion_model(name: str, max_len: int = N, causal: bool | None = None):
    example = EXAMPLES[name]
    causal = example.causal if causal is None else causal
    program = example.build(max_len)
    return compile_rasp_to_model(program, vocab_for(example, max_len), max_len, causal=causal,
                                 form="completion"), program


def random_inputs(name: str, count: int, max_len: int = N, seed: int = 0) -> list[list]:
    example, rng = EXAMPLES[name], random.Random(seed)
    return [example.sample(rng, max_len, vocab_for(example, max_len)) for _ in range(count)]


@pytest.mark.parametrize("name", ["reverse", "hist", "frac_prevs", "shuffle_dyck1"])
def test_generate_writes_the_evaluators_output(name):
    model, program = completion_model(name)
    for xs in random_inputs(name, 8):  # a number within the usual tolerance (one ulp here)
        assert outputs_agree(rasp.evaluate(program, xs), model.generate(xs)), xs
    checked, mismatches = find_mismatches(model, program, random_inputs(name, 100, seed=1))
    assert checked == 100 and not mismatches, mismatches[:1]


def test_a_causal_program_sees_only_the_prompt_up_to_each_position():
    # hist counts the whole input; causally, only the prefix: the two differ on "a b a".
    model, program = completion_model("hist", causal=True)
    assert model.generate(["a", "b", "a"]) == [1, 1, 2]
    for xs in random_inputs("hist", 20):
        assert model.generate(xs) == rasp.evaluate(program, xs, causal=True), xs
    length, _ = completion_model("length", causal=True)  # make_length() counts the prefix
    assert length.generate(["a", "c", "b", "a"]) == [1, 2, 3, 4]


def test_the_model_writes_eos_after_the_output_and_apply_checks_it():
    model, _ = completion_model("reverse")
    sep, eos = model.config.sep, model.config.eos
    decoded = model.apply(["BOS", "a", "b", "c", sep, "c", "b", "a"], check=True).decoded
    assert decoded[4:] == ["c", "b", "a", eos]  # from SEP on: the next token


def test_a_key_that_depends_on_later_tokens_is_refused_naming_it():
    with pytest.raises(CompileError) as caught:
        completion_model("sort")
    error = caught.value
    assert error.label == "target_pos"  # sort's keys: each token's place in sorted order
    assert "prompt positions" in error.reason and "'smaller'" in error.reason
    assert "form='per-position'" in error.hint


def test_a_saved_model_generates_the_same_and_says_its_form(tmp_path):
    model, program = completion_model("reverse")
    model.save(tmp_path / "reverse.npz")
    loaded = CompiledModel.load(tmp_path / "reverse.npz")
    assert loaded.config == model.config and loaded.config.form == "completion"
    for xs in random_inputs("reverse", 5):
        assert loaded.generate(xs) == rasp.evaluate(program, xs)
    per_position = compile_rasp_to_model(program, EXAMPLES["reverse"].vocab, N)
    per_position.save(tmp_path / "plain.npz")
    assert "form" not in json.loads((tmp_path / "plain.json").read_text())["config"]
    assert CompiledModel.load(tmp_path / "plain.npz").config.form == "per-position"


def test_bad_prompts_and_models_are_one_clear_error():
    model, _ = completion_model("reverse")
    with pytest.raises(InputError, match="not in the vocabulary"):
        model.generate(["a", model.config.sep])
    with pytest.raises(InputError, match="1 to 5"):
        model.generate(["a"] * 6)
    per_position = compile_rasp_to_model(EXAMPLES["reverse"].build(N), ("a", "b"), N)
    with pytest.raises(InputError, match="form='completion'"):
        per_position.generate(["a"])
    with pytest.raises(CompileError, match="form must be"):
        compile_rasp_to_model(rasp.tokens, ("a",), N, form="decoder")


def test_cli_generate_compile_and_export_take_the_form(tmp_path, capsys):
    assert cli.main(["generate", "reverse", "a", "b", "c", "c"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["completion:", "c", "c", "b",
                                                                "a"]
    saved = tmp_path / "hist.npz"
    assert cli.main(["compile", "hist", "--form", "completion", "--max-seq-len", "4",
                     "-o", str(saved)]) == 0
    assert "completion form" in capsys.readouterr().out
    assert cli.main(["generate", str(saved), "a", "b", "a"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == ["completion:", "2", "1", "2"]
    assert cli.main(["verify", str(saved), "--inputs", "40"]) == 0
    assert "✓ all 40 inputs agree" in capsys.readouterr().out
    assert cli.main(["verify", "frac_prevs", "--form", "completion", "--max-seq-len", "4",
                     "--inputs", "40"]) == 0
    assert cli.main(["run", str(saved), "a"]) == 2
    assert "raspc generate" in capsys.readouterr().err
    assert cli.main(["generate", "sort", "1", "2"]) == 1
    assert "cannot compile 'target_pos'" in capsys.readouterr().err


# Every library example refused in completion form, with the SOp its CompileError names:
# each reads, as keys or values at prompt positions, an SOp that depends on later tokens.
REFUSED = {
    "sort": "target_pos", "sort_unique": "target_pos", "paper_sort": "target_pos",
    "rasp_sort": "target_pos", "sort_freq": "unique_keys", "most_freq": "rank_key",
    "rasp_most_freq": "rank_key", "count_less_freq": "hist", "double_hist": "hist",
    "rasp_double_hist": "hist", "dyck2": "mismatch", "dyck3": "mismatch",
    "rasp_dyck2": "indicator_mismatch", "rasp_dyck3": "indicator_mismatch",
}


@pytest.mark.slow
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_is_exact_or_refused_in_completion_form(name, causal):
    example = EXAMPLES[name]
    for max_len in sorted({N, example.max_seq_len}):
        try:
            model, program = completion_model(name, max_len, causal)
        except CompileError as error:  # a causal program's keys are always computable
            assert not causal and REFUSED.get(name) == error.label, error
            return
        assert causal or name not in REFUSED
        inputs = random_inputs(name, 200, max_len)
        checked, mismatches = find_mismatches(model, program, inputs)
        assert checked >= 100 and not mismatches, (max_len, mismatches[:1])
        xs = inputs[0]
        assert outputs_agree(rasp.evaluate(program, xs, causal=causal), model.generate(xs))
