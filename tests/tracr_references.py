"""Plain-Python references for the Tracr-style programs, and their input generators.

Each reference says directly what a program computes, without RASP.
"""

from __future__ import annotations

import random

CASES = 300
MAX_LEN = 10

# ---------------------------------------------------------------- references


def ref_length(xs):
    return [len(xs)] * len(xs)


def ref_reverse(xs):
    return list(reversed(xs))


def ref_hist(xs):
    return [sum(1 for y in xs if y == x) for x in xs]


def ref_sort_unique(vals, keys):
    pairs = sorted(zip(keys, range(len(keys))))
    return [vals[i] for _, i in pairs]


def ref_stable_sort(vals, keys):
    order = sorted(range(len(keys)), key=lambda i: (keys[i], i))
    return [vals[i] for i in order]


def ref_sort_freq(xs):
    counts = {x: xs.count(x) for x in xs}
    order = sorted(range(len(xs)), key=lambda i: (-counts[xs[i]], i))
    return [xs[i] for i in order]


def ref_frac_prevs(flags):
    out, seen = [], 0
    for i, flag in enumerate(flags):
        seen += 1 if flag else 0
        out.append(seen / (i + 1))
    return out


def ref_pair_balance(xs, open_token, close_token):
    out, depth = [], 0
    for i, x in enumerate(xs):
        depth += (x == open_token) - (x == close_token)
        out.append(depth / (i + 1))
    return out


def ref_shuffle_dyck(xs, pairs):
    ok = True
    for open_token, close_token in pairs:
        depth = 0
        for x in xs:
            if x == open_token:
                depth += 1
            elif x == close_token:
                depth -= 1
                if depth < 0:
                    ok = False
        if depth != 0:
            ok = False
    return [ok] * len(xs)


def ref_shift_by(offset, xs):
    return [xs[i - offset] if i >= offset else None for i in range(len(xs))]


def ref_detect_pattern(xs, pattern):
    m = len(pattern)
    out = []
    for i in range(len(xs)):
        if i < m - 1:
            out.append(None)
        else:
            out.append(list(xs[i - m + 1:i + 1]) == list(pattern))
    return out


def ref_count_less_freq(xs, n):
    total = sum(1 for x in xs if xs.count(x) <= n)
    return [total] * len(xs)


def ref_count(xs, token):
    return [xs.count(token)] * len(xs)


def ref_prefix_count(xs, token):
    return [xs[:i + 1].count(token) for i in range(len(xs))]


# ------------------------------------------------------------------- inputs


def unique_key_inputs(seed, cases=CASES):
    rng = random.Random(seed)
    return [rng.sample(range(-10, 20), rng.randint(1, MAX_LEN)) for _ in range(cases)]


def balanced_word(rng, open_token, close_token, pairs):
    """A random balanced word with `pairs` bracket pairs."""
    word, depth, left = [], 0, pairs
    while left or depth:
        if left and (depth == 0 or rng.random() < 0.5):
            word.append(open_token)
            depth += 1
            left -= 1
        else:
            word.append(close_token)
            depth -= 1
    return word


def shuffle(rng, words):
    """A random interleaving of `words`, each kept in order."""
    words = [list(w) for w in words if w]
    out = []
    while words:
        w = rng.choice(words)
        out.append(w.pop(0))
        if not w:
            words.remove(w)
    return out


def dyck_inputs(seed, pairs, extra="", cases=CASES):
    """Half random strings, half shuffles of balanced words (maybe perturbed)."""
    rng = random.Random(seed)
    alphabet = "".join(pairs) + extra
    inputs = []
    while len(inputs) < cases:
        if rng.random() < 0.5:
            xs = [rng.choice(alphabet) for _ in range(rng.randint(1, MAX_LEN))]
        else:
            budget = MAX_LEN // 2
            words = []
            for open_token, close_token in pairs:
                k = rng.randint(0, budget)
                budget -= k
                words.append(balanced_word(rng, open_token, close_token, k))
            xs = shuffle(rng, words)
            if extra and rng.random() < 0.5 and len(xs) < MAX_LEN:
                xs.insert(rng.randint(0, len(xs)), rng.choice(extra))
            if xs and rng.random() < 0.3:
                i, j = rng.randrange(len(xs)), rng.randrange(len(xs))
                xs[i], xs[j] = xs[j], xs[i]
        if xs:
            inputs.append(xs)
    return inputs
