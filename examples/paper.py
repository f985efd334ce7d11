"""Programs from the RASP paper (Weiss et al., 2021) and interpretability classics.

Written against our `rasp` API from the paper's descriptions. The layer counts
the paper's analysis gives are recorded in `examples/library.py`.
"""

from __future__ import annotations

import rasp
from examples.programs import make_hist, make_shift_by

EQ, LT, LEQ, TRUE = rasp.EQ, rasp.LT, rasp.LEQ, rasp.TRUE


def make_paper_reverse() -> rasp.SOp:
    """Reverse, with `length` as a primitive: flip = select(indices, length − indices − 1, ==)."""
    opposite = (rasp.length - rasp.indices - 1).named("opp_index")
    return rasp.Aggregate(rasp.Select(rasp.indices, opposite, EQ).named("flip"),
                          rasp.tokens).named("reverse")


def _earlier_same_token() -> rasp.Selector:
    return (rasp.Select(rasp.tokens, rasp.tokens, EQ) & rasp.Select(rasp.indices, rasp.indices, LT))


def make_is_first() -> rasp.SOp:
    """True where a token occurs for the first time."""
    earlier = rasp.SelectorWidth(_earlier_same_token()).named("earlier_same")
    return rasp.Map(lambda n: n == 0, earlier).named("is_first")


def make_double_hist() -> rasp.SOp:
    """For each token, how many distinct tokens occur as often as it does."""
    hist = make_hist()
    first = make_is_first()
    same_count = rasp.Select(hist, hist, EQ) & rasp.Select(first, first, lambda k, q: k is True)
    return rasp.SelectorWidth(same_count.named("same_count_reprs")).named("double_hist")


def make_paper_sort() -> rasp.SOp:
    """Tokens in increasing order; equal tokens keep their input order.

    smaller = select(tokens, tokens, <) or (select(tokens, tokens, ==) and select(indices, indices, <)).
    """
    smaller = (rasp.Select(rasp.tokens, rasp.tokens, LT)
               | _earlier_same_token()).named("smaller")
    target = rasp.SelectorWidth(smaller).named("target_pos")
    return rasp.Aggregate(rasp.Select(target, rasp.indices, EQ).named("sel_new"),
                          rasp.tokens).named("sort")


def make_most_freq() -> rasp.SOp:
    """The distinct tokens, most frequent first (ties: first seen first); then None."""
    hist = make_hist()
    first = make_is_first()
    rank_key = rasp.SequenceMap(lambda h, i: (-h, i), hist, rasp.indices).named("rank_key")
    ahead = (rasp.Select(rank_key, rank_key, LT)
             & rasp.Select(first, first, lambda k, q: k is True)).named("ahead")
    target = rasp.SelectorWidth(ahead).named("target")
    move = (rasp.Select(target, rasp.indices, EQ)
            & rasp.Select(first, first, lambda k, q: k is True)).named("move")
    return rasp.Aggregate(move, rasp.tokens).named("most_freq")


def make_dyck1() -> rasp.SOp:
    """Per prefix: "T" if balanced, "P" if it can still be completed, "F" if not."""
    step = rasp.numerical(rasp.Map(lambda t: {"(": 1, ")": -1}.get(t, 0), rasp.tokens))
    prefix = rasp.Select(rasp.indices, rasp.indices, LEQ).named("prefix")
    balance = rasp.numerical(rasp.Aggregate(prefix, step.named("step"), default=0))
    negative = rasp.numerical(rasp.Map(lambda b: b < 0, balance.named("balance")))
    ever = rasp.numerical(rasp.Aggregate(prefix, negative.named("negative"), default=0))
    return rasp.SequenceMap(_dyck_verdict, ever.named("ever_negative"),
                            balance).named("dyck1")


def make_dyck2() -> rasp.SOp:
    """Dyck-2 over "()" and "{}": per prefix "T", "P" or "F", as in `make_dyck1`."""
    return make_dyck_k(("()", "{}")).named("dyck2")


def make_dyck3() -> rasp.SOp:
    """Dyck-3 over "()", "{}" and "[]": per prefix "T", "P" or "F"."""
    return make_dyck_k(("()", "{}", "[]")).named("dyck3")


def make_dyck_k(pairs) -> rasp.SOp:
    """Dyck-k over bracket `pairs` such as ("()", "{}"): per prefix "T", "P" or "F".

    A closer at position q matches the latest opener p < q whose depth after it
    equals the depth before q. It is the opener at the latest such p: we find p
    as the only opener there with no opener or closer of that depth in between,
    i.e. the one whose depth-level index is maximal, read off a SelectorWidth.
    """
    openers = "".join(p[0] for p in pairs)
    closer_of = {p[1]: p[0] for p in pairs}
    opens = rasp.Map(lambda t: t in openers, rasp.tokens).named("is_open")
    delta = rasp.numerical(rasp.Map(lambda t: 1 if t in openers else -1, rasp.tokens))
    prefix = rasp.Select(rasp.indices, rasp.indices, LEQ).named("prefix")
    mean = rasp.numerical(rasp.Aggregate(prefix, delta.named("delta"), default=0))
    depth = rasp.SequenceMap(lambda m, i: round(m * (i + 1)), mean.named("mean_delta"),
                             rasp.indices).named("depth")
    # The level a bracket lives on: depth after an opener, depth before a closer.
    level = rasp.SequenceMap(lambda d, o: d if o else d + 1, depth, opens).named("level")
    same_level_before = (rasp.Select(level, level, EQ)
                         & rasp.Select(rasp.indices, rasp.indices, LT)).named("same_level_before")
    rank = rasp.SelectorWidth(same_level_before).named("rank")
    # The matching opener of a closer is the bracket on its level with rank one less.
    partner = (rasp.Select(level, level, EQ)
               & rasp.Select(rank, rank, lambda k, q: k == q - 1)).named("partner")
    partner_token = rasp.Aggregate(partner, rasp.tokens, default="-").named("partner_token")
    mismatch = rasp.numerical(rasp.SequenceMap(
        lambda token, partner: int(token in closer_of and partner != closer_of[token]),
        rasp.tokens, partner_token))
    ever = rasp.numerical(rasp.Aggregate(prefix, mismatch.named("mismatch"), default=0))
    return rasp.SequenceMap(_dyck_verdict, ever.named("ever_bad"), depth).named("dyck_k")


def _dyck_verdict(ever_bad, depth) -> str:
    if ever_bad > 0:
        return "F"
    return "T" if depth == 0 else "P"


def make_previous_token() -> rasp.SOp:
    """The token one position back (None at position 0)."""
    return make_shift_by(1, rasp.tokens).named("previous_token")


def make_induction() -> rasp.SOp:
    """The token that followed an earlier occurrence of the current token (None if none).

    Keys k ≤ q whose previous token equals the current token are exactly the
    positions right after an earlier occurrence; the sampler keeps them in
    agreement, as a categorical Aggregate requires.
    """
    previous = make_shift_by(1, rasp.tokens).named("prev_token")
    after_match = (rasp.Select(previous, rasp.tokens, EQ)
                   & rasp.Select(rasp.indices, rasp.indices, LEQ)).named("after_match")
    return rasp.Aggregate(after_match, rasp.tokens).named("induction")


def make_first_occurrence() -> rasp.SOp:
    """True at the first occurrence of each token, False at repeats."""
    return make_is_first().named("first_occurrence")
