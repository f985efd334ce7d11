"""Compiled models agree with the evaluator on every tested input.

Exhaustive where the input space has at most 5,000 sequences, else 300 random
valid inputs. CI covers N = 5 and 16; N = 64 is marked slow (`make test-slow`).
"""

import pytest

from examples.library import EXAMPLES
from tests.helpers import assert_compiles_exactly

CLASSIC = ["length", "reverse", "hist", "sort_unique", "sort", "sort_freq", "frac_prevs",
           "pair_balance", "shuffle_dyck1", "shuffle_dyck2", "shift_by", "detect_pattern",
           "count", "count_less_freq", "nary_sequencemap"]


@pytest.mark.parametrize("max_len", [5, 16])
@pytest.mark.parametrize("name", CLASSIC)
def test_classic_programs_are_exact(name, max_len):
    assert_compiles_exactly(EXAMPLES[name], max_len)


@pytest.mark.parametrize("max_len", [5, 16])
@pytest.mark.parametrize("name", ["frac_prevs", "shift_by"])
def test_causal_compiles_are_exact(name, max_len):
    model, _ = assert_compiles_exactly(EXAMPLES[name], max_len, causal=True)
    assert model.config.causal


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_is_exact_at_its_default_size(name):
    example = EXAMPLES[name]
    model, _ = assert_compiles_exactly(example, example.max_seq_len, random_count=200)
    # Partial by design (repeated keys; inconsistent successors): the rest is total.
    assert model.domain.total == (name not in ("sort_unique", "induction")), model.domain


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASSIC + ["causal:frac_prevs", "causal:shift_by"])
def test_classic_programs_are_exact_at_64(name):
    causal = name.startswith("causal:")
    assert_compiles_exactly(EXAMPLES[name.removeprefix("causal:")], 64, causal=causal)
