"""What a compiled model can hold: finite float32 numbers, and tokens told apart by type.

A numerical SOp's value lives in the residual stream as one float32, so its values
must be finite in float32 (values too close for float32 to separate are left to the
blocks that read them, which merge or refuse them). NaN equals nothing, not even
itself, so no value set and no vocabulary may hold it; categorical values are one-hot
labels, so ±inf or close floats are fine there. Python says True == 1 == 1.0, so
tokens are matched by kind (bool, int, float, ...) as well as by value: a vocabulary
may not hold two tokens equal across kinds, and an input token must be of the kind of
the vocabulary token it equals.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np

from rasp.errors import CompileError, ValueRangeError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def token_kind(value: Any) -> Any:
    """What must match besides equality: "bool", "int" (numpy ints too), "float", ...,
    elementwise for tuples and frozensets, else the value's type."""
    if isinstance(value, str):  # np.str_ too
        return "str"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, numbers.Complex):
        return "complex"
    if isinstance(value, tuple):
        return ("tuple", *map(token_kind, value))
    if isinstance(value, frozenset):
        return ("frozenset", frozenset(map(token_kind, value)))
    return type(value)


def holds_nan(value: Any) -> bool:
    """Whether `value` is NaN or a tuple or frozenset holding one."""
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if isinstance(value, (tuple, frozenset)):
        return any(map(holds_nan, value))
    return False


def check_vocab(vocab: Iterable[Any]) -> None:
    """CompileError if a token is NaN, or two tokens are equal across kinds (True and 1)."""
    first_of: dict[Any, Any] = {}
    for token in vocab:
        if holds_nan(token):
            raise CompileError(None, f"the vocabulary holds {token!r}, which equals nothing, "
                               "not even itself, so no input token could match it",
                               "leave NaN out of the vocabulary")
        first = first_of.setdefault(token, token)
        if token_kind(first) != token_kind(token):
            raise CompileError(None, f"the vocabulary tokens {first!r} and {token!r} are equal "
                               "in Python, so the model could not tell them apart",
                               "keep one kind of token per value (e.g. only ints)")


def check_values(expr, values: tuple[Any, ...], numerical: bool) -> None:
    """ValueRangeError naming `expr` if one of its `values` is NaN or, for a numerical SOp,
    outside float32's finite range.

    Two values float32 cannot tell apart (often the same number reached by different
    float arithmetic) are fine until a block must tell them apart: the discretising
    MLPs that read a numerical SOp merge them where they map them alike, and refuse
    otherwise (compiler.input_errors.merge_indistinguishable)."""
    bad = _first_bad(values, numerical)
    if not bad:
        return
    value, = bad
    if holds_nan(value):
        raise ValueRangeError(expr, f"it can take the value {value!r}, which equals nothing, "
                              "not even itself, so no model can compute it exactly",
                              "return a number (or None) instead of NaN")
    shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:12]}... " \
        f"({len(repr(value))} digits)"
    raise ValueRangeError(expr, f"its value {shown} is not representable in float32 "
                          f"(finite, of magnitude at most {FLOAT32_MAX:.4g}), and a "
                          "numerical SOp is held as one float32",
                          "scale the values down, or make the SOp categorical "
                          "(rasp.categorical) if they are labels")


def _first_bad(values: tuple[Any, ...], numerical: bool) -> tuple[Any, ...]:
    """(the first value that is NaN, or out of float32's range if `numerical`,) or ().

    Value sets run to MAX_VALUES, so the common all-str, all-int or all-float sets are
    checked in C (by type, or as one float64 array); any other set value by value."""
    types = set(map(type, values))
    if types <= {str, int, bool} and not (numerical and int in types):
        return ()
    if types == {tuple} and set(map(type, chain.from_iterable(values))) <= {str, int, bool}:
        return ()  # tuples of these hold no NaN, and no number to range-check
    if types <= {float, int, bool}:
        try:
            numbers_ = np.fromiter(values, np.float64, len(values))
        except OverflowError:  # an int beyond float64: value by value
            pass
        else:
            bad = np.isnan(numbers_) | (numerical & ~(np.abs(numbers_) <= FLOAT32_MAX))
            return (values[int(np.argmax(bad))],) if bad.any() else ()
    for value in values:
        if holds_nan(value) or (numerical and isinstance(value, numbers.Real)
                                and not abs(value) <= FLOAT32_MAX):
            return (value,)
    return ()


def unmatched_kind(token: Any, vocab_token: Any) -> str:
    """'' if `token` may stand for the equal `vocab_token`, else why not (for a message)."""
    if token_kind(token) == token_kind(vocab_token):
        return ""
    return (f"; it equals the vocabulary's token {vocab_token!r}, but tokens match by type "
            f"too ({type(token).__name__} is not {type(vocab_token).__name__}): pass "
            f"{vocab_token!r}")


def type_hint(token, vocab) -> str:
    """'; the vocabulary holds int tokens ...' when a token of another type prints as
    one of them ("1" for 1), else ''."""
    for known in vocab:
        if type(known) is not type(token) and str(known) == str(token):
            return (f"; the vocabulary holds {type(known).__name__} tokens, and this is a "
                    f"{type(token).__name__}: pass {known!r}, not {token!r}")
    return ""


def fast_types(vocab: tuple[Any, ...], specials: Iterable[Any]) -> frozenset[type] | None:
    """Types of input token whose dict lookup among `vocab` and `specials` (BOS, PAD)
    needs no kind check: the type of a scalar token, unless another kind of number in
    the vocabulary could equal a token of that type (tuples are always checked). None
    when every token is a str: only a str equals a str, so no token needs a check."""
    if all(isinstance(t, str) for t in (*vocab, *specials)):
        return None
    kinds = {token_kind(t) for t in vocab if isinstance(t, numbers.Number)}
    return frozenset(
        type(t) for t in (*vocab, *specials) if not isinstance(t, (tuple, frozenset)) and
        (not isinstance(t, numbers.Number) or kinds == {token_kind(t)}))
