"""The random-program generator (examples.random_programs) as a hypothesis strategy.

Every choice is a hypothesis draw, so a failing program shrinks. The property it
is checked against is tests/fuzz_checks.py `check_case`: compiling either
succeeds and the model agrees with `rasp.evaluate` on every input the evaluator
accepts, or raises a CompileError whose label names an expression of the program.
"""

from __future__ import annotations

from hypothesis import strategies as st

from examples.random_programs import Chooser, generate_case

__all__ = ["DrawChooser", "generate_case", "programs"]


class DrawChooser(Chooser):
    """Choices drawn by hypothesis."""

    def __init__(self, draw):
        self.draw = draw

    def integer(self, lo, hi):
        # Drawn from a wide range and reduced, so choices are about uniform (hypothesis
        # favours the ends of a small range); still shrinks towards `lo`.
        return lo if lo == hi else lo + self.draw(st.integers(0, 2**16 - 1)) % (hi - lo + 1)


def programs(max_ops: int = 9, max_len: int = 12, causal_share: float = 0.25):
    """Hypothesis strategy of FuzzCase, i.e. (program, vocab, max_seq_len, causal)."""
    @st.composite
    def strategy(draw):
        return generate_case(DrawChooser(draw), max_ops, max_len, causal_share)
    return strategy()
