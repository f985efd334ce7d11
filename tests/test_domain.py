"""The program's domain: recorded in model.domain, warned once, enforced by strict=True
and by apply(check=True); never-empty selectors need no default.

Expected values come from the reference evaluator or from the programs' definitions.
"""

from __future__ import annotations

import random
import warnings

import pytest

import rasp
from compiler import compile_rasp_to_model
from compiler.domain import program_domain
from examples import paper
from examples import programs as classic
from examples.library import EXAMPLES, uniform
from rasp_runtime.domain import AMBIGUOUS, LENGTH, RAISES
from rasp_runtime.model import CompiledModel
from rasp_runtime.verify import find_mismatches, verify_inputs

# Partial by design; each sampler keeps to the domain.
PARTIAL_EXAMPLES = {"sort_unique": "'sel_new' = Select(target_pos, indices, EQ)",
                    "induction": "'after_match' = (Select(prev_token, tokens, EQ) & "}


def compile_warned(program, vocab, max_seq_len, **kwargs):
    """(model, the CompileWarnings compilation emitted)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = compile_rasp_to_model(program, vocab, max_seq_len, **kwargs)
    return model, [w for w in caught if issubclass(w.category, rasp.CompileWarning)]


def tenth() -> rasp.SOp:
    return rasp.Map(lambda x: 10 // x, rasp.tokens).named("tenth")


# The reference test suite's shapes: a categorical Aggregate that can select differing values.
REFERENCE_SHAPES = {
    "numerical_categorical_aggregate": lambda: rasp.Aggregate(
        rasp.Select(rasp.tokens, rasp.tokens, rasp.TRUE),
        rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))),
    "mean": lambda: rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, rasp.TRUE),
                                   rasp.tokens),
    "prev_mean": lambda: rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, rasp.LEQ),
                                        rasp.tokens),
}


# ------------------------------------------------------------------ recording and warning
def test_a_raising_map_is_recorded_and_warned_once():
    model, caught = compile_warned(tenth(), {0, 1, 2}, 4)
    assert len(caught) == 1 and "'tenth' raises ZeroDivisionError" in str(caught[0].message)
    (condition,) = model.domain.conditions
    assert (condition.label, condition.kind, condition.examples, condition.certain) == \
        ("tenth", RAISES, (0,), True)
    assert "integer division or modulo by zero" in condition.detail
    assert not model.domain.total


@pytest.mark.parametrize("shape", sorted(REFERENCE_SHAPES))
def test_reference_suite_shapes_warn_naming_the_aggregate(shape):
    program = REFERENCE_SHAPES[shape]().named(shape)
    model, caught = compile_warned(program, {1, 2, 3}, 5)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"'{shape}' is a categorical Aggregate" in message
    assert "= Select(tokens, tokens" in message
    (condition,) = model.domain.conditions
    assert condition.kind == AMBIGUOUS and not condition.certain


@pytest.mark.parametrize("program", [tenth, REFERENCE_SHAPES["mean"]])
def test_strict_refuses_a_partial_program_by_name(program):
    program = program()
    with pytest.raises(rasp.CompileError) as refused:
        compile_rasp_to_model(program, {0, 1, 2}, 4, strict=True)
    assert refused.value.label == program.label and "partial" in refused.value.reason
    assert "check=True" in refused.value.hint


@pytest.mark.parametrize("name", ["reverse", "hist", "sort", "most_freq", "dyck2"])
def test_total_programs_compile_without_a_warning(name):
    example = EXAMPLES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", rasp.CompileWarning)
        model = compile_rasp_to_model(example.build(5), example.vocab, 5)
    assert model.domain.total


@pytest.mark.parametrize("name", sorted(PARTIAL_EXAMPLES))
def test_partial_examples_warn_naming_their_selector_and_sample_inside(name):
    example = EXAMPLES[name]
    domain = program_domain(example.build(6), example.vocab, 6, False)
    (condition,) = domain.conditions
    assert condition.kind == AMBIGUOUS and condition.detail.startswith(PARTIAL_EXAMPLES[name])
    rng = random.Random(0)
    for _ in range(300):  # the sampler stays inside the domain: the evaluator never raises
        rasp.evaluate(example.build(6), example.sample(rng, 6))


def test_every_other_example_is_total_and_the_proofs_hold_on_any_input():
    """Examples proven total: the evaluator accepts uniformly random inputs."""
    rng = random.Random(1)
    for example in EXAMPLES.values():
        program = example.build(example.max_seq_len)
        domain = program_domain(program, example.vocab, example.max_seq_len, example.causal)
        assert domain.total == (example.name not in PARTIAL_EXAMPLES), (example.name, domain)
        if domain.total:
            for _ in range(100):
                xs = uniform(rng, example.vocab, rng.randint(1, example.max_seq_len))
                rasp.evaluate(program, xs, causal=example.causal)


@pytest.mark.parametrize("program, vocab, causal", [
    (classic.make_sort(rasp.tokens, rasp.tokens, 8, min_key=8), (1, 2, 3), False),  # keys tie
    (classic.make_sort(rasp.tokens, rasp.tokens, 8, min_key=1), (1, 2, 3), True),  # causal rank
    (rasp.Aggregate(rasp.Select(classic.make_hist(), rasp.indices, rasp.EQ), rasp.tokens),
     ("a", "b"), False),
    (classic.make_sort_unique(rasp.tokens, rasp.tokens), (1, 2, 3), False),
])
def test_ambiguity_is_not_proven_away_where_inputs_select_differing_values(program, vocab,
                                                                            causal):
    domain = program_domain(program, vocab, 8, causal)
    assert [c.kind for c in domain.conditions] == [AMBIGUOUS]


def test_a_rank_within_groups_needs_the_same_grouping_in_the_aggregate():
    """most_freq's `move` keeps only first occurrences, as its rank counts; without that
    conjunct two positions share a rank, and the evaluator rejects "aabb"."""
    hist, first = classic.make_hist(), paper.make_is_first()
    rank_key = rasp.SequenceMap(lambda h, i: (-h, i), hist, rasp.indices)
    firsts = rasp.Select(first, first, lambda k, q: k is True)
    target = rasp.SelectorWidth(rasp.Select(rank_key, rank_key, rasp.LT) & firsts)
    move = rasp.Select(target, rasp.indices, rasp.EQ)
    for selector, total in ((move & firsts, True), (move, False)):
        program = rasp.Aggregate(selector, rasp.tokens)
        assert program_domain(program, ("a", "b"), 6).total == total
    with pytest.raises(rasp.EvaluationError, match="differing values"):
        rasp.evaluate(program, list("aabb"))


def test_a_constant_of_fixed_length_limits_the_domain():
    program = rasp.ConstantSOp([1, 2, 3]).named("three")
    domain = program_domain(program, {"a"}, 5, False)
    assert [(c.label, c.kind, c.detail) for c in domain.conditions] == [("three", LENGTH, "3")]


# ------------------------------------------------------------------ enforcing at run time
def test_apply_check_reports_an_input_outside_the_domain():
    model, _ = compile_warned(tenth(), {0, 1, 2}, 4)
    assert model.apply(["BOS", 1, 2], check=True).decoded == ["BOS", 10, 5]
    with pytest.raises(rasp.DomainError) as outside:
        model.apply(["BOS", 2, 0], check=True)
    assert "'tenth' raises" in str(outside.value) and "not an answer" in str(outside.value)
    assert isinstance(outside.value, rasp.InputError)
    # Without check nothing runs but the weights (documented): no error.
    assert model.apply(["BOS", 2, 0]).decoded[1] == 5


def test_apply_check_reports_an_ambiguous_selection():
    model, _ = compile_warned(REFERENCE_SHAPES["mean"]().named("mean"), {1, 2, 3}, 4)
    assert model.apply(["BOS", 2, 2], check=True).decoded == ["BOS", 2, 2]
    with pytest.raises(rasp.DomainError, match="'mean' selects differing values"):
        model.apply(["BOS", 1, 2], check=True)


def test_verify_counts_inputs_outside_the_domain_by_reason():
    program = rasp.SequenceMap(lambda x, y: x // y, tenth(), rasp.tokens).named("ratio")
    model, _ = compile_warned(program, {0, 1, 2}, 3)
    inputs = [[1], [2, 1], [0], [1, 0], [2, 2, 0]]
    result = verify_inputs(model, program, inputs)
    assert result.checked == 2 and not result.mismatches
    assert dict(result.outside) == {"'tenth' raises": 3}


def test_the_domain_survives_save_and_load(tmp_path):
    model, _ = compile_warned(tenth(), {0, 1, 2}, 4)
    model.save(tmp_path / "m.npz")
    loaded = CompiledModel.load(tmp_path / "m.npz")
    assert loaded.domain == model.domain


# ------------------------------------------------------------------ never-empty selectors
@pytest.mark.parametrize("selector, causal", [
    (rasp.Select(rasp.tokens, rasp.tokens, rasp.TRUE), False),
    (rasp.Select(rasp.tokens, rasp.tokens, rasp.TRUE), True),
    (rasp.Select(rasp.indices, rasp.indices, rasp.LEQ), False),
    (rasp.Select(rasp.indices, rasp.indices, rasp.LEQ), True),
    (rasp.Select(rasp.indices, rasp.indices, rasp.GEQ), True),
    (rasp.Select(rasp.indices, rasp.indices, rasp.LT) | rasp.Select(rasp.indices, rasp.indices,
                                                                     rasp.EQ), True),
    # a composite over two SOps: one product tuple read as keys and queries
    (rasp.Select(rasp.indices, rasp.indices, rasp.LT) | rasp.Select(rasp.tokens, rasp.tokens,
                                                                     rasp.EQ), False),
])
def test_a_mean_over_a_never_empty_selector_needs_no_default(selector, causal):
    values = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
    program = rasp.numerical(rasp.Aggregate(selector, values))  # default None
    model = compile_rasp_to_model(program, {1, 2, 3}, 5, causal=causal)
    rng = random.Random(0)
    inputs = [uniform(rng, [1, 2, 3], rng.randint(1, 5)) for _ in range(60)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == 60 and not mismatches
    assert None not in rasp.evaluate(program, [3, 1, 2], causal=causal)


def test_a_mean_over_a_selector_that_can_be_empty_is_none_where_it_selects_nothing():
    # No default: the evaluator gives None at position 0, and so must the model (issue 30).
    values = rasp.numerical(rasp.Map(lambda x: x, rasp.tokens))
    program = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.LT),
                                            values))
    model = compile_rasp_to_model(program, {1, 2, 3}, 5)
    assert model.apply(["BOS", 1, 2, 3], check=True).decoded[1:] == [None, 1, 1.5]
