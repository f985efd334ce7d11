"""Failures the fuzzer found, kept as regression tests (exhaustive at small sizes)."""

import itertools
import random

import rasp
from compiler import compile_rasp_to_model
from rasp_runtime.verify import find_mismatches
from tests.helpers import assert_exact_on_all_inputs


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



def assert_compiles_exactly(program, vocab, max_len, inputs):
    """Compiling is the point: the model exists and agrees with the evaluator on `inputs`."""
    model = compile_rasp_to_model(program, vocab, max_len)
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == len(inputs) and not mismatches, mismatches[:1]


def test_product_selector_whose_part_is_always_none():
    # Fuzz case 3336: folding the tuple keys into the predicate hid a None part and
    # gave a selector that never selects. It must compile: the first part selects
    # every key, so the mean of the constant 1 is 1 (worked out by hand).
    full = rasp.Full("a")
    v0 = rasp.numerical(rasp.Map(lambda x: 1, rasp.length))
    always = rasp.Map(lambda x: "a", full)
    never = rasp.Map(lambda x: None, full)
    selector = rasp.Select(always, always, rasp.LEQ) | rasp.Select(never, rasp.length, rasp.GT)
    program = rasp.numerical(rasp.Aggregate(selector, v0, default=0))
    inputs = [["a"], ["b"], ["z"]]
    assert [rasp.evaluate(program, xs) for xs in inputs] == [[1], [1], [1]]
    assert_compiles_exactly(program, ["a", "b", "d", "y", "z"], 1, inputs)


def test_numerical_output_of_a_gated_mean_stays_within_tolerance():
    # Fuzz case 3331: a mean of {-2, 0, 6} plus a bool through one gated MLP erred by
    # 1.2e-4; numerical outputs now stay within their float32 budget or go via classes.
    t0 = {1: 2, 2: 2, 3: 6, 4: 6, 5: 4, 6: 2, 7: 2, 8: 4, 9: 6}
    true_pairs = {(1, 2), (1, 6), (2, 4), (3, 4), (4, 4), (5, 6), (6, 4), (8, 2), (8, 6),
                  (9, 6), (9, 4)}
    t1 = {(n, m): (n, m) in true_pairs for n in range(1, 10) for m in (2, 4, 6)}
    v0 = rasp.Map(lambda x: t0[x], rasp.length)
    v1 = rasp.SequenceMap(lambda x, y: t1[x, y], rasp.length, v0)
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(v1, rasp.length, rasp.NEQ), rasp.tokens,
                                         default=0))
    program = rasp.numerical(rasp.LinearSequenceMap(mean, v1, 1, 1))
    rng = random.Random(0)
    inputs = [[rng.choice([-2, 0, 6]) for _ in range(rng.randint(1, 9))] for _ in range(300)]
    inputs.append([-2, 0, -2, -2, 0, 0, -2, -2])
    assert_compiles_exactly(program, [-2, 0, 6], 9, inputs)  # a refusal is a regression


def test_mean_under_a_folded_index_match_takes_only_the_selected_values():
    # Fuzz case 11:2386 exhausted 24 GB: the Map of length folded into the index
    # match hid that at most one key is selected, so the means took 204 values
    # and a later gated MLP needed an 83,000 × 14,040 matrix. Value sets now see
    # that the folded predicate matches at most one index for every query value.
    table = {1: -2, 2: -2, 3: 5, 4: 5, 5: -2, 6: -2, 7: 0, 8: -2, 9: 1, 10: -2}
    target = rasp.Map(lambda x: table[x], rasp.length)
    picked = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, target, rasp.EQ), target,
                                           default=0))
    as_category = rasp.Aggregate(rasp.Select(rasp.indices, target, rasp.EQ), picked, default=3)
    program = rasp.numerical(rasp.LinearSequenceMap(picked, as_category, 2, -0.5))
    rng = random.Random(0)
    inputs = [[rng.choice("cdex") for _ in range(rng.randint(1, 10))] for _ in range(100)]
    model = compile_rasp_to_model(program, ["c", "d", "e", "x"], 10)
    assert model.config.d_model < 100
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == len(inputs) and not mismatches, mismatches[:1]


def test_a_numerical_width_map_gated_by_indices_that_its_mlp_cannot_write_exactly():
    # Fuzz seed 11, program 2773: 6, 3 or −2 by (width, index). The width's own MLP would
    # step 6 → −2 → 6 at every count, a bound of 1.9e-4 against the output's 2.5e-5; it
    # was built that way without a check. Now the width stays categorical and a pair
    # lookup writes the number, one MLP later.
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.EQ))
    table = {(w, i): (6 if (w + i) % 3 == 0 else (3 if w % 2 else -2))
             for w in range(5) for i in range(4)}
    program = rasp.numerical(rasp.SequenceMap(lambda w, i: table[w, i], width, rasp.indices))
    model = assert_exact_on_all_inputs(program, ["b", "c", "y"], 4)
    assert len(model.config.layers) == 2  # the width, then the lookup


def test_a_numerical_pair_lookup_of_a_noisy_one_hot_is_a_clean_lookup():
    # A categorical mean's one-hot may err by 1e-5: a plain pair lookup writing 100·a
    # would pass on 2·300·(1e-5 + …) ≈ 6e-3. It was built without a check; now it is a
    # clean pair lookup (two units for each of the 15 pairs with a non-zero output).
    first = rasp.categorical(rasp.Aggregate(
        rasp.Select(rasp.indices, rasp.indices, rasp.EQ), rasp.tokens)).named("first")
    program = rasp.numerical(rasp.SequenceMap(lambda a, i: 100 * a + 0.5 * i, first,
                                              rasp.indices)).named("out")
    model = assert_exact_on_all_inputs(program, [0, 1, 2, 3], 4)
    assert model.config.layers[-1].mlp_hidden == 2 * 15
