"""Small helpers shared by the rasp test modules."""

from __future__ import annotations

import rasp

T, F = True, False


def ev(program, xs, **kwargs):
    return rasp.evaluate(program, xs, **kwargs)


def recorder(f, calls):
    """`f`, logging every argument tuple it is called with into `calls`."""
    def wrapped(*args):
        calls.append(args)
        return f(*args)
    return wrapped


def none_at_zero(sop):
    """A Map that turns 0 into None (no value) and leaves everything else."""
    return rasp.Map(lambda x: None if x == 0 else x, sop)


# --------------------------------------------------------------------- primitives
