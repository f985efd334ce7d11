"""Failures the fuzzer found, kept as regression tests (exhaustive at small sizes)."""

import itertools

import rasp
from compiler import compile_rasp_to_model
from compiler.verify import find_mismatches


def assert_exact_on_all_inputs(program, vocab, max_len):
    model = compile_rasp_to_model(program, vocab, max_len)
    inputs = [list(xs) for n in range(1, max_len + 1)
              for xs in itertools.product(vocab, repeat=n)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == len(inputs) and not mismatches, mismatches[:1]


def test_output_that_is_always_none():
    # Its categorical output has no possible value, so the unembedding has no column.
    assert_exact_on_all_inputs(rasp.Map(lambda x: None, rasp.tokens), ["a", "b"], 3)


def test_numerical_indices_as_the_query_of_an_index_match():
    # The one-head index match needs one-hot queries; a numerical one is discretised.
    program = rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.numerical(rasp.indices), rasp.EQ), rasp.tokens)
    assert_exact_on_all_inputs(program, ["a", "b"], 3)


def test_sequence_map_of_a_width_and_indices():
    # Runs in the width's own MLP; the fusion once compared SOps with `==`.
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.EQ))
    program = rasp.SequenceMap(lambda w, i: (w, i % 2), width, rasp.indices)
    assert_exact_on_all_inputs(program, ["a", "b", "c"], 4)


def test_linear_map_of_numerical_indices_and_a_causal_width():
    # numerical(indices) is one direction, not a one-hot: it cannot gate the width's MLP.
    v0 = rasp.numerical(rasp.indices)
    not_near = ~rasp.Select(v0, rasp.indices, lambda k, q: abs(k - q) <= 1 or (k, q) == (0, 2))
    marker = rasp.Aggregate(not_near, rasp.Full(False), default="f")
    width = rasp.SelectorWidth(rasp.Select(marker, v0, rasp.EQ)).named("x.keys")
    program = rasp.numerical(rasp.LinearSequenceMap(v0, width, 1, -1))
    model = compile_rasp_to_model(program, ["d", "x", "y"], 3, causal=True)
    inputs = [list(xs) for n in range(1, 4) for xs in itertools.product("dxy", repeat=n)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == len(inputs) and not mismatches, mismatches[:1]
