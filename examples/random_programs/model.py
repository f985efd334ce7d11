"""The random-program generator's model of a program: choices, tracked value sets, source.

Used by examples.random_programs.generator, by tests/fuzz_checks.py (the fuzz
property) and by the model zoo (interp.zoo).
"""

from __future__ import annotations

import bisect
import dataclasses
import numbers
import random
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import rasp

MAX_DEPTH = 8          # longest chain of SOps from an input to the output
TABLE_LIMIT = 24       # most values an SOp may take to feed a lookup table
PAIR_LIMIT = 64        # most (x, y) pairs in a SequenceMap or predicate table
MEANS_LIMIT = 300      # most distinct means a numerical Aggregate may produce
INPUTS_PER_PROGRAM = 50
COMPARISONS = ("EQ", "LT", "LEQ", "GT", "GEQ", "NEQ", "TRUE", "FALSE")
ORDERED = ("LT", "LEQ", "GT", "GEQ")


# ------------------------------------------------------------------ choices


class Chooser:
    """The generator's only source of randomness."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def chance(self, p: float) -> bool:
        """True with probability about p (False is the simpler outcome)."""
        return self.integer(0, 99) >= 100 - round(100 * p)

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.integer(0, len(options) - 1)]

    def weighted(self, options: Sequence[tuple[Any, int]]) -> Any:
        """An option with probability proportional to its integer weight."""
        r = self.integer(0, sum(w for _, w in options) - 1)
        for option, weight in options:
            if r < weight:
                return option
            r -= weight
        raise AssertionError("unreachable")

    def sample(self, options: Sequence[Any], k: int) -> list[Any]:
        pool, out = list(options), []
        for _ in range(min(k, len(pool))):
            out.append(pool.pop(self.integer(0, len(pool) - 1)))
        return out


class RandomChooser(Chooser):
    def __init__(self, rng: random.Random):
        self.rng = rng

    def integer(self, lo, hi):
        return self.rng.randint(lo, hi)


# ------------------------------------------------------------------ value sets


def distinct(values) -> tuple:
    """Distinct values, merging equal ones (1, 1.0 and True) as the compiler does."""
    return tuple(dict.fromkeys(values))


def is_number(v) -> bool:
    return isinstance(v, numbers.Real)


def has_fraction(values) -> bool:
    """Whether some value is a non-integral float (looked up through bisect)."""
    return any(isinstance(v, float) and not v.is_integer() for v in values)


def value_kind(values) -> str:
    if all(is_number(v) for v in values):
        return "num"
    if all(isinstance(v, str) for v in values):
        return "str"
    return "mixed"


def comparable(a: Node, b: Node) -> bool:
    """Whether <, <= ... are defined between the two SOps' values."""
    ka, kb = value_kind(a.values), value_kind(b.values)
    return ka == kb and ka in ("num", "str")


def dyadic(v, limit: int = 16) -> bool:
    """Small numbers with denominator 1, 2, 4 or 8: sums of them are exact floats."""
    if not is_number(v) or abs(v) > limit:
        return False
    return Fraction(v).denominator in (1, 2, 4, 8)


def means(values, n: int, limit: int = MEANS_LIMIT) -> set[Fraction] | None:
    """Every mean of a multiset of 1..n of `values`, or None if there are more than limit."""
    nums = {Fraction(v) for v in values}
    sums, out = {Fraction(0)}, set()
    for size in range(1, n + 1):
        sums = {s + x for s in sums for x in nums}
        out.update(s / size for s in sums)
        if len(out) > limit:
            return None
    return out


def midpoints(xs: Sequence[float]) -> tuple[float, ...]:
    return tuple((a + b) / 2 for a, b in zip(xs, xs[1:]))


# ------------------------------------------------------------------ the program


@dataclasses.dataclass(frozen=True)
class Node:
    """One generated SOp: its source variable and what it can hold."""

    var: str
    values: tuple            # a superset of the non-None values it can take
    none: bool               # whether it may be None
    numerical: bool          # encoding
    depth: int
    indices: bool = False    # the categorical `rasp.indices`

    @property
    def small(self) -> bool:
        return len(self.values) <= TABLE_LIMIT


