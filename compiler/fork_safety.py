"""Refuse to run a model in a process forked after jax ran in its parent.

jax's runtime threads and locks do not survive fork(): a forked child that runs a
jitted function can wait for ever on a lock no thread will release. So the first time
a model runs, a fork handler is registered that marks every child forked from then on,
and `check_can_run` (called before each forward pass) raises ForkError there at once.
"""

from __future__ import annotations

import os

from rasp.errors import ForkError

_jax_ran = False          # a forward pass has run in this process (or a forked ancestor)
_forked_from: int | None = None  # the parent's pid, in a child forked after that


def check_can_run() -> None:
    """Raise ForkError in a child forked after jax ran; else note that jax runs here."""
    global _jax_ran
    if _forked_from is not None:
        raise ForkError(f"this process ({os.getpid()}) was forked from process "
                        f"{_forked_from} after jax had run a model there, and jax cannot run "
                        "in a forked child (it hangs); start worker processes with the "
                        "spawn start method instead, e.g. "
                        "ProcessPoolExecutor(mp_context=multiprocessing.get_context('spawn'))")
    if not _jax_ran and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_mark_forked_child)
    _jax_ran = True


def _mark_forked_child() -> None:
    global _forked_from
    _forked_from = os.getppid()
