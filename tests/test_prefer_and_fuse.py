"""compile_rasp_to_model(prefer="params") and fuse=False (issue 30).

Fusion saves a layer by merging a Map into the SequenceMap that reads it, at the cost of
one MLP over the product of the sources' values. prefer="params" takes the layout with
the fewest weights instead; fuse=False gives one block per SOp.
"""

import itertools
import random

import pytest

import rasp
from compiler import compile_rasp_to_model
from rasp_runtime.verify import find_mismatches
from tests import tracr_programs

VOCAB = list(range(10))


def parity_mix():
    """A Map of tokens and a SequenceMap of it and indices: fused, one MLP of 10·10 units."""
    parity = rasp.Map(lambda t: t % 2, rasp.tokens).named("parity")
    return rasp.SequenceMap(lambda p, i: (p + i) % 3, parity, rasp.indices).named("mix")


def mlp_widths(model):
    return [component.hidden[1] - component.hidden[0] for component in model.components
            if component.kind == "mlp"]


def assert_exact(model, program, vocab, max_seq_len):
    rng = random.Random(0)
    inputs = [[rng.choice(vocab) for _ in range(rng.randint(1, max_seq_len))]
              for _ in range(100)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == 100 and not mismatches, mismatches[:1]


def test_depth_first_by_default_fuses_into_one_wide_mlp():
    model = compile_rasp_to_model(parity_mix(), VOCAB, 10)
    assert len(model.config.layers) == 1 and mlp_widths(model) == [100]


def test_prefer_params_gives_two_narrower_layers():
    program = parity_mix()
    fused = compile_rasp_to_model(program, VOCAB, 10)
    small = compile_rasp_to_model(program, VOCAB, 10, prefer="params")
    # parity: 2 units (one per output value); mix: 2 parities × 10 positions
    assert len(small.config.layers) == 2 and mlp_widths(small) == [2, 20]
    assert small.parameter_count < fused.parameter_count
    assert_exact(small, program, VOCAB, 10)


def test_fuse_false_names_every_sop_in_the_ground_truth():
    program = tracr_programs.make_reverse(rasp.tokens)
    model = compile_rasp_to_model(program, ["a", "b", "c"], 5, fuse=False)
    named = {label for component in model.components for label in component.info.exprs}
    assert {"length", "opp_idx", "opp_idx-1", "reverse"} <= named
    assert_exact(model, program, ["a", "b", "c"], 5)


def test_prefer_params_never_takes_more_weights_than_the_default():
    program = tracr_programs.make_reverse(rasp.tokens)
    default = compile_rasp_to_model(program, ["a", "b", "c"], 5)
    small = compile_rasp_to_model(program, ["a", "b", "c"], 5, prefer="params")
    assert small.parameter_count <= default.parameter_count


@pytest.mark.parametrize("arguments,message", [({"prefer": "speed"}, "prefer must be"),
                                                ({"fuse": "no"}, "fuse must be")])
def test_bad_choices_are_refused_in_one_line(arguments, message):
    with pytest.raises(rasp.CompileError, match=message):
        compile_rasp_to_model(parity_mix(), VOCAB, 10, **arguments)


def test_a_fused_layout_that_is_refused_falls_back_to_the_unfused_program():
    # Fused, n is one gated discretiser of a mean writing values up to 507, beyond its
    # float32 budget; kept apart, s is a one-hot and n a lookup of it (issue 30, group 3).
    frac = rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.tokens, rasp.tokens, rasp.GEQ),
        rasp.numerical(rasp.Map(lambda x: x != 2, rasp.tokens)), default=0))
    s = rasp.categorical(rasp.SequenceMap(lambda x, t: int(x > 0.5) + t, frac, rasp.tokens))
    n = rasp.numerical(rasp.Map(lambda v: 100 * v + 7, s))
    model = compile_rasp_to_model(n, [0, 1, 2, 3, 4], 4)
    inputs = [list(xs) for k in range(1, 5) for xs in itertools.product(range(5), repeat=k)]
    checked, mismatches = find_mismatches(model, n, inputs)
    assert checked == len(inputs) and not mismatches, mismatches[:1]


