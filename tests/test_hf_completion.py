"""Every library example in completion form with LayerNorm, through Hugging Face.

Each example that compiles in completion form is saved as a GPT-2 directory, loaded
back with `AutoModelForCausalLM` and `AutoTokenizer` (offline, from the directory), and
greedy `generate` must write the reference evaluator's output and then EOS on 200
random prompts, at N = 5 and at the example's default N. The examples refused in
completion form are tests/test_completion.py's REFUSED (each names its SOp); with
LayerNorm, LN_REFUSED are refused too, naming the SOp whose bound the LayerNorm breaks.
"""

from __future__ import annotations

import collections

import pytest

import rasp
from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.hf_export import save_hf
from interp.hf_tokens import token_table
from rasp.errors import CompileError
from rasp_runtime.generation import written_value
from rasp_runtime.verify import outputs_agree
from tests.helpers import vocab_for
from tests.test_completion import N, REFUSED, random_inputs

torch = pytest.importorskip("torch")  # the hf extra is in the test extras: never skipped
transformers = pytest.importorskip("transformers")

PROMPTS = 200
# (example, N): the SOp named. first_occurrence's width counts up to 2N + 1 = 17 raw
# positions, where the LayerNorm's read error no longer tells w from w + 1.
LN_REFUSED = {("first_occurrence", 8): "first_occurrence"}


def hf_generate(directory, prompts: list[list]) -> list[list[str]]:
    """Greedy generate's tokens after each prompt, prompts of one length batched together."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    model = transformers.AutoModelForCausalLM.from_pretrained(directory)
    by_length = collections.defaultdict(list)
    for index, xs in enumerate(prompts):
        by_length[len(xs)].append(index)
    written: list = [None] * len(prompts)
    for length, indices in by_length.items():
        text = [" ".join(["BOS", *map(str, prompts[i]), "SEP"]) for i in indices]
        ids = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=length + 1, do_sample=False)
        for i, row in zip(indices, out[:, ids["input_ids"].shape[1]:].tolist()):
            written[i] = row
    return written


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(EXAMPLES) - set(REFUSED)))
def test_every_completion_example_generates_the_output_through_hugging_face(name, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    example = EXAMPLES[name]
    for max_len in sorted({N, example.max_seq_len}):
        program = example.build(max_len)
        try:
            ln_model = compile_rasp_to_model(program, vocab_for(example, max_len), max_len,
                                             causal=example.causal, form="completion",
                                             layer_norm=True)
        except CompileError as error:
            assert LN_REFUSED.get((name, max_len)) == error.label, error
            continue
        assert (name, max_len) not in LN_REFUSED
        directory = tmp_path / f"{name}_{max_len}"
        save_hf(ln_model, directory)
        table = token_table(ln_model.config)
        value_of = {i: v for i, v in zip(table.output_ids, ln_model.config.output_values)}
        prompts = random_inputs(name, PROMPTS, max_len, seed=7)
        for xs, ids in zip(prompts, hf_generate(directory, prompts)):
            expected = rasp.evaluate(program, xs, causal=example.causal)
            assert ids[len(expected)] == table.eos_id, (max_len, xs, ids)
            got = [written_value(ln_model.config, value_of.get(i, "not an output token"))
                   for i in ids[:len(expected)]]
            assert outputs_agree(expected, got), (max_len, xs, expected, got)
