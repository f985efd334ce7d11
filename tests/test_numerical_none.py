"""A numerical mean that may select nothing: the default where one is given, else None.

Issue 30: such means were refused ("a numerical SOp must never be None"), Tracr's
basis-inference program `numerical_aggregate` among them. Without a default the
evaluator gives None where nothing is selected, and the model now decodes None there.
Each model is compared with the evaluator on every input up to the length compiled.
"""

import rasp
from tests.helpers import assert_exact_on_all_inputs


def test_tracrs_numerical_aggregate_compiles_and_is_none_where_nothing_is_selected():
    # Tracr's basis_inference_test case: the mean of tokens over Select(tokens, indices, EQ)
    program = rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.tokens, rasp.indices, rasp.Comparison.EQ), rasp.tokens))
    model = assert_exact_on_all_inputs(program, [0, 1], 2)
    # position 1 selects keys whose token is 1: none in [0, 0], both in [1, 1]
    assert model.apply(["BOS", 0, 0], check=True).decoded[1:] == [0, None]
    assert model.apply(["BOS", 1, 1], check=True).decoded[1:] == [None, 1]
    assert model.apply(["BOS", 0, 1], check=True).decoded[1:] == [0, 1]


def test_a_given_default_is_written_where_nothing_is_selected():
    shifted = rasp.numerical(rasp.Map(lambda x: x + 1, rasp.tokens))
    program = rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.tokens, rasp.indices, rasp.Comparison.EQ), shifted, default=3))
    model = assert_exact_on_all_inputs(program, [0, 1, 2], 3)
    # position q averages token + 1 over keys whose token is q: 0 → the last key
    assert model.apply(["BOS", 2, 2, 0], check=True).decoded[1:] == [1, 3, 3]


def test_a_map_of_a_mean_that_may_be_none_is_none_there_too():
    mean = rasp.numerical(rasp.Aggregate(
        rasp.Select(rasp.tokens, rasp.indices, rasp.Comparison.LT),
        rasp.numerical(rasp.Map(lambda x: x == 1, rasp.tokens))))
    program = rasp.numerical(rasp.Map(lambda x: 2 * x, mean))
    model = assert_exact_on_all_inputs(program, [0, 1, 2], 3)
    # position q: twice the share of 1s among tokens < q (none below 0)
    assert model.apply(["BOS", 0, 1, 2], check=True).decoded[1:] == [None, 0, 1]
