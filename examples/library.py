"""The example library: every program with its name, vocabulary and input sampler.

`EXAMPLES` maps a name to an `Example`. `example.sample(rng, max_len)` draws a
valid input (one the evaluator accepts) of random length 1..max_len.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rasp
from examples import paper
from examples import programs as classic

Sampler = Callable[[random.Random, Sequence[Any], int], list[Any]]


def uniform(rng: random.Random, vocab: Sequence[Any], length: int) -> list[Any]:
    """Tokens drawn independently."""
    return [rng.choice(vocab) for _ in range(length)]


def unique(rng: random.Random, vocab: Sequence[Any], length: int) -> list[Any]:
    """Distinct tokens (length capped at the vocabulary size)."""
    return rng.sample(list(vocab), min(length, len(vocab)))


def brackets(rng: random.Random, vocab: Sequence[Any], length: int) -> list[Any]:
    """Half random strings, half well-nested prefixes over the bracket pairs in vocab."""
    pairs = [vocab[i:i + 2] for i in range(0, len(vocab) - 1, 2)]
    if rng.random() < 0.5:
        return uniform(rng, vocab, length)
    out, open_stack = [], []
    for _ in range(length):
        if open_stack and rng.random() < 0.5:
            out.append(open_stack.pop())
        else:
            pair = rng.choice(pairs)
            out.append(pair[0])
            open_stack.append(pair[1])
    return out


def consistent_successors(rng: random.Random, vocab: Sequence[Any], length: int) -> list[Any]:
    """Sequences where a token is always followed by the same token, so induction is defined."""
    successor: dict[Any, Any] = {}
    out = [rng.choice(vocab)]
    while len(out) < length:
        out.append(successor.setdefault(out[-1], rng.choice(vocab)))
    return out


@dataclasses.dataclass(frozen=True)
class Example:
    """A named program with defaults for compiling and testing it.

    Attributes:
      build: max_seq_len ↦ program (some programs depend on the length bound).
      rasp_layers: the layer count of the RASP paper's analysis, where it gives one.
    """

    name: str
    description: str
    build: Callable[[int], rasp.SOp]
    vocab: tuple[Any, ...]
    max_seq_len: int
    sampler: Sampler = uniform
    causal: bool = False
    rasp_layers: int | None = None

    def sample(self, rng: random.Random, max_len: int | None = None,
               vocab: Sequence[Any] | None = None) -> list[Any]:
        """A valid input of random length 1..max_len (default: self.max_seq_len)."""
        vocab = list(vocab if vocab is not None else self.vocab)
        length = rng.randint(1, max_len or self.max_seq_len)
        return self.sampler(rng, vocab, length)


def _tokens(build):
    return lambda n: build()


_ALPHA = ("a", "b", "c")
_EXAMPLES = [
    # The classic compiled-transformer set.
    Example("length", "the input length at every position", _tokens(classic.make_length),
            _ALPHA, 8),
    Example("reverse", "the input reversed", _tokens(lambda: classic.make_reverse(rasp.tokens)),
            _ALPHA, 8, rasp_layers=2),
    Example("hist", "how often each position's token occurs", _tokens(classic.make_hist),
            _ALPHA, 8, rasp_layers=1),
    Example("sort_unique", "the tokens sorted, for inputs of distinct tokens",
            _tokens(lambda: classic.make_sort_unique(rasp.tokens, rasp.tokens)),
            tuple(range(1, 9)), 8, unique, rasp_layers=2),
    Example("sort", "the tokens sorted; equal tokens keep input order",
            lambda n: classic.make_sort(rasp.tokens, rasp.tokens, n, 1), (1, 2, 3, 4), 8,
            rasp_layers=2),
    Example("sort_freq", "the tokens ordered by decreasing frequency",
            lambda n: classic.make_sort_freq(n), _ALPHA, 8),
    Example("frac_prevs", "fraction of tokens so far that are 'x'",
            _tokens(lambda: classic.make_frac_prevs(
                rasp.numerical(rasp.Map(lambda t: t == "x", rasp.tokens)).named("is_x"))),
            ("x", "y", "z"), 8),
    Example("pair_balance", "(#'(' − #')') / (i + 1) over each prefix",
            _tokens(lambda: classic.make_pair_balance(rasp.tokens, "(", ")")), ("(", ")"), 8,
            brackets),
    Example("shuffle_dyck1", "whether the input is balanced over '()'",
            _tokens(lambda: classic.make_shuffle_dyck(["()"])), ("(", ")"), 8, brackets),
    Example("shuffle_dyck2", "whether the input is a shuffle of balanced '()' and '{}'",
            _tokens(lambda: classic.make_shuffle_dyck(["()", "{}"])), ("(", ")", "{", "}"), 8,
            brackets),
    Example("shift_by", "the tokens shifted right by 2 (None before)",
            _tokens(lambda: classic.make_shift_by(2, rasp.tokens)), _ALPHA, 8),
    Example("detect_pattern", "True where the last three tokens are a, b, c",
            _tokens(lambda: classic.make_detect_pattern(rasp.tokens, "abc")), _ALPHA, 8),
    Example("count", "how many tokens are 'a' (numerical)",
            _tokens(lambda: classic.make_count(rasp.tokens, "a")), _ALPHA, 8),
    Example("count_less_freq", "how many positions hold a token occurring at most twice",
            _tokens(lambda: classic.make_count_less_freq(2)), _ALPHA, 8),
    Example("nary_sequencemap", "token, position and token again, joined into one string",
            _tokens(lambda: classic.make_nary_sequencemap(lambda x, i, y: f"{x}{i}{y}",
                                                          rasp.tokens, rasp.indices,
                                                          classic.make_shift_by(1, rasp.tokens))),
            ("a", "b"), 6),
    # The RASP paper's programs.
    Example("paper_reverse", "reverse, with length as a primitive (RASP paper)",
            _tokens(paper.make_paper_reverse), _ALPHA, 8, rasp_layers=2),
    Example("paper_hist", "histogram with BOS (RASP paper)", _tokens(classic.make_hist),
            _ALPHA, 8, rasp_layers=1),
    Example("double_hist", "how many distinct tokens share this token's frequency",
            _tokens(paper.make_double_hist), ("a", "b", "c", "d"), 8, rasp_layers=2),
    Example("paper_sort", "sort with ties broken by position via or/and selectors",
            _tokens(paper.make_paper_sort), (1, 2, 3, 4), 8, rasp_layers=2),
    Example("most_freq", "distinct tokens by decreasing frequency, then None",
            _tokens(paper.make_most_freq), _ALPHA, 8, rasp_layers=3),
    Example("dyck1", "per prefix over '()': T balanced, P completable, F broken",
            _tokens(paper.make_dyck1), ("(", ")"), 8, brackets, rasp_layers=2),
    Example("dyck2", "per prefix over '()' and '{}': T balanced, P completable, F broken",
            _tokens(paper.make_dyck2), ("(", ")", "{", "}"), 8, brackets, rasp_layers=4),
    Example("dyck3", "per prefix over '()', '{}' and '[]': T balanced, P completable, F broken",
            _tokens(paper.make_dyck3), ("(", ")", "{", "}", "[", "]"), 8, brackets),
    # Interpretability classics.
    Example("previous_token", "copy of the previous token", _tokens(paper.make_previous_token),
            _ALPHA, 8),
    Example("induction", "the token that followed an earlier occurrence of this token",
            _tokens(paper.make_induction), ("a", "b", "c", "d"), 8, consistent_successors),
    Example("first_occurrence", "True at the first occurrence of each token",
            _tokens(paper.make_first_occurrence), _ALPHA, 8),
]

RASP_DIR = Path(__file__).parent / "rasp"
# The RASP paper's programs written in RASP syntax (examples/rasp/), each with the
# Python twin whose layer count it must match: name → (file, twin).
RASP_TWINS = {"rasp_reverse": ("reverse", "paper_reverse"), "rasp_hist": ("hist", "paper_hist"),
              "rasp_double_hist": ("double_hist", "double_hist"),
              "rasp_sort": ("sort", "paper_sort"), "rasp_most_freq": ("most_freq", "most_freq"),
              "rasp_dyck1": ("dyck1", "dyck1"), "rasp_dyck2": ("dyck2", "dyck2"),
              "rasp_dyck3": ("dyck3", "dyck3")}


def _from_rasp_file(file: str) -> Callable[[int], rasp.SOp]:
    def build(max_seq_len: int) -> rasp.SOp:
        from rasp.syntax import parse_file
        return parse_file(RASP_DIR / f"{file}.rasp")[file]
    return build


_TWINS = {e.name: e for e in _EXAMPLES}
_EXAMPLES += [dataclasses.replace(_TWINS[twin], name=name, build=_from_rasp_file(file),
                                  description=f"examples/rasp/{file}.rasp, twin of {twin}")
              for name, (file, twin) in RASP_TWINS.items()]

EXAMPLES: dict[str, Example] = {e.name: e for e in _EXAMPLES}


def get_example(name: str) -> Example:
    """The example called `name`; KeyError lists the known names."""
    try:
        return EXAMPLES[name]
    except KeyError:
        raise KeyError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}") from None
