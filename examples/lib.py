"""Tracr's program library under Tracr's names and signatures (`tracr.compiler.lib`).

A Tracr script that does `from tracr.compiler import lib` runs here with
`from examples import lib`. Each function builds its program from
`examples/programs.py`; where Tracr's result differs in encoding or name
(make_frac_prevs reads its input as numerical, make_count is categorical,
detect_pattern is named after its pattern), this module follows Tracr.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import rasp
from examples import programs


def make_length() -> rasp.SOp:
    """The input length at every position: "abcd" -> [4, 4, 4, 4]."""
    return programs.make_length()


length = make_length()  # Tracr's lib has this module-level SOp too


def make_reverse(sop: rasp.SOp) -> rasp.SOp:
    """`sop` read backwards: "abc" -> ["c", "b", "a"]."""
    return programs.make_reverse(sop)


def make_hist() -> rasp.SOp:
    """How often each position's token occurs: "abac" -> [2, 1, 2, 1]."""
    return programs.make_hist()


def make_sort_unique(vals: rasp.SOp, keys: rasp.SOp) -> rasp.SOp:
    """`vals` ordered by `keys`, which must be all different."""
    return programs.make_sort_unique(vals, keys)


def make_sort(vals: rasp.SOp, keys: rasp.SOp, *, max_seq_len: int,
              min_key: float) -> rasp.SOp:
    """`vals` ordered by numerical `keys`, ties by position.

    Keys are made unique by adding `min_key * i / max_seq_len`, which keeps
    their order when distinct keys differ by at least `min_key`.
    """
    return programs.make_sort(vals, keys, max_seq_len, min_key)


def make_sort_freq(max_seq_len: int) -> rasp.SOp:
    """Tokens ordered by how often they occur, most frequent first, ties by position."""
    return programs.make_sort_freq(max_seq_len)


def make_frac_prevs(bools: rasp.SOp) -> rasp.SOp:
    """The fraction of positions up to this one where `bools` holds (numerical)."""
    return programs.make_frac_prevs(rasp.numerical(bools))


def make_pair_balance(sop: rasp.SOp, open_token: str, close_token: str) -> rasp.SOp:
    """(#open − #close) / (i + 1) over each prefix (numerical)."""
    return programs.make_pair_balance(sop, open_token, close_token)


def make_shuffle_dyck(pairs: list[str]) -> rasp.SOp:
    """1 everywhere iff the input is a shuffle of balanced strings of each bracket pair.

    `pairs` holds two-character strings such as "()".
    """
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"make_shuffle_dyck: pairs must be a non-empty list of "
                         f"two-character strings such as ['()', '{{}}'], got {pairs!r}")
    return programs.make_shuffle_dyck(pairs)


def make_shuffle_dyck2() -> rasp.SOp:
    """make_shuffle_dyck over "()" and "{}"."""
    return make_shuffle_dyck(pairs=["()", "{}"]).named("shuffle_dyck2")


def shift_by(offset: int, /, sop: rasp.SOp) -> rasp.SOp:
    """`sop` shifted right by `offset` positions; the first `offset` are None."""
    return programs.make_shift_by(offset, sop)


def detect_pattern(sop: rasp.SOp, pattern: Sequence[rasp.Value]) -> rasp.SOp:
    """True where the last len(pattern) values of `sop` spell `pattern`.

    The first len(pattern) − 1 positions are None.
    """
    if len(pattern) < 1:
        raise ValueError(f"detect_pattern: the pattern must have at least one element, "
                         f"got {pattern!r}")
    return programs.make_detect_pattern(sop, pattern).named(f"detect_pattern({pattern})")


def make_count_less_freq(n: int) -> rasp.SOp:
    """How many positions hold a token occurring at most `n` times, at every position."""
    return programs.make_count_less_freq(n)


def make_count(sop: rasp.SOp, token: rasp.Value) -> rasp.SOp:
    """How many positions of `sop` hold `token`, at every position (categorical)."""
    return rasp.categorical(programs.make_count(sop, token))


def make_nary_sequencemap(f: Callable[..., rasp.Value], *sops: rasp.SOp) -> rasp.SOp:
    """`f` applied to the values of two or more SOps at each position."""
    if len(sops) < 2:
        raise ValueError(f"make_nary_sequencemap: give at least two SOps, got {len(sops)}; "
                         "for one, use rasp.Map")
    return programs.make_nary_sequencemap(f, *sops)
