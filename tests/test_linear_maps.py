"""Linear maps of numbers compile as linear MLPs, and output tolerances scale with magnitude.

Issue 30: a mean (values k/n) combined linearly with an integer map was refused, because
fusion turned the linear map into a discretiser over every pair of values. Every model
here is compared with the evaluator on every input of length ≤ 5 over {0..4}.
"""

import itertools

import pytest

import rasp
from compiler import compile_rasp_to_model
from rasp_runtime.verify import tolerance
from rasp_runtime.verify import find_mismatches, values_agree

VOCAB = [0, 1, 2, 3, 4]
ALL_INPUTS = [list(xs) for n in range(1, 6) for xs in itertools.product(VOCAB, repeat=n)]


def fraction():
    """The fraction of keys (token ≥ query's token) whose token is not 2: values k/n."""
    return rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.tokens, rasp.tokens, rasp.GEQ),
        rasp.numerical(rasp.Map(lambda x: x != 2, rasp.tokens)), default=0))


def assert_exact(program):
    model = compile_rasp_to_model(program, VOCAB, 5)
    checked, mismatches = find_mismatches(model, program, ALL_INPUTS)
    assert checked == len(ALL_INPUTS) and not mismatches, mismatches[:1]
    return model


def test_the_issues_minimal_reproduction_compiles_exactly():
    token = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
    assert_exact(rasp.numerical(rasp.LinearSequenceMap(fraction(), token, 1, 3)))


def test_a_fraction_with_values_up_to_a_thousand_is_exact_in_one_layer():
    token = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
    program = rasp.numerical(rasp.LinearSequenceMap(fraction(), token, 1, 250))
    model = assert_exact(program)
    assert len(model.config.layers) == 1  # the mean's head, then the linear MLP
    largest = max(max(rasp.evaluate(program, xs)) for xs in ALL_INPUTS)
    assert largest == 1001  # 1 + 250·4: values up to 1,000 and beyond


def test_a_linear_map_of_a_fraction_and_a_shifted_token_compiles():
    # -3·frac + 3·(tok + 1), up to 15: refused before
    shifted = rasp.numerical(rasp.Map(lambda x: x + 1, rasp.tokens))
    assert_exact(rasp.numerical(rasp.LinearSequenceMap(fraction(), shifted, -3, 3)))


@pytest.mark.parametrize("value,expected", [(0.0, 1e-4), (0.5, 1e-4), (-13.0, 1e-4),
                                            (1000.0, 1000 / 131072), (-2 ** 20, 8.0)])
def test_the_tolerance_is_absolute_for_small_values_and_relative_for_large(value, expected):
    assert tolerance(value) == pytest.approx(expected)


def test_the_verifier_uses_the_tolerance_rule():
    assert values_agree(1000, 1000.007)        # 7e-3 < 1000·2⁻¹⁷ ≈ 7.6e-3
    assert not values_agree(1000, 1000.008)
    assert values_agree(0.25, 0.25 + 9e-5) and not values_agree(0.25, 0.25 + 2e-4)


def test_apply_check_accepts_large_outputs_within_the_rule():
    token = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
    program = rasp.numerical(rasp.LinearSequenceMap(fraction(), token, 1, 250))
    model = compile_rasp_to_model(program, VOCAB, 5)
    decoded = model.apply(["BOS", 4, 1, 3, 3, 2], check=True).decoded
    assert decoded[1:] == pytest.approx(rasp.evaluate(program, [4, 1, 3, 3, 2]), abs=1e-2)


def test_a_numerical_map_affine_in_a_fraction_is_linear():
    # 40·frac + 2: a discretiser would sum 40-sized steps; a·x + b rounds once
    assert_exact(rasp.numerical(rasp.Map(lambda x: 40 * x + 2, fraction())))


