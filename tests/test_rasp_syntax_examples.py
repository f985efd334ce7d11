"""examples/rasp/ against their Python twins, and to_source → parse round trips.

Every program in examples/rasp/ parses, compiles, agrees with the evaluator on 200
inputs, gives its Python twin's outputs on them and has as many layers as the twin.
Every library example printed by `rasp.to_source` parses back into a program with the
same values on 100 inputs and the same compiled layer count.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import compiler
import rasp
from compiler import compile_rasp_to_model
from examples.library import EXAMPLES, RASP_DIR, RASP_TWINS
from rasp_runtime.verify import find_mismatches

ROUND_TRIP_LEN = 5  # small: two compiles per library example


def test_every_rasp_file_is_in_the_library():
    files = {p.stem for p in Path(RASP_DIR).glob("*.rasp")} - {"dyck_k"}  # dyck_k: loaded
    assert files == {file for file, _ in RASP_TWINS.values()}


@pytest.mark.parametrize("name", list(RASP_TWINS))
def test_rasp_example_is_exact_and_as_deep_as_its_twin(name):
    file, twin = RASP_TWINS[name]
    program = rasp.parse_file(Path(RASP_DIR) / f"{file}.rasp")[file]
    example, python_twin = EXAMPLES[name], EXAMPLES[twin]
    n = example.max_seq_len
    model = compile_rasp_to_model(program, example.vocab, n)
    rng = random.Random(0)
    inputs = [example.sample(rng) for _ in range(200)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == 200 and not mismatches, mismatches[:1]
    # the file computes what its twin computes: the same outputs, not just the same depth
    # (where nothing is selected the text's aggregate gives RASP's default 0, the
    # Python twin's None: most_freq's padding)
    twin_program = python_twin.build(n)
    for xs in inputs:
        twin = [0 if y is None else y for y in rasp.evaluate(twin_program, xs)]
        assert rasp.evaluate(program, xs) == twin, xs
    twin_model = compile_rasp_to_model(twin_program, python_twin.vocab, n)
    assert len(model.config.layers) == len(twin_model.config.layers)


def test_dyck3_twin_matches_an_independent_check():
    """Dyck-3 has no Python twin in the paper; check ours against a stack."""
    twin = EXAMPLES["dyck3"]
    program = twin.build(twin.max_seq_len)
    rng = random.Random(1)
    for _ in range(200):
        xs = twin.sample(rng)
        assert rasp.evaluate(program, xs) == _dyck_by_stack(xs, {")": "(", "}": "{", "]": "["})


def _dyck_by_stack(xs, opener_of) -> list[str]:
    stack, broken, out = [], False, []
    for t in xs:
        if t in opener_of:
            broken = broken or not stack or stack.pop() != opener_of[t]
        else:
            stack.append(t)
        out.append("F" if broken else ("T" if not stack else "P"))
    return out


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_to_source_round_trip(name):
    example = EXAMPLES[name]
    n = ROUND_TRIP_LEN
    program = example.build(n)
    source = compiler.to_source(program, example.vocab, n, name="program")
    again = rasp.parse(source)["program"]
    rng = random.Random(0)
    compared = 0
    for _ in range(100):
        xs = example.sample(rng, n)
        try:
            expected = rasp.evaluate(program, xs, causal=example.causal)
        except rasp.EvaluationError:
            with pytest.raises(rasp.EvaluationError):
                rasp.evaluate(again, xs, causal=example.causal)
            continue
        assert rasp.evaluate(again, xs, causal=example.causal) == expected, xs
        compared += 1
    assert compared > 50
    layers = [len(compile_rasp_to_model(p, example.vocab, n, example.causal).config.layers)
              for p in (program, again)]
    assert layers[0] == layers[1]


def test_to_source_round_trip_of_parsed_programs():
    """Programs parsed from RASP print as written and parse back to the same values."""
    from tests.test_rasp_syntax_semantics import CASES, _inputs

    for name, source, vocab, _, *prelude in CASES:
        program = rasp.parse("".join(prelude) + source)["y"]
        again = rasp.parse(compiler.to_source(program, vocab, 5, name="y"))["y"]
        for xs in _inputs(vocab)[:40]:
            assert _value_or_error(program, xs) == _value_or_error(again, xs), (name, xs)


def _value_or_error(program, xs):
    try:
        return rasp.evaluate(program, xs)
    except rasp.EvaluationError:
        return "outside the domain"


def test_to_source_prints_parsed_text_back():
    program = rasp.parse("tokens = tokens_int; y = round(tokens / 2) if tokens > 1 "
                         "else -tokens;")["y"]
    source = rasp.to_source(program)  # no Python function inside: no vocab needed
    assert "tokens = tokens_int;" in source and "round(" in source and "-tokens" in source
    again = rasp.parse(source)["y"]
    assert rasp.evaluate(again, [1, 2, 3, 4]) == rasp.evaluate(program, [1, 2, 3, 4]) == \
        [-1, 1, 2, 2]
    with pytest.raises(rasp.RaspError, match=r"print it with compiler.to_source\("):
        rasp.to_source(rasp.Map(lambda x: x, rasp.tokens))
    with pytest.raises(rasp.RaspError, match="give vocab= and max_seq_len="):
        compiler.to_source(rasp.Map(lambda x: x, rasp.tokens))
    with pytest.raises(rasp.RaspError, match="ConstantSelector has no RASP form"):
        rasp.to_source(rasp.SelectorWidth(rasp.ConstantSelector([[True]])))


def test_to_source_names_are_fresh_identifiers():
    """Builtin names, repeated labels and non-identifiers get names that parse back."""
    a = rasp.numerical(rasp.LinearSequenceMap(rasp.indices, rasp.indices, 1, 1)).named("select")
    b = rasp.numerical(rasp.LinearSequenceMap(a, rasp.indices, 1, 2)).named("select")
    c = rasp.numerical(rasp.LinearSequenceMap(b, a, 1, 1)).named("3 out")
    source = rasp.to_source(c)
    assert source.splitlines()[1:] == [
        "select_2 = numerical(1 * indices + 1 * indices);",
        "select_3 = numerical(1 * select_2 + 2 * indices);",
        "v_3_out = numerical(1 * select_3 + 1 * select_2);"]
    # a = 2i, b = a + 2i = 4i, c = b + a = 6i, worked by hand
    assert rasp.evaluate(rasp.parse(source)["v_3_out"], list("abc")) == [0, 6, 12]
    with pytest.raises(rasp.RaspError, match="'tokens' is a primitive"):
        rasp.to_source(rasp.tokens)