def test_prefer_params_counts_a_long_numerical_width_in_two_digits():
    # At N = 40 a one-layer numerical count has no float32 proof, so by default the width
    # is a one-hot of its 41 counts and a lookup writes the number. With prefer="params"
    # it is two one-hots, w // 7 (6 values) and w % 7 (7 values), read by a pair lookup:
    # 13 residual dimensions instead of 41, and fewer weights than Tracr's one-layer
    # count at N = 40 (12,203 with 5 tokens, README), which is not exact there.
    count = rasp.numerical(rasp.SelectorWidth(
        rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "a"))).named("count")
    vocab = list("abcde")
    default = compile_rasp_to_model(count, vocab, 40)
    small = compile_rasp_to_model(count, vocab, 40, prefer="params")
    labels = small.residual_labels
    assert [sum(label.startswith(f"count.{digit}7:") for label in labels)
            for digit in ("div", "mod")] == [6, 7]
    assert not any(label.startswith("count.categorical") for label in labels)
    assert sum(label.startswith("count.categorical:") for label in default.residual_labels) \
        == 41
    assert len(small.config.layers) == 2 and small.parameter_count < 12_203
    inputs = [["a"] * w + ["b"] * (40 - w) for w in range(41)] + [["a"] * w for w in
                                                                 range(1, 41)]
    checked, mismatches = find_mismatches(small, count, inputs)
    assert checked == len(inputs) and not mismatches, mismatches[:1]
    assert_exact(small, count, vocab, 40)


def _count_of_a():
    return rasp.numerical(rasp.SelectorWidth(
        rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "a"))).named("count")


@pytest.mark.parametrize("arguments", [{"fuse": False}, {"prefer": "params"}])
def test_a_function_of_a_count_sees_the_count_as_the_evaluator_gives_it(arguments):
    # The discretiser reads the count as floats; T[3.0] raises where T[3] does not, and
    # str(3.0) is not str(3). Both once compiled to a model writing nothing (0.0, None).
    table = list(range(100, 111))
    for program in (rasp.numerical(rasp.Map(lambda w: table[w], _count_of_a())),
                    rasp.categorical(rasp.Map(str, _count_of_a()))):
        model = compile_rasp_to_model(program, list("abc"), 10, **arguments)
        inputs = [["a"] * w + ["b"] * (10 - w) for w in range(11)]
        checked, mismatches = find_mismatches(model, program, inputs)
        assert checked == 11 and not mismatches, mismatches[:1]


def test_a_mean_of_a_count_in_digits_is_bounded_by_the_counts_it_averages():
    # The digits' pair table holds 7·6 entries; the count's value set must still be 0..40
    # (not up to 41), and a mean whose values are too many to list is charged for the
    # largest value it averages, 40 (it was charged 0 and compiled without a proof).
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.LEQ),
                                         _count_of_a(), default=0)).named("mean")
    with pytest.raises(rasp.CompileError, match="averaging over up to 41 positions"):
        compile_rasp_to_model(mean, list("abcde"), 40, prefer="params")


def test_numpy_and_fraction_values_reach_the_function_as_they_are():
    # A numerical SOp holding numpy integers or Fractions: its Map's function must see
    # them, not their floats (T[np.float64] and str(0.333…) differ from the evaluator's).
    import fractions

    import numpy as np

    as_numpy = rasp.numerical(rasp.Map(lambda t: np.int64(t == "a"), rasp.tokens))
    third = rasp.numerical(rasp.Map(lambda t: fractions.Fraction(int(t == "a"), 3),
                                    rasp.tokens))
    for program in (rasp.numerical(rasp.Map(lambda w: [10, 20][w], as_numpy)),
                    rasp.categorical(rasp.Map(str, as_numpy)),
                    rasp.categorical(rasp.Map(str, third))):
        model = compile_rasp_to_model(program, ["a", "b"], 4, fuse=False)
        inputs = [list(xs) for k in range(1, 5) for xs in itertools.product("ab", repeat=k)]
        checked, mismatches = find_mismatches(model, program, inputs)
        assert checked == len(inputs) and not mismatches, mismatches[:1]
