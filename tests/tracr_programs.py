"""RASP programs written in the style of DeepMind Tracr's program library.

Everything below uses only the API of `from tracr.rasp import rasp`; the one
change needed to run it here is the import line. The programs were written
for this project from their descriptions; `test_tracr_port.py` checks each one
against a plain-Python reference implementation.
"""

from typing import Any, Callable, List, Sequence

import rasp


def make_length() -> rasp.SOp:
    """The input length at every position, e.g. "abcd" -> [4, 4, 4, 4]."""
    all_true_selector = rasp.Select(rasp.tokens, rasp.tokens,
                                    rasp.Comparison.TRUE).named("all_true_selector")
    return rasp.SelectorWidth(all_true_selector).named("length")


length = make_length()


def make_reverse(sop: rasp.SOp) -> rasp.SOp:
    """`sop` read backwards, e.g. "abc" -> ["c", "b", "a"]."""
    opp_idx = (length - rasp.indices).named("opp_idx")
    opp_idx = (opp_idx - 1).named("opp_idx-1")
    reverse_selector = rasp.Select(rasp.indices, opp_idx,
                                   rasp.Comparison.EQ).named("reverse_selector")
    return rasp.Aggregate(reverse_selector, sop).named("reverse")


def make_hist() -> rasp.SOp:
    """How often each position's token occurs, e.g. "abac" -> [2, 1, 2, 1]."""
    same_tok = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_tok")
    return rasp.SelectorWidth(same_tok).named("hist")


def make_sort_unique(vals: rasp.SOp, keys: rasp.SOp) -> rasp.SOp:
    """`vals` reordered by increasing `keys`; the keys must all differ.

    Each position's target is the number of keys smaller than its own; output
    position i then fetches the value whose target is i.
    """
    smaller = rasp.Select(keys, keys, rasp.Comparison.LT).named("smaller")
    target_pos = rasp.SelectorWidth(smaller).named("target_pos")
    sel_new = rasp.Select(target_pos, rasp.indices, rasp.Comparison.EQ)
    return rasp.Aggregate(sel_new, vals).named("sort")


def make_sort(vals: rasp.SOp, keys: rasp.SOp, *, max_seq_len: int,
              min_key: float) -> rasp.SOp:
    """Stable sort of `vals` by `keys`, which may repeat.

    Repeated keys are told apart by adding `min_key * i / max_seq_len` at
    position i; this keeps the order of different keys as long as they differ
    by at least `min_key` and inputs are at most `max_seq_len` long.
    """
    keys = rasp.SequenceMap(lambda x, i: x + min_key * i / max_seq_len, keys,
                            rasp.indices).named("keys")
    return make_sort_unique(vals, keys)


def make_sort_freq(max_seq_len: int) -> rasp.SOp:
    """Tokens by decreasing frequency, ties in input order: "abbc" -> b b a c."""
    hist = (-1 * make_hist()).named("hist")
    return make_sort(rasp.tokens, hist, max_seq_len=max_seq_len,
                     min_key=1).named("sort_freq")


def make_frac_prevs(bools: rasp.SOp) -> rasp.SOp:
    """Fraction of positions up to and including this one where `bools` holds."""
    bools = rasp.numerical(bools)
    prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)
    return rasp.numerical(rasp.Aggregate(prevs, bools, default=0)).named("frac_prevs")


def make_pair_balance(sop: rasp.SOp, open_token: str, close_token: str) -> rasp.SOp:
    """(opened - closed) / (position + 1) over the prefix ending at each position."""
    bools_open = rasp.numerical(sop == open_token).named("bools_open")
    opens = rasp.numerical(make_frac_prevs(bools_open)).named("opens")

    bools_close = rasp.numerical(sop == close_token).named("bools_close")
    closes = rasp.numerical(make_frac_prevs(bools_close)).named("closes")

    pair_balance = rasp.numerical(rasp.LinearSequenceMap(opens, closes, 1, -1))
    return pair_balance.named("pair_balance")


