"""The value set of a numerical mean, against brute-force enumeration with Fractions.

`compiler.values._means` works in integers (and, for small integers, in floats); the
expected sets here enumerate every multiset of 1..n values and average it exactly.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from compiler import values

NUMBER_SETS = [(0, 1), (1,), (0,), (-1, 0, 1), (-1, 1), (-2, 3, 7), (0.1, 0.25, 1.0),
               (0.5, 1.5), (1 / 3, 2.0, -0.75), (0, 1, 2, 3, 4)]


def exact_means(numbers, n: int) -> set[Fraction]:
    return {Fraction(sum(choice), size)
            for size in range(1, n + 1)
            for choice in itertools.combinations_with_replacement(
                [Fraction(x) for x in numbers], size)}


@pytest.mark.parametrize("numbers", NUMBER_SETS)
@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_means_are_the_floats_of_every_exact_mean(numbers, n):
    expected = {float(m) for m in exact_means(numbers, n)}
    got = values._means([Fraction(x) for x in numbers], n)
    assert got == expected


@pytest.mark.parametrize("numbers", [(-1, 0, 1), (-2, 3, 7), (0.1, 0.25, 1.0),
                                     (1 / 3, 2.0, -0.75), (0, 1, 2, 3, 4)])
def test_too_many_means_is_decided_on_the_exact_count(numbers, monkeypatch):
    n = 6
    count = len(exact_means(numbers, n))
    for limit in (count - 1, count):
        monkeypatch.setattr(values, "MAX_VALUES", limit)
        result = values._means([Fraction(x) for x in numbers], n)
        assert (result is None) == (count > limit)


@pytest.mark.parametrize("make", [lambda t: Fraction(int(t == "a"), 3),
                                  lambda t: __import__("numpy").int64(t == "a")],
                         ids=["fraction", "numpy_int"])
def test_a_mean_of_fractions_or_numpy_integers_has_all_its_means(make):
    # Its value set once left such numbers out, so the reader's discretiser knew only the
    # default's mean and the model was wrong on 25 of 30 inputs.
    import rasp
    from compiler import compile_rasp_to_model
    from rasp_runtime.verify import find_mismatches

    x = rasp.numerical(rasp.Map(make, rasp.tokens))
    mean = rasp.numerical(rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, rasp.LEQ),
                                         x, default=0))
    program = rasp.categorical(rasp.Map(lambda v: bool(v > 0.1), mean))
    model = compile_rasp_to_model(program, ["a", "b"], 4)
    inputs = [list(xs) for k in range(1, 5) for xs in itertools.product("ab", repeat=k)]
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == 30 and not mismatches, mismatches[:1]