@dataclasses.dataclass(frozen=True)
class Sel:
    var: str
    depth: int
    at_most_one: bool        # Select(indices, q, EQ): each query picks at most one key


@dataclasses.dataclass(frozen=True)
class Line:
    var: str
    code: str
    deps: tuple[str, ...]


@dataclasses.dataclass(frozen=True, repr=False)
class FuzzCase:
    """A generated program; unpacks as (program, vocab, max_seq_len, causal)."""

    program: rasp.SOp
    vocab: tuple
    max_seq_len: int
    causal: bool
    lines: tuple[Line, ...]
    output: str
    # each variable's expression, and the generator's (values, may_be_none) per SOp
    exprs: dict = dataclasses.field(default_factory=dict, compare=False)
    tracked: dict = dataclasses.field(default_factory=dict, compare=False)

    def __iter__(self):
        return iter((self.program, self.vocab, self.max_seq_len, self.causal))

    @property
    def program_source(self) -> str:
        needed = _closure(self.lines, self.output)
        body = [f"{l.var} = {l.code}" for l in self.lines if l.var in needed]
        return "\n".join(body + [f"program = {self.output}"])

    @property
    def source(self) -> str:
        """A standalone script that builds the program and compiles it."""
        return (f"import bisect\nimport rasp\nfrom compiler.compiling import compile_rasp_to_model\n\n"
                f"{self.program_source}\n\n"
                f"vocab, max_seq_len, causal = {list(self.vocab)!r}, {self.max_seq_len}, "
                f"{self.causal}\n"
                f"model = compile_rasp_to_model(program, vocab, max_seq_len, causal=causal)\n")

    def size(self) -> int:
        return len(_closure(self.lines, self.output))

    def sop_vars(self) -> list[str]:
        """Variables of the SOps the output depends on (selectors excluded)."""
        needed = _closure(self.lines, self.output)
        return [l.var for l in self.lines if l.var in needed and l.var.startswith("v")]

    def with_output(self, var: str) -> FuzzCase:
        return build_case(self.lines, var, self.vocab, self.max_seq_len, self.causal,
                          self.tracked)

    def with_max_seq_len(self, max_seq_len: int) -> FuzzCase:
        return dataclasses.replace(self, max_seq_len=max_seq_len)

    def __repr__(self):
        return (f"FuzzCase(vocab={list(self.vocab)!r}, max_seq_len={self.max_seq_len}, "
                f"causal={self.causal}):\n{self.program_source}")

    def _repr_pretty_(self, printer, cycle):  # how hypothesis shows a falsifying example
        printer.text(repr(self))


def _closure(lines: Sequence[Line], output: str) -> set[str]:
    deps = {l.var: l.deps for l in lines}
    needed, stack = set(), [output]
    while stack:
        var = stack.pop()
        if var not in needed:
            needed.add(var)
            stack.extend(deps.get(var, ()))
    return needed


def build_case(lines, output, vocab, max_seq_len, causal, tracked=None) -> FuzzCase:
    needed = _closure(lines, output)
    lines = tuple(l for l in lines if l.var in needed)
    namespace = {"rasp": rasp, "bisect": bisect}
    exec("\n".join(f"{l.var} = {l.code}" for l in lines), namespace)  # noqa: S102
    return FuzzCase(namespace[output], tuple(vocab), max_seq_len, causal, lines, output,
                    {l.var: namespace[l.var] for l in lines},
                    {v: t for v, t in (tracked or {}).items() if v in needed})


def untracked_values(case: FuzzCase, xs) -> list[str]:
    """Values the evaluator gives on `xs` that the generator did not expect (a
    self-check of the value tracking that keeps lookup tables total)."""
    try:
        _, values = rasp.evaluate(case.program, xs, causal=case.causal,
                                  return_intermediates=True)
    except rasp.EvaluationError:
        return []
    labels = rasp.unique_labels(rasp.topological_order(case.program))
    problems = []
    for var, (known, none) in case.tracked.items():
        for v in values[labels[case.exprs[var].unique_id]]:
            if v is None and none:
                continue
            if v is None or not any(v == k or (is_number(v) and is_number(k)
                                               and abs(v - k) <= 1e-9) for k in known):
                problems.append(f"{var} = {v!r} not in {known!r} (None: {none})")
    return problems