def make_shuffle_dyck(pairs: List[str]) -> rasp.SOp:
    """True everywhere iff every bracket pair is balanced on its own.

    Each pair (e.g. "()") is checked independently of the others: no prefix
    may close more than it opened, and the whole input must close everything.
    """
    assert len(pairs) >= 1

    balances = []
    for pair in pairs:
        assert len(pair) == 2
        open_token, close_token = pair
        balance = make_pair_balance(rasp.tokens, open_token=open_token,
                                    close_token=close_token).named(f"balance_{pair}")
        balances.append(balance)

    # Is some prefix over-closed, for some pair?
    went_negative = balances[0] < 0
    for balance in balances[1:]:
        went_negative = went_negative | (balance < 0)
    went_negative = rasp.numerical(rasp.Map(lambda x: x, went_negative)).named("any_negative")

    # Spread "over-closed somewhere" to every position: a mean above 0.
    select_all = rasp.Select(rasp.indices, rasp.indices,
                             rasp.Comparison.TRUE).named("select_all")
    has_neg = rasp.numerical(rasp.Aggregate(select_all, went_negative,
                                            default=0)).named("has_neg")

    # Is every pair closed at the last position? Read it off there.
    all_zero = balances[0] == 0
    for balance in balances[1:]:
        all_zero = all_zero & (balance == 0)
    select_last = rasp.Select(rasp.indices, length - 1,
                              rasp.Comparison.EQ).named("select_last")
    last_zero = rasp.Aggregate(select_last, all_zero).named("last_zero")

    not_has_neg = (~has_neg).named("not_has_neg")
    return (last_zero & not_has_neg).named("shuffle_dyck")


def make_shuffle_dyck2() -> rasp.SOp:
    """Shuffle-Dyck over round and curly brackets."""
    return make_shuffle_dyck(pairs=["()", "{}"]).named("shuffle_dyck2")


def make_shift_by(offset: int, /, sop: rasp.SOp) -> rasp.SOp:
    """`sop` moved `offset` positions right; the first `offset` positions are None."""
    select_off_by_offset = rasp.Select(rasp.indices, rasp.indices,
                                       lambda k, q: q == k + offset)
    out = rasp.Aggregate(select_off_by_offset, sop, default=None)
    return out.named(f"shift_by({offset})")


def make_detect_pattern(sop: rasp.SOp, pattern: Sequence[Any]) -> rasp.SOp:
    """True where `pattern` ends at this position of `sop`.

    Positions before the first place the pattern could end (the first
    len(pattern) - 1 ones) have no value (None).
    """
    if len(pattern) < 1:
        raise ValueError(f"Length of `pattern` must be at least 1. Got {pattern}")

    # matches[j] says, at position i, whether pattern[j] sits at the position
    # where it would be if the pattern ended at i.
    last = len(pattern) - 1
    matches = []
    for j, element in enumerate(pattern):
        match = (sop == element).named(f"is_{element}")
        if j != last:
            match = make_shift_by(last - j, match)
        matches.append(match)

    detected = matches[0]
    for match in matches[1:]:
        detected = detected & match
    return detected.named(f"detect_pattern_{pattern}")


def make_count_less_freq(n: int) -> rasp.SOp:
    """At every position: how many positions hold a token occurring at most n times.

    Example: n = 2 on "aaabbc" gives 3 everywhere (b, b and c qualify).
    """
    hist = make_hist().named("hist")
    select_less = rasp.Select(hist, hist, lambda x, y: x <= n).named("select_less")
    return rasp.SelectorWidth(select_less).named("count_less_freq")


def make_count(sop: rasp.SOp, token: Any) -> rasp.SOp:
    """At every position: how many times `token` occurs in `sop`."""
    return rasp.SelectorWidth(rasp.Select(sop, sop, lambda k, q: k == token)).named(
        f"count_{token}")


def make_nary_sequencemap(f: Callable[..., Any], *sops: rasp.SOp) -> rasp.SOp:
    """Applies the n-ary `f` positionwise, by packing the arguments into tuples."""
    values = rasp.Map(lambda x: (x,), sops[0])
    for sop in sops[1:]:
        values = rasp.SequenceMap(lambda x, y: x + (y,), values, sop)
    return rasp.Map(lambda args: f(*args), values)


def make_broadcast_first(sop: rasp.SOp) -> rasp.SOp:
    """The value of `sop` at position 0, copied to every position."""
    first = rasp.Select(rasp.indices, rasp.Full(0), rasp.Comparison.EQ).named("first")
    return rasp.Aggregate(first, sop).named("broadcast_first")


def make_mean(sop: rasp.SOp) -> rasp.SOp:
    """The mean of a numerical `sop` over the whole input, at every position."""
    everything = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE)
    return rasp.numerical(rasp.Aggregate(everything, rasp.numerical(sop),
                                         default=0)).named("mean")


def make_prefix_count(sop: rasp.SOp, token: Any) -> rasp.SOp:
    """How many times `token` occurred in `sop` up to and including this position."""
    is_token = rasp.Select(sop, sop, lambda k, q: k == token).named("is_token")
    before = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named("before")
    return rasp.SelectorWidth(is_token & before).named(f"prefix_count_{token}")


def make_weighted_position(sop: rasp.SOp, a: float, b: float) -> rasp.SOp:
    """a * sop + b * index, numerically encoded."""
    return rasp.numerical(rasp.LinearSequenceMap(rasp.numerical(sop), rasp.indices,
                                                 a, b)).named("weighted_position")
