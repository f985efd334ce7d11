"""Seeded random RASP programs (one generator, used by the fuzzer and the model zoo).

`generate_case(random.Random(seed))` gives a `FuzzCase`: the program, its
vocabulary, max_seq_len and causality, and the program as Python source. Needs
no test extras; tests/fuzz_programs.py drives the same generator with hypothesis.
"""

from examples.random_programs.generator import generate_case
from examples.random_programs.model import Chooser, FuzzCase, RandomChooser

__all__ = ["Chooser", "FuzzCase", "RandomChooser", "generate_case"]
