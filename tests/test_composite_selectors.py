"""What the reference compiler cannot do: composite selectors over different SOps,
means of arbitrary numbers, None defaults, and a runtime check against the evaluator."""

import itertools
import random

import numpy as np
import pytest

import rasp
from compiler import compile_rasp_to_model
from rasp_runtime.verify import find_mismatches

EQ, LT, LEQ, TRUE = rasp.EQ, rasp.LT, rasp.LEQ, rasp.TRUE
tokens, indices = rasp.tokens, rasp.indices


def all_inputs(vocab, max_len):
    return [list(xs) for n in range(1, max_len + 1) for xs in itertools.product(vocab, repeat=n)]


def random_inputs(vocab, max_len, count=300, seed=0):
    rng = random.Random(seed)
    return [[rng.choice(vocab) for _ in range(rng.randint(1, max_len))] for _ in range(count)]


def assert_exact(program, vocab, max_len, causal=False):
    model = compile_rasp_to_model(program, set(vocab), max_len, causal=causal)
    inputs = all_inputs(vocab, max_len) if len(vocab) ** max_len <= 3000 else \
        random_inputs(vocab, max_len)
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked > 0.5 * len(inputs)
    assert not mismatches, mismatches[0]
    return model


@pytest.mark.parametrize("max_len", [5, 16])
def test_selector_width_of_and_with_different_keys(max_len):
    program = rasp.SelectorWidth(rasp.Select(indices, indices, LT) & rasp.Select(tokens, tokens, EQ))
    model = assert_exact(program, ["a", "b", "c"], max_len)
    assert sum(layer.num_heads for layer in model.config.layers) == 1  # `and` stays in one head


@pytest.mark.parametrize("max_len", [5, 16])
def test_numerical_aggregate_over_or_with_different_keys(max_len):
    selector = rasp.Select(tokens, tokens, EQ) | rasp.Select(indices, indices, LT)
    program = rasp.numerical(rasp.Aggregate(selector, rasp.numerical(indices + 0), default=0))
    assert_exact(program, ["a", "b", "c"], max_len)


def test_categorical_aggregate_over_or_with_different_keys():
    # The previous position; position 0 instead reads every "x" (they agree).
    selector = (rasp.Select(indices, indices, lambda k, q: k == q - 1)
                | rasp.Select(tokens, indices, lambda k, q: k == "x" and q == 0))
    assert_exact(rasp.Aggregate(selector, tokens), ["x", "y"], 6)


@pytest.mark.parametrize("max_len", [5, 16])
def test_not_selector(max_len):
    assert_exact(rasp.SelectorWidth(~rasp.Select(tokens, tokens, EQ)), ["a", "b", "c"], max_len)
    mean = rasp.numerical(rasp.Aggregate(~rasp.Select(indices, indices, LT),
                                         rasp.numerical(indices + 0), default=0))
    assert_exact(mean, ["a", "b"], max_len)


def test_nested_composites_inside_aggregate_and_width():
    nested = ((rasp.Select(tokens, tokens, EQ) | rasp.Select(indices, indices, LT))
              & ~rasp.Select(indices, tokens, lambda k, q: k == 0 and q == "a"))
    assert_exact(rasp.SelectorWidth(nested), ["a", "b"], 6)
    assert_exact(rasp.numerical(rasp.Aggregate(nested, rasp.numerical(indices + 0), default=0)),
                 ["a", "b"], 6)


def test_mean_of_values_one_to_six_and_a_map_of_it():
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(indices, indices, LEQ),
                                         rasp.numerical(tokens), default=0)).named("mean")
    assert_exact(mean, [1, 2, 3, 4, 5, 6], 5)
    above = rasp.Map(lambda m: m > 3.5, mean).named("above")
    assert_exact(above, [1, 2, 3, 4, 5, 6], 5)


def test_categorical_aggregate_with_default_none_decodes_none():
    previous = rasp.Aggregate(rasp.Select(indices, indices, lambda k, q: k == q - 1), tokens)
    model = assert_exact(previous, ["a", "b", "c"], 5)
    assert model.apply(["BOS", "a", "b"]).decoded == ["BOS", None, "a"]


def test_categorical_aggregate_with_a_default():
    previous = rasp.Aggregate(rasp.Select(indices, indices, lambda k, q: k == q - 1), tokens,
                              default="none")
    model = assert_exact(previous, ["a", "b"], 5)
    assert model.apply(["BOS", "b", "a"]).decoded == ["BOS", "none", "b"]


def test_numerical_aggregate_with_a_nonzero_default():
    later = rasp.numerical(rasp.Aggregate(rasp.Select(indices, indices, lambda k, q: k > q),
                                          rasp.numerical(indices + 0), default=-1))
    model = assert_exact(later, ["a"], 5)
    assert model.apply(["BOS", "a", "a"]).decoded[1:] == pytest.approx([1.0, -1.0], abs=1e-5)


