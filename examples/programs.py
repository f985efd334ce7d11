"""RASP programs: the classic compiled-transformer set.

Each `make_*` function builds a program from the `rasp` API alone, exactly as a
user would; `examples/library.py` gives each a name, vocabulary and sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import rasp


def make_length() -> rasp.SOp:
    """The input length at every position, as a SelectorWidth of an all-true selector."""
    everything = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE)
    return rasp.SelectorWidth(everything).named("length")


def make_reverse(sop: rasp.SOp) -> rasp.SOp:
    """`sop` read backwards: position i gets sop[n - 1 - i]."""
    opposite = (make_length() - rasp.indices).named("opp_idx")
    opposite = (opposite - 1).named("opp_idx-1")
    flip = rasp.Select(rasp.indices, opposite, rasp.Comparison.EQ).named("flip")
    return rasp.Aggregate(flip, sop).named("reverse")


def make_hist() -> rasp.SOp:
    """How many times each position's token occurs in the input."""
    same = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_tok")
    return rasp.SelectorWidth(same).named("hist")


def make_sort_unique(vals: rasp.SOp, keys: rasp.SOp) -> rasp.SOp:
    """`vals` ordered by `keys`, which must be all different."""
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named("smaller")
    target = rasp.SelectorWidth(smaller).named("target_pos")
    move = rasp.Select(target, rasp.indices, rasp.Comparison.EQ).named("sel_new")
    return rasp.Aggregate(move, vals).named("sort")


def make_sort(vals: rasp.SOp, keys: rasp.SOp, max_seq_len: int, min_key: float) -> rasp.SOp:
    """`vals` ordered by `keys`; ties are broken by position (earlier first).

    Keys are made unique by adding min_key·i/max_seq_len, which keeps their order
    when distinct keys differ by at least min_key.
    """
    unique = rasp.SequenceMap(lambda k, i: k + min_key * i / max_seq_len, keys, rasp.indices)
    return make_sort_unique(vals, unique.named("unique_keys"))


def make_sort_freq(max_seq_len: int) -> rasp.SOp:
    """Tokens ordered by how often they occur, most frequent first."""
    negative_hist = (-1 * make_hist()).named("neg_hist")
    return make_sort(rasp.tokens, negative_hist, max_seq_len, min_key=1).named("sort_freq")


def make_frac_prevs(bools: rasp.SOp) -> rasp.SOp:
    """The fraction of positions up to and including this one where `bools` holds."""
    prefix = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named("prefix")
    return rasp.numerical(rasp.Aggregate(prefix, bools, default=0)).named("frac_prevs")


def make_pair_balance(sop: rasp.SOp, open_token, close_token) -> rasp.SOp:
    """(#open − #close) / (i + 1) over the prefix ending at each position."""
    opens = rasp.numerical(rasp.Map(lambda t: t == open_token, sop)).named("is_open")
    closes = rasp.numerical(rasp.Map(lambda t: t == close_token, sop)).named("is_close")
    balance = rasp.LinearSequenceMap(make_frac_prevs(opens), make_frac_prevs(closes), 1, -1)
    return rasp.numerical(balance).named("pair_balance")


def make_shuffle_dyck(pairs: Sequence[str]) -> rasp.SOp:
    """True everywhere iff the input is a shuffle of balanced bracket strings.

    `pairs` holds two-character strings such as "()". Each bracket type must
    never close more than it opened in any prefix and must end balanced.
    """
    balances = [make_pair_balance(rasp.tokens, p[0], p[1]).named(f"balance_{i}")
                for i, p in enumerate(pairs)]
    negative = balances[0] < 0
    for balance in balances[1:]:
        negative = negative | (balance < 0)
    negative = rasp.numerical(rasp.Map(lambda x: x, negative)).named("any_negative")
    everywhere = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE).named("all")
    ever_negative = rasp.numerical(rasp.Aggregate(everywhere, negative, default=0))
    never_negative = (~ever_negative.named("has_neg")).named("never_negative")
    zero = balances[0] == 0
    for balance in balances[1:]:
        zero = zero & (balance == 0)
    last = rasp.Select(rasp.indices, make_length() - 1, rasp.Comparison.EQ).named("select_last")
    ends_balanced = rasp.Aggregate(last, zero.named("all_zero")).named("last_zero")
    return (ends_balanced & never_negative).named("shuffle_dyck")


def make_shift_by(offset: int, sop: rasp.SOp) -> rasp.SOp:
    """`sop` shifted right by `offset` positions; the first `offset` are None."""
    earlier = rasp.Select(rasp.indices, rasp.indices,
                          lambda key, query: query == key + offset).named(f"shift_{offset}")
    return rasp.Aggregate(earlier, sop, default=None).named(f"shift_by({offset})")


def make_detect_pattern(sop: rasp.SOp, pattern: Sequence) -> rasp.SOp:
    """True where the last len(pattern) values of `sop` spell `pattern`.

    None at the first len(pattern) − 1 positions, which have too few values.
    """
    last = len(pattern) - 1
    matches = []
    for i, element in enumerate(pattern):
        match = rasp.Map(lambda x, e=element: x == e, sop).named(f"is_{element}_{i}")
        matches.append(match if i == last else make_shift_by(last - i, match))
    detected = matches[0]
    for match in matches[1:]:
        detected = detected & match
    return detected.named("detect_pattern")


def make_count(sop: rasp.SOp, token) -> rasp.SOp:
    """How many positions hold `token`, at every position (numerical)."""
    holds = rasp.Select(sop, sop, lambda key, query: key == token).named(f"is_{token}")
    return rasp.numerical(rasp.SelectorWidth(holds)).named(f"count_{token}")


def make_count_less_freq(n: int) -> rasp.SOp:
    """How many positions hold a token that occurs at most `n` times."""
    hist = make_hist()
    rare = rasp.Select(hist, hist, lambda key, query: key <= n).named("rare")
    return rasp.SelectorWidth(rare).named("count_less_freq")


def make_nary_sequencemap(f: Callable, *sops: rasp.SOp) -> rasp.SOp:
    """f applied to the values of several SOps at each position (via a tuple SOp)."""
    packed = rasp.SequenceMap(lambda a, b: (a, b), sops[0], sops[1]).named("packed_2")
    for i, sop in enumerate(sops[2:], start=3):
        packed = rasp.SequenceMap(lambda acc, x: (*acc, x), packed, sop).named(f"packed_{i}")
    return rasp.Map(lambda args: f(*args), packed).named("nary_sequencemap")
