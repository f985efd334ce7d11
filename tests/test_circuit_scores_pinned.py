"""Circuit methods' scores stay identical: pinned per example (N = 5, component, 16 pairs).

Expected values come from tests/data/circuit_scores.json, written by
tests/pin_circuit_scores.py from the code before the hooked forward was rewritten;
they must match exactly (the same float32 operations give the same floats). A few
quick examples run in the fast suite, every example under `make test-slow`.
"""

from __future__ import annotations

import json

import pytest

from examples.library import EXAMPLES
from tests.pin_circuit_scores import PIN_FILE, method_scores

PINNED = json.loads(PIN_FILE.read_text())
QUICK = {"count", "reverse", "frac_prevs"}  # one numerical output (MSE), two KL
# The .rasp twins of Python examples run with the sweeps (`make test-sweep`), to keep CI
# under 20 minutes: their Python twins stay in the slow set, and
# tests/test_rasp_syntax_examples.py checks each twin's outputs against the Python
# program's on the same inputs.
TWINS = {n for n in EXAMPLES if n.startswith("rasp_") and n.removeprefix("rasp_") in EXAMPLES}


def test_every_example_is_pinned():
    assert set(PINNED) == set(EXAMPLES)


def _marks(name):
    return () if name in QUICK else pytest.mark.sweep if name in TWINS else pytest.mark.slow


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in EXAMPLES])
def test_circuit_scores_are_unchanged(name):
    assert method_scores(name) == PINNED[name]
