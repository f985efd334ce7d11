"""RASP-syntax programs against RASP's own semantics, compiled to weights.

Each program's expected output comes from an oracle written here in plain Python
over lists, following the RASP paper and interpreter (select(k, q, op) selects key
k for query q when `k op q`; a numerical aggregate is the mean of the selected
values, 0 when none is selected; an aggregate of several non-numbers is an error;
booleans are 0/1 in arithmetic; round halves to even; RASP's precedence). The
compiled model must agree with the oracle on every input where RASP has a value.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import pytest

import rasp
from compiler import compile_rasp_to_model
from rasp_runtime.verify import outputs_agree

MAX_LEN = 5


class Undefined(Exception):
    """RASP has no value on this input (its interpreter raises)."""


def select(keys, queries, op) -> list[list[bool]]:
    """Indexed [query][key], as the paper draws selectors."""
    return [[bool(op(k, q)) for k in keys] for q in queries]


def aggregate(matrix, values, default=0) -> list:
    out = []
    for row in matrix:
        chosen = [v for v, s in zip(values, row) if s]
        if not chosen:
            out.append(default)
        elif len(chosen) == 1:
            out.append(chosen[0])
        elif all(type(v) in (int, float) for v in chosen):
            out.append(sum(chosen) / len(chosen))
        else:
            raise Undefined("several non-numbers selected")
    return out


def width(matrix) -> list[int]:
    return [sum(row) for row in matrix]


def half_even(x: float) -> int:
    floor = math.floor(x)
    if x - floor != 0.5:
        return floor + (x - floor > 0.5)
    return floor if floor % 2 == 0 else floor + 1


def each(f: Callable, *columns) -> list:
    return [f(*values) for values in zip(*columns)]


def idx(xs):
    return list(range(len(xs)))


def every(xs):
    return [[True] * len(xs) for _ in xs]


def divide(a, b):
    if b == 0:
        raise Undefined("division by zero")
    return a / b


def item(table, i):
    if not -len(table) <= i < len(table):
        raise Undefined("index out of range")
    return table[i]


def key(table, k):
    if k not in table:
        raise Undefined("missing key")
    return table[k]


LT, LE, EQ, NE, GT, GE = ((lambda k, q: k < q), (lambda k, q: k <= q), (lambda k, q: k == q),
                          (lambda k, q: k != q), (lambda k, q: k > q), (lambda k, q: k >= q))
ABC = ("a", "b", "c")

# (name, source binding `y`, vocab, oracle: tokens -> expected list or raise Undefined)
CASES = [
    ("precedence_pow_mul_mod_add", "y = indices + 2 * indices ^ 2 % 3;", ABC,
     lambda xs: [i + (2 * i ** 2) % 3 for i in idx(xs)]),
    ("pow_groups_left", "y = indices ^ 2 ^ 3;", ABC, lambda xs: [(i ** 2) ** 3 for i in idx(xs)]),
    ("unary_minus_binds_tightest", "y = -indices ^ 2;", ABC, lambda xs: [(-i) ** 2 for i in idx(xs)]),
    ("mod_looser_than_mul", "y = indices * 3 % 4 * 2;", ABC,
     lambda xs: [(i * 3) % (4 * 2) for i in idx(xs)]),
    ("and_or_one_level_left_to_right",
     'y = tokens == "a" or tokens == "b" and indices > 0;', ABC,
     lambda xs: [(t == "a" or t == "b") and i > 0 for t, i in zip(xs, idx(xs))]),
    ("not_binds_tighter_than_comparison", "y = not indices + 1;", ABC,
     lambda xs: [int(i == 0) + 1 for i in idx(xs)]),
    ("comparisons_group_left", "y = indices < 2 < 1;", ABC,
     lambda xs: [int(i < 2) < 1 for i in idx(xs)]),
    ("ternary_groups_left", 'y = "a" if indices == 0 else "b" if indices == 1 else "c";', ABC,
     lambda xs: [("a" if i == 0 else "b") if i == 1 else "c" for i in idx(xs)]),
    ("in_binds_loosest", "y = indices == 0 in [True];", ABC, lambda xs: [i == 0 for i in idx(xs)]),
    ("reverse", "y = aggregate(select(indices, length - indices - 1, ==), tokens);", ABC,
     lambda xs: aggregate(select(idx(xs), [len(xs) - i - 1 for i in idx(xs)], EQ), xs)),
    ("hist", "y = selector_width(select(tokens, tokens, ==));", ABC,
     lambda xs: width(select(xs, xs, EQ))),
    ("frac_of_a", 'y = aggregate(select(1, 1, ==), indicator(tokens == "a"));', ABC,
     lambda xs: aggregate(every(xs), [int(t == "a") for t in xs])),
    ("mean_of_earlier_indices_default_0", "y = aggregate(select(indices, indices, <), indices);",
     ABC, lambda xs: aggregate(select(idx(xs), idx(xs), LT), idx(xs))),
    ("previous_token_explicit_default",
     'y = aggregate(select(indices, indices - 1, ==), tokens, "-");', ABC,
     lambda xs: aggregate(select(idx(xs), [i - 1 for i in idx(xs)], EQ), xs, "-")),
    ("categorical_aggregate_selects_one", "y = aggregate(select(tokens, tokens, ==), tokens);",
     ABC, lambda xs: aggregate(select(xs, xs, EQ), xs)),
    ("width_of_and", "y = selector_width(select(tokens, tokens, ==) and "
     "select(indices, indices, <));", ABC,
     lambda xs: width([[a and b for a, b in zip(r, s)] for r, s in
                       zip(select(xs, xs, EQ), select(idx(xs), idx(xs), LT))])),
    ("width_of_or", "y = selector_width(select(indices, indices, <) or "
     "select(tokens, tokens, ==));", ABC,
     lambda xs: width([[a or b for a, b in zip(r, s)] for r, s in
                       zip(select(idx(xs), idx(xs), LT), select(xs, xs, EQ))])),
    ("width_of_not", "y = selector_width(not select(tokens, tokens, ==));", ABC,
     lambda xs: width([[not a for a in r] for r in select(xs, xs, EQ)])),
    ("true_and_false_patterns",
     "y = selector_width(select(1, 1, ==)) * 10 + selector_width(select(0, 1, ==));", ABC,
     lambda xs: [len(xs) * 10 + 0 for _ in xs]),
    ("select_orders", "y = selector_width(select(indices, indices, >=)) * 10 + "
     "selector_width(select(indices, indices, >)) - selector_width(select(indices, indices, !=));",
     ABC, lambda xs: each(lambda a, b, c: a * 10 + b - c, width(select(idx(xs), idx(xs), GE)),
                          width(select(idx(xs), idx(xs), GT)),
                          width(select(idx(xs), idx(xs), NE)))),
    ("select_against_constant", "y = aggregate(select(indices, 0, ==), tokens);", ABC,
     lambda xs: aggregate(select(idx(xs), [0] * len(xs), EQ), xs)),
    ("round_halves_to_even", "y = round(indices / 2 + 0.5);", ABC,
     lambda xs: [half_even(i / 2 + 0.5) for i in idx(xs)]),
    ("count_by_round", 'y = round(length * aggregate(select(1, 1, ==), indicator(tokens == "a")));',
     ABC, lambda xs: [xs.count("a")] * len(xs)),
    ("booleans_are_0_1", 'y = (tokens == "a") + (tokens == "b") * 2;', ABC,
     lambda xs: [int(t == "a") + int(t == "b") * 2 for t in xs]),
    ("division", "y = 12 / (indices + 1);", ABC, lambda xs: [12 / (i + 1) for i in idx(xs)]),
    ("division_by_zero_is_outside", "y = 6 / (tokens - 2);", (1, 2, 3),
     lambda xs: [divide(6, t - 2) for t in xs], "tokens = tokens_int;"),
    ("modulo_of_negative", "y = (indices - 3) % 4;", ABC, lambda xs: [(i - 3) % 4 for i in idx(xs)]),
    ("for_loop_unrolled", "y = indices; for k in range(3) { y = y + k; }", ABC,
     lambda xs: [i + 3 for i in idx(xs)]),
    ("for_loop_over_list", 'y = tokens == "z"; for t in ["a", "c"] { y = y or tokens == t; }',
     ABC, lambda xs: [t in ("a", "c") for t in xs]),
    ("def_locals_and_multiple_returns",
     "def around(s) { lo = s - 1; hi = s + 1; return lo, hi; } a, b = around(indices); y = a * b;",
     ABC, lambda xs: [(i - 1) * (i + 1) for i in idx(xs)]),
    ("list_indexed_by_sop", 'y = ["x", "y", "z"][indices - 1];', ABC,
     lambda xs: [item(["x", "y", "z"], i - 1) for i in idx(xs)]),
    ("dict_indexed_by_sop", 'y = {"a": 1, "b": 2}[tokens];', ABC,
     lambda xs: [key({"a": 1, "b": 2}, t) for t in xs]),
    ("sop_in_list", 'y = tokens in ["a", "c"];', ABC, lambda xs: [t in ("a", "c") for t in xs]),
    ("atom_in_sop", 'y = "a" in tokens;', ABC, lambda xs: ["a" in xs] * len(xs)),
    ("constant_broadcast", "y = aggregate(select(indices, indices, <=), 1) + 7;", ABC,
     lambda xs: [a + 7 for a in aggregate(select(idx(xs), idx(xs), LE), [1] * len(xs))]),
    ("sop_indexed_by_position", "y = tokens[0] + tokens[-1];", ABC,
     lambda xs: [xs[0] + xs[-1]] * len(xs)),
    ("tokens_reassigned_int", "tokens = tokens_int; y = aggregate(select(indices, indices, <=), "
     "tokens);", (1, 2, 3), lambda xs: aggregate(select(idx(xs), idx(xs), LE), list(xs))),
    ("tokens_bool", "y = not tokens_bool or indices == 1;", (False, True),
     lambda xs: [(not t) or i == 1 for t, i in zip(xs, idx(xs))]),
    ("tokens_float", "y = tokens_float * 2 - indices;", (0.5, 1.5),
     lambda xs: [t * 2 - i for t, i in zip(xs, idx(xs))]),
    ("comprehensions_zip_len",
     'pairs = [[a, b] for a, b in zip(["a", "b", "c"], [1, 2, 3])]; '
     "y = {p[0]: p[1] * len(pairs) for p in pairs}[tokens];", ABC,
     lambda xs: [{"a": 3, "b": 6, "c": 9}[t] for t in xs]),
    ("string_concatenation_and_ne", 'y = tokens + tokens if tokens != "a" else "-";', ABC,
     lambda xs: [t + t if t != "a" else "-" for t in xs]),
    ("atoms_fold_and_unary_plus", "k = (1 or 0) + +2; y = indices * k;", ABC,
     lambda xs: [i * 3 for i in idx(xs)]),
    ("sort_paper", "tokens = tokens_int; smaller = select(tokens, tokens, <) or "
     "(select(tokens, tokens, ==) and select(indices, indices, <)); "
     "y = aggregate(select(selector_width(smaller), indices, ==), tokens);", (1, 2, 3),
     lambda xs: sorted(xs)),
    ("dyck1_paper_definition",
     'up = select(indices, indices, <=); '
     'opens = round((indices + 1) * aggregate(up, indicator(tokens == "(")));'
     'closes = round((indices + 1) * aggregate(up, indicator(tokens == ")")));'
     'balance = opens - closes; bad = aggregate(up, indicator(balance < 0));'
     'y = "F" if bad > 0 else ("T" if balance == 0 else "P");', ("(", ")"),
     lambda xs: _dyck1(xs)),
]


def _dyck1(xs):
    out, depth, broken = [], 0, False
    for t in xs:
        depth += 1 if t == "(" else -1
        broken = broken or depth < 0
        out.append("F" if broken else ("T" if depth == 0 else "P"))
    return out


def _inputs(vocab) -> list[list]:
    rng = random.Random(0)
    short = [list(p) for n in range(1, 4) for p in itertools.product(vocab, repeat=n)]
    return short + [[rng.choice(vocab) for _ in range(rng.randint(4, MAX_LEN))]
                    for _ in range(30)]


def test_there_are_at_least_30_programs():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_compiled_program_agrees_with_rasp_semantics(case):
    name, source, vocab, oracle, *prelude = case
    program = rasp.parse("".join(prelude) + source)["y"]
    model = compile_rasp_to_model(program, vocab, MAX_LEN)
    defined, undefined = [], []
    for xs in _inputs(vocab):
        try:
            defined.append((xs, oracle(xs)))
        except Undefined:
            undefined.append(xs)
    assert defined, "every input is outside RASP's domain"
    outputs = model.apply_batch([["BOS", *xs] for xs, _ in defined])
    for (xs, expected), got in zip(defined, outputs):
        assert outputs_agree(expected, got[1:]), (xs, expected, got[1:])


@pytest.mark.parametrize("name", ["division_by_zero_is_outside", "list_indexed_by_sop",
                                  "dict_indexed_by_sop"])
def test_where_rasp_errors_the_evaluator_raises(name):
    """A raising function leaves the input outside the domain (never a silent default)."""
    _, source, vocab, oracle, *prelude = next(c for c in CASES if c[0] == name)
    program = rasp.parse("".join(prelude) + source)["y"]
    undefined = [xs for xs in _inputs(vocab) if _is_undefined(oracle, xs)]
    assert undefined
    for xs in undefined:
        with pytest.raises(rasp.EvaluationError):
            rasp.evaluate(program, xs)


def _is_undefined(oracle, xs) -> bool:
    try:
        oracle(xs)
    except Undefined:
        return True
    return False