def test_a_budget_used_up_downstream_names_the_reader_and_whom_it_serves():
    # 300·frac + 2 must stay within 5e-5 where it is 2, so frac may err by 1.7e-7: less
    # than averaging over 6 positions may cost. The refusal says who spent the budget.
    program = rasp.numerical(rasp.Map(lambda x: 300 * x + 2, fraction().named("frac")))
    with pytest.raises(rasp.CompileError) as refusal:
        compile_rasp_to_model(program.named("scaled"), VOCAB, 5)
    message = str(refusal.value)
    assert "'frac'" in message and "its reader 'scaled'" in message
    assert "the program's output" in message and "(-" not in message


def test_a_linear_map_of_one_sop_twice_is_bounded_as_one_term():
    # Fuzz seed 11, program 423: LinearSequenceMap(x, x, -1, 2) is x; bounding −x and 2x
    # as independent inputs charged 3× the error and refused x's own linear map.
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.EQ))
    keys = rasp.numerical(rasp.Map(lambda w: 8 * w, width))
    x = rasp.numerical(rasp.LinearSequenceMap(fraction(), keys, 2, -1))
    assert_exact(rasp.numerical(rasp.LinearSequenceMap(x, x, -1, 2)))


def test_a_linear_map_is_charged_its_readers_budget_at_each_of_its_values():
    # Fuzz seed 11, program 774. out = 2·mid + 2·big reaches 180, where the output's budget
    # is relative (3.4e-4), but is near 0 where big is 0 (5e-5). mid = 2·big − frac, up to
    # 60, may round by γ·61 ≈ 1.8e-5 there; charged the least budget of any value of out
    # (5e-5 over out's two inputs), it was refused. Per value, mid at 60 may err by ~4e-5.
    big = rasp.numerical(rasp.Map(lambda n: 30 if n == 3 else 0, rasp.length))
    mid = rasp.numerical(rasp.LinearSequenceMap(fraction(), big, -1, 2))
    assert_exact(rasp.numerical(rasp.LinearSequenceMap(mid, big, 2, 2)))


def mean_of_indices():
    """The mean of the indices up to the query's: values k/n up to 2."""
    return rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.LEQ),
                                         rasp.indices, default=0))


@pytest.mark.parametrize("coefficient", [1, 1000])
def test_a_mean_plus_a_categorical_width_is_a_linear_read_of_its_one_hot(coefficient):
    # Fuzz seed 11, program 785: 3·mean + w (up to 11) was built as a discretiser of the
    # mean gated by w and refused ("as large as 13.0 within 5e-05"). w's one-hot is read
    # through one clamp per value, exact while it errs by < 1/16, in the linear MLP. With
    # 1000·w the output's budget must be relative (rounding alone exceeds 5e-5 there).
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.LEQ))
    model = assert_exact(rasp.numerical(
        rasp.LinearSequenceMap(mean_of_indices(), width, 3, coefficient)))
    assert len(model.config.layers) == 2  # the heads and w's one-hot, then the linear MLP


def test_a_mean_plus_a_map_of_tokens_held_as_a_category_reads_the_tokens():
    # A categorical Map of tokens is exact; the linear MLP reads tokens' one-hot itself
    # (Σ_t 7·g(t)·[token = t]), so the Map needs no layer of its own.
    doubled = rasp.categorical(rasp.Map(lambda t: 2 * t + 1, rasp.tokens))
    model = assert_exact(rasp.numerical(
        rasp.LinearSequenceMap(mean_of_indices(), doubled, -1, 7)))
    assert len(model.config.layers) == 1


def test_through_a_layer_norm_a_width_read_by_clamps_is_refused_by_name():
    # docs/compiler.md, "MLPs through the LayerNorm": each clamp's output carries the
    # LayerNorm's common scale and its units' read errors (about 2.3e-6 per unit of
    # |coefficient·value|), which with the two LayerNorms' read costs leaves 3·mean + w
    # no room at the output; the plain model compiles it exactly (above).
    width = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.LEQ))
    program = rasp.numerical(rasp.LinearSequenceMap(mean_of_indices(), width, 3, 1))
    with pytest.raises(rasp.CompileError) as refused:
        compile_rasp_to_model(program, VOCAB, 5, layer_norm=True)
    assert "LayerNorm" in str(refused.value)
