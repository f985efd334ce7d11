"""Fusing an MLP chain into its reader only where that saves a layer or weights.

dyck3's `level` = f(depth, is_open) with is_open = (token is an opener): fused, `level`
is a table over depth × 6 bracket tokens; kept separate, over depth × 2 values of
is_open, and is_open's own MLP runs in layer 0, which already has an MLP: no layer is
added. Expected widths follow from those value counts; outputs come from rasp.evaluate.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from compiler import compile_rasp_to_model
from compiler import compiling
from compiler.fusion import fuse_alternatives
from compiler.lowering import lower_program
from examples.library import EXAMPLES
from rasp_runtime.verify import find_mismatches

BRACKETS3 = ("(", ")", "{", "}", "[", "]")


def example(name):
    return EXAMPLES[name]


def both_forms(name, max_len):
    """(fused, narrower) laid out, as compile_rasp_to_model weighs them."""
    program = example(name).build(max_len)
    vocab = sorted(example(name).vocab)
    fused, narrower = fuse_alternatives(lower_program(program, lambda sop: True), max_len)
    assert narrower is not None
    return [compiling._laid_out(p, vocab, max_len, False) for p in (fused, narrower)]


def test_dyck3_keeps_is_open_as_its_own_mlp_at_equal_depth_and_fewer_weights():
    fused, narrower = both_forms("dyck3", 5)
    assert len(fused.schedule.layers) == len(narrower.schedule.layers) == 6
    model = compile_rasp_to_model(example("dyck3").build(5), set(BRACKETS3), 5)
    assert len(model.config.layers) == 6
    assert model.parameter_count == narrower.size[1] < fused.size[1]
    assert any(label.startswith("is_open") for label in model.residual_labels)
    # depth takes 11 values at N = 5 (-5..5): `level` is 11 × 2 pair units, not 11 × 6
    depth_values = 11
    assert model.config.layers[1].mlp_hidden == depth_values * 2
    fused_level = [m for m in fused.schedule.layers[1].mlps]
    assert sum(m.hidden_space.dim for m in fused_level) == depth_values * len(BRACKETS3)


@pytest.mark.parametrize("name", ["dyck2", "dyck3", "detect_pattern"])
@pytest.mark.parametrize("max_len", [5, 10])
def test_narrower_forms_are_exact(name, max_len):
    ex = example(name)
    program = ex.build(max_len)
    model = compile_rasp_to_model(program, set(ex.vocab), max_len)
    rng = random.Random(max_len)
    inputs = [ex.sample(rng, max_len) for _ in range(150)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked > 0 and not mismatches


def test_choice_is_deterministic():
    build = lambda: compile_rasp_to_model(example("dyck3").build(5), set(BRACKETS3), 5)
    first, second = build(), build()
    assert first.params.keys() == second.params.keys()
    for name in first.params:
        for key in first.params[name]:
            assert np.asarray(first.params[name][key]).tobytes() == \
                np.asarray(second.params[name][key]).tobytes()


def test_programs_without_optional_chains_are_laid_out_once():
    program = example("reverse").build(5)
    fused, narrower = fuse_alternatives(lower_program(program, lambda sop: True), 5)
    assert narrower is None


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_weight_count_matches_the_assembled_model(name, monkeypatch):
    ex = example(name)
    laid_out = []
    original = compiling._laid_out
    monkeypatch.setattr(compiling, "_laid_out",
                        lambda *args: laid_out.append(original(*args)) or laid_out[-1])
    model = compile_rasp_to_model(ex.build(5), set(ex.vocab), 5, causal=ex.causal)
    assert model.parameter_count == min(form.size for form in laid_out)[1]


@pytest.mark.parametrize("name,layouts", [("dyck3", 2), ("detect_pattern", 1),
                                          ("shuffle_dyck2", 1)])
def test_the_unfused_form_is_laid_out_only_where_it_may_pay(name, layouts, monkeypatch):
    # detect_pattern's and shuffle_dyck2's chains are the same size either way: a second
    # layout there would only double compile time
    ex, calls = example(name), []
    original = compiling._laid_out
    monkeypatch.setattr(compiling, "_laid_out",
                        lambda *args: calls.append(1) or original(*args))
    compile_rasp_to_model(ex.build(8), set(ex.vocab), 8, causal=ex.causal)
    assert len(calls) == layouts
