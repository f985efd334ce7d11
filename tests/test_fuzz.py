"""Fuzzing the compiler with random well-typed RASP programs (tests/fuzz_programs.py).

For each of 200 derandomised programs: compiling either gives a model that
agrees with `rasp.evaluate` on 50 random inputs (those the evaluator accepts),
or raises a CompileError whose label names an expression of the program (a
refusal as empty only where the evaluator rejects every input); make_sort shapes
with keys broken by position are listed in model.domain exactly when they can
collide, with a colliding pair the evaluator confirms. Any other exception, or
any disagreement, fails with a minimised standalone repro.
Hypothesis shrinking is off by default because every shrink step compiles and
jits a model (minutes per failure); set FUZZ_SHRINK=1 to turn it on.

Another test compiles 300 seeded programs from the same generator (without
running them) and checks that at least 90% compile rather than being refused.
The large campaign is `python benchmarks/fuzz.py`.
"""

from __future__ import annotations

import collections
import os
import random

import jax
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from rasp import CompileError
from tests.fuzz_checks import case_inputs, check_case, minimise, reason_group, repro
from examples.random_programs.model import untracked_values
from tests.fuzz_programs import generate_case, programs

# Partial domains are expected here; check_case tests that model.domain lists them.
pytestmark = pytest.mark.filterwarnings("ignore::rasp.CompileWarning")

EXAMPLES = 200
MIN_COMPILE_SHARE = 0.90

OUTCOMES: collections.Counter[str] = collections.Counter()
REFUSALS: collections.Counter[str] = collections.Counter()
# compiled programs for which fewer than 10 of the 50 inputs were valid (programs
# with fewer than 10 possible inputs are checked on all of them and not counted)
FEW_VALID_INPUTS = []


@pytest.fixture(scope="module")
def fast_xla():
    """One XLA compilation per model dominates the run time; skipping XLA's
    optimisation passes roughly halves it. Restored afterwards."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


PHASES = tuple(Phase) if os.environ.get("FUZZ_SHRINK") else \
    (Phase.explicit, Phase.reuse, Phase.generate)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck), print_blob=False, phases=PHASES)
@given(case=programs())
def test_fuzzed_program_compiles_exactly_or_is_refused_by_name(fast_xla, case):
    outcome = check_case(case)
    OUTCOMES[outcome.status] += 1
    if outcome.status == "refused":
        REFUSALS[reason_group(outcome.reason)] += 1
    if outcome.status == "exact" and outcome.checked < min(10, outcome.tried):
        FEW_VALID_INPUTS.append(outcome.checked)
    if not outcome.ok:
        small, small_outcome = minimise(case, outcome)
        raise AssertionError(f"{outcome.describe(case)}\n\nminimised repro:\n"
                             f"{repro(small, small_outcome)}")


def test_most_fuzzed_programs_compile():
    from compiler.compiling import compile_rasp_to_model

    outcomes: collections.Counter[str] = collections.Counter()
    refusals: collections.Counter[str] = collections.Counter()
    for i in range(300):
        program, vocab, max_seq_len, causal = generate_case(random.Random(f"share:{i}"))
        try:
            compile_rasp_to_model(program, vocab, max_seq_len, causal=causal)
            outcomes["compiled"] += 1
        except CompileError as error:
            outcomes["refused"] += 1
            refusals[reason_group(error.reason)] += 1
    share = outcomes["compiled"] / sum(outcomes.values())
    assert share >= MIN_COMPILE_SHARE, f"{share:.0%} compiled; refusals: {dict(refusals)}"


def test_generator_knows_every_value_its_programs_take():
    """The generator's value sets (which make its lookup tables total) contain every
    value the evaluator produces, so few inputs are rejected for a missing entry."""
    for i in range(150):
        case = generate_case(random.Random(f"tracking:{i}"))
        for xs in case_inputs(case, 10):
            assert not untracked_values(case, xs), (case, xs)
