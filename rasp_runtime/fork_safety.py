"""Refuse to run a model in a process forked after jax ran in its parent.

jax's runtime threads and locks do not survive fork(): a forked child that runs a
jitted function can wait for ever on a lock no thread will release. A fork handler
marks each child forked after jax ran (a model ran here, or jax's backend started for
any other reason), and `check_can_run` (called before each forward pass) raises
ForkError there at once.
"""

from __future__ import annotations

import os
import sys

from rasp.errors import ForkError

_jax_ran = False                 # a model has run in this process (or a forked ancestor)
_forked_from: int | None = None  # the parent's pid, in a child forked after jax ran


def check_can_run() -> None:
    """Raise ForkError in a child forked after jax ran; else note that jax runs here."""
    global _jax_ran
    if _forked_from is not None:
        raise ForkError(f"this process ({os.getpid()}) was forked from process "
                        f"{_forked_from} after jax had run there, and jax cannot run in a "
                        "forked child (it hangs); start worker processes with the spawn "
                        "start method instead, e.g. "
                        "ProcessPoolExecutor(mp_context=multiprocessing.get_context('spawn'))")
    _jax_ran = True


def _jax_backend_started() -> bool:
    """Whether jax started a backend in this process (by its private registry; False if
    that is not where this jax version keeps it)."""
    return bool(getattr(sys.modules.get("jax._src.xla_bridge"), "_backends", None))


def _mark_forked_child() -> None:
    global _forked_from
    if _jax_ran or _jax_backend_started():
        _forked_from = os.getppid()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_mark_forked_child)