def test_apply_check_compares_with_the_evaluator():
    program = rasp.SelectorWidth(rasp.Select(tokens, tokens, EQ))
    model = compile_rasp_to_model(program, {"a", "b"}, 4)
    assert model.apply(["BOS", "a", "b", "a"], check=True).decoded == ["BOS", 2, 1, 2]
    model.params["unembed"]["w"] = np.roll(model.params["unembed"]["w"], 1, axis=1)
    with pytest.raises(rasp.ModelMismatchError, match="disagree"):
        model.apply(["BOS", "a", "b", "a"], check=True)


# A fixed [query][key] matrix; the compiler reads it as a Select of indices.
MATRIX = [[True, False, True, False],
          [False, True, True, False],
          [True, True, False, True],
          [False, False, False, True]]


@pytest.mark.parametrize("causal", [False, True])
def test_constant_selector_in_width_and_mean(causal):
    selector = rasp.ConstantSelector(MATRIX)
    width = rasp.SelectorWidth(selector)
    model = assert_exact(width, ["a", "b", "c"], 4, causal=causal)
    row_sums = [sum(row[: q + 1]) if causal else sum(row) for q, row in enumerate(MATRIX)]
    assert model.apply(["BOS", "a", "b", "c", "a"]).decoded[1:] == row_sums
    is_a = rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, tokens))
    assert_exact(rasp.numerical(rasp.Aggregate(selector, is_a, default=0)), ["a", "b", "c"], 4,
                 causal=causal)


def test_constant_selector_shorter_than_the_input_inside_composites():
    # check_length=False: pairs outside the matrix are not selected.
    small = rasp.ConstantSelector([[False, True], [True, False, True]], check_length=False)
    width = rasp.SelectorWidth(small | rasp.Select(tokens, tokens, EQ))
    model = assert_exact(width, ["a", "b"], 5)
    # query 0 ("a"): key 1 and the "a"s at 0, 3, 4; query 1 ("b"): keys 0, 2 and the
    # "b"s at 1, 2; queries 2-4 (outside the matrix): their own token's positions
    assert model.apply(["BOS", "a", "b", "b", "a", "a"]).decoded[1:] == [4, 3, 2, 3, 3]
    previous = rasp.Aggregate(~small & rasp.Select(indices, indices, lambda k, q: k == q - 1),
                              tokens)
    assert_exact(previous, ["a", "b"], 5)


@pytest.mark.parametrize("causal", [False, True])
def test_composite_over_an_sop_that_can_be_none(causal):
    # `previous` is None at position 0: the composite reads it through a never-None copy.
    previous = rasp.Aggregate(rasp.Select(indices, indices, lambda k, q: k == q - 1),
                              tokens).named("previous")
    either = rasp.Select(previous, tokens, EQ) | rasp.Select(indices, indices, LT)
    model = assert_exact(rasp.SelectorWidth(either), ["a", "b"], 5, causal=causal)
    assert any(label.startswith("previous.or_none") for label in model.residual_labels)
    # previous = [None, b, a, a]; query q selects keys k < q and keys whose previous is
    # q's token: query 0 ("b") key 1; query 2 ("a") keys 0, 1 and 2, 3. Causal: k ≤ q.
    expected = [0, 1, 3, 3] if causal else [1, 3, 4, 3]
    assert model.apply(["BOS", "b", "a", "a", "b"]).decoded[1:] == expected
    is_a = rasp.numerical(rasp.Map(lambda t: 1 if t == "a" else 0, tokens))
    assert_exact(rasp.numerical(rasp.Aggregate(~either, is_a, default=0)), ["a", "b"], 5,
                 causal=causal)


def test_composite_over_sops_never_none_reads_them_directly():
    either = rasp.Select(tokens, tokens, EQ) | rasp.Select(indices, indices, LT)
    model = assert_exact(rasp.SelectorWidth(either), ["a", "b"], 4)
    assert not any(".or_none" in label for label in model.residual_labels)


def test_a_part_wrongly_judged_never_none_is_still_refused(monkeypatch):
    # The block builder re-checks the value sets: if the lowering read a None-able SOp
    # directly, the model would be wrong, so it must refuse instead.
    import compiler.compiling
    monkeypatch.setattr(compiler.compiling, "_none_oracle",
                        lambda program, vocab, n: lambda sop: False)
    previous = rasp.Aggregate(rasp.Select(indices, indices, lambda k, q: k == q - 1),
                              tokens).named("previous")
    either = (rasp.Select(previous, tokens, EQ) | rasp.Select(indices, indices, LT)).named("either")
    with pytest.raises(rasp.CompileError, match="can be None") as caught:
        compile_rasp_to_model(rasp.SelectorWidth(either), {"a", "b"}, 4)
    assert caught.value.label == "either" and "'previous'" in caught.value.reason
