"""A worker function for process pools, importable by name from a spawned worker.

A spawned worker starts a fresh interpreter and finds the function it runs by its
module and name, so the function must live in an importable module (not in
`__main__`, a notebook, or a doc's code block). See docs/compiler.md, "Worker processes".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from rasp_runtime.model import CompiledModel


@functools.cache
def _load(path: str) -> CompiledModel:
    return CompiledModel.load(path)


def apply_saved(path, batch: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The decoded outputs of `batch` (token lists, BOS first) by the model saved at
    `path`, which each worker process loads once."""
    return _load(str(path)).apply_batch(batch)
