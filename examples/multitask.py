"""Several-task examples: dicts {task: program} compiled into one model (compiler.multitask).

`TASK_EXAMPLES` maps a name to a `TaskExample`; its programs share SOps where they can
(one `hist` serves hist, sort_freq and double_hist; one length serves reverse and length),
so the model shares those components.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from typing import Any

import rasp
from examples import paper
from examples import programs as classic


def make_six_tasks(max_seq_len: int) -> dict[str, rasp.SOp]:
    """reverse, hist, sort_freq, double_hist, length and previous_token, sharing `hist`."""
    hist = classic.make_hist()
    first = paper.make_is_first()
    same_count = rasp.Select(hist, hist, rasp.Comparison.EQ) & \
        rasp.Select(first, first, lambda key, query: key is True)
    negative_hist = (-1 * hist).named("neg_hist")
    return {
        "reverse": classic.make_reverse(rasp.tokens),
        "hist": hist,
        "sort_freq": classic.make_sort(rasp.tokens, negative_hist, max_seq_len,
                                       min_key=1).named("sort_freq"),
        "double_hist": rasp.SelectorWidth(same_count.named("same_count_reprs")).named(
            "double_hist"),
        "length": classic.make_length(),
        "previous_token": paper.make_previous_token(),
    }


@dataclasses.dataclass(frozen=True)
class TaskExample:
    """Named programs compiled together, with a vocabulary and length bound."""

    name: str
    description: str
    build: Callable[[int], dict[str, rasp.SOp]]
    vocab: tuple[Any, ...]
    max_seq_len: int

    def sample(self, rng: random.Random, task: str, max_len: int | None = None,
               vocab: Sequence[Any] | None = None) -> list[Any]:
        """A model input for `task` (the task token, then 1..max_len uniform tokens)."""
        vocab = list(vocab if vocab is not None else self.vocab)
        length = rng.randint(1, max_len or self.max_seq_len)
        return [task, *(rng.choice(vocab) for _ in range(length))]


def task_sampler(task: str, vocab: Sequence[Any]):
    """A sampler f(rng, model_vocab, length) for interp.circuits.make_dataset: inputs of
    `task` (the task token, then length − 1 uniform tokens of `vocab`; at least one)."""
    def sample(rng: random.Random, model_vocab, length: int) -> list[Any]:
        return [task, *(rng.choice(list(vocab)) for _ in range(max(length - 1, 1)))]
    return sample


TASK_EXAMPLES: dict[str, TaskExample] = {e.name: e for e in [
    TaskExample("six_tasks", "reverse, hist, sort_freq, double_hist, length and "
                "previous_token in one model, the task token first", make_six_tasks,
                ("a", "b", "c"), 8),
]}
