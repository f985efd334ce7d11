"""Shared test helpers: input enumeration and model-vs-evaluator checks."""

from __future__ import annotations

import itertools
import random

from compiler import compile_rasp_to_model
from examples.library import Example, unique
from rasp_runtime.verify import find_mismatches

EXHAUSTIVE_LIMIT = 5000


def input_space_size(vocab, max_len: int, distinct: bool) -> int:
    total = 0
    for n in range(1, max_len + 1):
        count = 1
        for i in range(n):
            count *= (len(vocab) - i) if distinct else len(vocab)
        total += count
    return total


def inputs_to_test(example: Example, vocab, max_len: int, random_count: int = 300, seed: int = 0):
    """Every input if there are at most EXHAUSTIVE_LIMIT, else `random_count` samples."""
    distinct = example.sampler is unique
    if input_space_size(vocab, max_len, distinct) <= EXHAUSTIVE_LIMIT:
        make = itertools.permutations if distinct else \
            (lambda v, n: itertools.product(v, repeat=n))
        return [list(xs) for n in range(1, max_len + 1) for xs in make(vocab, n)]
    rng = random.Random(seed)
    return [example.sample(rng, max_len, vocab) for _ in range(random_count)]


def vocab_for(example: Example, max_len: int):
    """The example's vocabulary, widened for distinct-token inputs to reach max_len."""
    if example.sampler is unique:
        return tuple(range(1, max(max_len, len(example.vocab)) + 1))
    return example.vocab


def assert_compiles_exactly(example: Example, max_len: int, causal: bool = False,
                            random_count: int = 300, min_checked: int = 50,
                            layer_norm: bool = False, attention: str = "hard"):
    vocab = vocab_for(example, max_len)
    program = example.build(max_len)
    model = compile_rasp_to_model(program, set(vocab), max_len, causal=causal,
                                  layer_norm=layer_norm, attention=attention)
    inputs = inputs_to_test(example, vocab, max_len, random_count)
    checked, mismatches = find_mismatches(model, program, inputs)
    assert not mismatches, f"{example.name} N={max_len}: {len(mismatches)} mismatches, " \
                           f"first: {mismatches[0]}"
    assert checked >= min(min_checked, len(inputs)), f"only {checked} valid inputs"
    return model, checked


def every_input(vocab, max_len: int) -> list[list]:
    """Every input of length 1..max_len over `vocab`."""
    return [list(xs) for n in range(1, max_len + 1) for xs in itertools.product(vocab, repeat=n)]


def assert_exact_on_all_inputs(program, vocab, max_len: int, **options):
    """Compile `program` (with `options`) and compare it with the evaluator on every
    input of length 1..max_len; returns the model."""
    model = compile_rasp_to_model(program, vocab, max_len, **options)
    inputs = every_input(vocab, max_len)
    checked, mismatches = find_mismatches(model, program, inputs)
    assert checked == len(inputs) and not mismatches, mismatches[:1]
    return model


def compile_example(name: str, max_len: int | None = None, **options):
    """Library example `name` compiled at `max_len` (default: its own max_seq_len)."""
    from examples.library import EXAMPLES

    example = EXAMPLES[name]
    n = example.max_seq_len if max_len is None else max_len
    return compile_rasp_to_model(example.build(n), example.vocab, n, **options)
