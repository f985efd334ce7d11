"""ProgramGraph → value sets: every value each SOp can take, exactly.

A value set over-approximates nothing it can enumerate: a numerical mean over
up to N selected values takes exactly the means of multisets of size 1..N
(for 0/1 values, {k/n : 0 ≤ k ≤ n ≤ N}). Where a set would exceed
MAX_VALUES it is marked too large, and a block that needs it refuses.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import numbers
import operator
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from compiler.graph import ProgramGraph, extract_graph
from rasp import expr as rx
from rasp.errors import CompileError
from rasp.syntax_ops import Fault
from rasp.to_source import to_source as print_source
from rasp_runtime.representable import check_values

# Largest value set we enumerate (a discretising MLP is 2 units per value).
MAX_VALUES = 20_000
# Most predicate calls spent proving that a selector picks at most one key.
MAX_PREDICATE_CALLS = 100_000


@dataclasses.dataclass(frozen=True)
class ValueSet:
    """The values an SOp can take at a real position, in a fixed order.

    Attributes:
      values: the non-None values, sorted deterministically.
      may_be_none: whether None can occur.
      too_large: why `values` could not be enumerated (then `values` is empty).
      aliases: values equal to one of `values` but of another type or sign.
    """

    values: tuple[Any, ...]
    may_be_none: bool = False
    too_large: str | None = None
    # Values equal to one in `values` but spelled otherwise (1.0 or True beside 1, -0.0
    # beside 0.0): Python counts them as one, so one direction holds both, and a function
    # that tells them apart is refused (`refuse_aliases`).
    aliases: tuple[Any, ...] = ()

    def require(self, expr, purpose: str) -> tuple[Any, ...]:
        """The values, or a CompileError if they could not be enumerated."""
        if self.too_large:
            raise CompileError(expr, f"{purpose} needs its value set, but {self.too_large}",
                               "make the values come from a smaller set (e.g. fewer distinct "
                               "numbers before averaging)")
        return self.values


def sort_values(values: Iterable[Any]) -> tuple[Any, ...]:
    """A deterministic order: natural order if comparable, else by type and repr."""
    unique = list(dict.fromkeys(values))
    try:
        return tuple(sorted(unique))
    except TypeError:
        return tuple(sorted(unique, key=lambda v: (type(v).__name__, repr(v))))


@dataclasses.dataclass(frozen=True)
class Failure:
    """A user function that raised on values its inputs can take (outside the domain)."""

    expr: rx.SOp
    args: tuple[Any, ...]
    error: Exception


def infer_value_sets(graph: ProgramGraph, vocab: Iterable[Any], max_seq_len: int,
                     failures: list[Failure] | None = None,
                     known: dict[int, ValueSet] | None = None) -> dict[int, ValueSet]:
    """A ValueSet for every SOp node of `graph` (selectors are skipped).

    A Map or SequenceMap whose function raises on some values contributes no value
    for them; each such call is appended to `failures` when it is given. A set that
    holds NaN, or for a numerical SOp a number beyond float32's finite range, raises
    ValueRangeError naming the SOp (rasp_runtime.representable). `known` holds
    sets already inferred (same vocab and length) for nodes of another graph: a node's
    set depends only on the sub-expression it roots, so those are reused, and the new
    ones are added to it.
    """
    sets: dict[int, ValueSet] = {} if known is None else known
    failures = [] if failures is None else failures
    for node in graph.order:
        expr = graph.expr(node)
        if isinstance(expr, rx.SOp) and node not in sets:
            sets[node] = _infer(expr, sets, vocab, max_seq_len, failures)
            check_values(expr, sets[node].values, rx.is_numerical(expr))
    if known is None:
        return sets
    return {node: sets[node] for node in graph.order if node in sets}


def _infer(expr, sets, vocab, n, failures) -> ValueSet:
    def of(child):
        return sets[child.unique_id]

    match expr:
        case rx.TokensType():
            return ValueSet(sort_values(vocab))
        case rx.IndicesType():
            return ValueSet(tuple(range(n)))
        case rx.LengthType():
            return ValueSet(tuple(range(1, n + 1)))
        case rx.Map():
            inner = of(expr.inner)
            inner.require(expr, "a Map")
            return _apply(expr, expr.f, [(x,) for x in _with_aliases(inner)],
                          inner.may_be_none, failures)
        case rx.SequenceMap():
            fst, snd = of(expr.fst), of(expr.snd)
            fst.require(expr, "a SequenceMap")
            snd.require(expr, "a SequenceMap")
            pairs = list(itertools.product(_with_aliases(fst), _with_aliases(snd)))
            return _apply(expr, expr.f, pairs, fst.may_be_none or snd.may_be_none, failures)
        case rx.Full():
            return _from_values([expr.fill])
        case rx.ConstantSOp():
            return _from_values(list(expr.value[:n]) + [None] * (not expr.check_length))
        case rx.SelectorWidth():
            width_map = expr.annotations.get("width_map")
            if width_map is None:
                return ValueSet(tuple(range(n + 1)))
            return _apply(expr, width_map, [(w,) for w in range(n + 1)], False)
        case rx.Aggregate():
            sop = of(expr.sop)
            value_map = expr.annotations.get("value_map")
            if value_map is not None:
                sop.require(expr, "a folded Map")
                sop = _apply(expr, value_map, [(v,) for v in _with_aliases(sop)],
                             sop.may_be_none)
                check_values(expr, sop.values, rx.is_numerical(expr))
            return _aggregate(expr, sop, sets, n)
    raise CompileError(expr, f"unsupported expression type {type(expr).__name__}")


def _from_values(values) -> ValueSet:
    present = [v for v in values if v is not None]
    first: dict[Any, Any] = {}
    aliases: dict[tuple, Any] = {}
    for v in present:
        kept = first.setdefault(v, v)
        if kept is not v and _spelling(v) != _spelling(kept):
            aliases.setdefault(_spelling(v), v)
    return ValueSet(sort_values(first), may_be_none=len(present) < len(values),
                    aliases=tuple(aliases.values()))


def _spelling(value) -> tuple[str, str]:
    """What tells equal values apart: 1, 1.0 and True; 0.0 and −0.0."""
    return type(value).__name__, repr(value)


def _with_aliases(values: ValueSet) -> list:
    """A set's values and its aliases: every value a function of it may be given."""
    return list(values.values) + list(values.aliases)


def refuse_aliases(graph: ProgramGraph, sets: dict[int, ValueSet]) -> None:
    """CompileError where a Map, SequenceMap, folded Map or Select predicate of `graph`
    gives an alias (see ValueSet) and the value it equals unequal results: the compiled
    model holds one value for both. Run on the graph being compiled, not in the domain
    analysis: a fused program may read the same values straight from the tokens."""
    for node in graph.order:
        match expr := graph.expr(node):
            case rx.Map():
                _check_aliases(expr, expr.f, [sets[expr.inner.unique_id]])
            case rx.SequenceMap():
                _check_aliases(expr, expr.f, [sets[c.unique_id] for c in expr.children])
            case rx.Aggregate() if "value_map" in expr.annotations:
                _check_aliases(expr, expr.annotations["value_map"],
                               [sets[expr.sop.unique_id]])
            case rx.Select():
                _check_aliases(expr, expr.predicate, [sets[expr.keys.unique_id],
                                                      sets[expr.queries.unique_id]])


def _check_aliases(expr, f, sets: Sequence[ValueSet]) -> None:
    """`refuse_aliases` for one function of one argument per set: every combination of
    values and aliases against the kept values they equal. Where either call raises, the
    evaluator rejects those inputs (a Failure, as for any value), or the values are not
    hashable (refused by `_apply`)."""
    if not any(values.aliases for values in sets):
        return
    kept = [{v: v for v in values.values} for values in sets]
    for args in itertools.product(*map(_with_aliases, sets)):
        original = tuple(k[a] for k, a in zip(kept, args))
        if all(a is o for a, o in zip(args, original)):
            continue
        try:
            one, other = f(*original), f(*args)
            differ = not (hash(one) == hash(other) and one == other)
        except Exception:  # noqa: BLE001  see above
            continue
        if differ:
            which = ", ".join(dict.fromkeys(f"{o!r} and {a!r}" for a, o in zip(args, original)
                                            if a is not o))
            raise CompileError(expr, f"its input can be both {which}, which Python counts "
                               f"as one value, but it gives {one!r} and {other!r}",
                               "make the input one type (e.g. float(x) or int(x) where it "
                               "is computed)")


def _apply(expr, f, argument_tuples, may_be_none, failures=None) -> ValueSet:
    results = []
    for args in argument_tuples:
        try:
            results.append(f(*args))
        except Exception as error:  # noqa: BLE001  the evaluator rejects such inputs
            if failures is not None:
                failures.append(Failure(expr, args, error))
    try:
        result = _from_values(results)
    except TypeError as error:
        raise CompileError(expr, f"its values must be hashable ({error})",
                           "return tuples instead of lists") from error
    return _with_none(result) if may_be_none else result


def _exact(value) -> Fraction:
    """A number averaged by a numerical mean, exactly (ints, floats, Fractions and numpy
    scalars alike: dropping one would leave its means out of the value set)."""
    if isinstance(value, numbers.Rational):
        return Fraction(value.numerator, value.denominator)
    if isinstance(value, numbers.Real):
        return Fraction(float(value))
    raise TypeError(f"a numerical mean averages numbers, not {value!r}")


def _with_none(values: ValueSet) -> ValueSet:
    return dataclasses.replace(values, may_be_none=True)


def _aggregate(expr, sop: ValueSet, sets: dict[int, ValueSet], n: int) -> ValueSet:
    # A default never shows if the selector is never empty. There a None default is left
    # out, and so is one equal to a value (else 0 would stand as an alias of 0.0); another
    # stays in the set (harmless: the block builder encodes it).
    unreachable = never_empty(expr.selector, sets)

    def with_default(values: list) -> ValueSet:
        left_out = unreachable and (expr.default is None or expr.default in set(values))
        return _from_values(values + ([] if left_out else [expr.default]))

    none_default = expr.default is None and not unreachable
    if not rx.is_numerical(expr):
        result = with_default(_with_aliases(sop))
        skips_none = expr.annotations.get("selects_no_none", False)
        return _with_none(result) if sop.may_be_none and not skips_none else result
    if sop.too_large:
        return ValueSet((), none_default, f"the averaged values are too many "
                                          f"({sop.too_large})")
    if at_most_one_selected(expr.selector, sets, n):  # the evaluator's mean of one value
        return with_default([sum([v]) / 1 for v in _with_aliases(sop)])
    try:
        averaged = frozenset(map(_exact, sop.values))
    except TypeError as error:
        raise CompileError(expr, str(error), "aggregate a numerical SOp of numbers") from None
    means = _sorted_means(averaged, n, MAX_VALUES)
    if means is None:
        return ValueSet((), none_default,
                        f"the means of up to {n} of {len(sop.values)} distinct values exceed "
                        f"{MAX_VALUES} values")
    return with_default(list(means))


@functools.lru_cache(maxsize=16)  # up to MAX_VALUES floats each
def _sorted_means(numbers: frozenset[Fraction], n: int, max_values: int
                  ) -> tuple[float, ...] | None:
    """`_means` in increasing order, memoised: a pure function of the numbers, n and
    MAX_VALUES (`max_values`), asked again for the fused program."""
    means = _means(numbers, n)
    return None if means is None else tuple(sorted(means))


def _means(numbers: Iterable[Fraction], n: int) -> set[float] | None:
    """All means of multisets of 1..n values from `numbers`, each as the float nearest
    it, or None if there are more than MAX_VALUES distinct means."""
    if set(numbers) <= {0, 1}:  # k/size, k from 0 (if a 0 is there) to size (if a 1 is)
        ones = 1 in numbers
        zeros = 0 in numbers
        means = set()
        for size in range(1, n + 1):
            ks = range(0 if zeros else size, (size if ones else 0) + 1)
            means.update(map(operator.truediv, ks, itertools.repeat(size)))
        return means
    # In integers, which is many times faster than Fractions: each number is x/scale, so
    # a sum of `size` of them is s/scale, kept as s/(size·scale) in lowest terms. For
    # integers (scale 1) of magnitude ≤ M, distinct means differ by ≥ 1/n², far more
    # than a float's spacing when M·n² < 2⁴⁰, so the floats themselves count them.
    scale = math.lcm(*(x.denominator for x in numbers))
    scaled = {int(x * scale) for x in numbers}
    as_floats = scale == 1 and max(map(abs, scaled)) * n * n < 2 ** 40
    low, step = min(scaled), _common_step(scaled)
    means: set = set()
    sums = {0}
    for size in range(1, n + 1):
        if step is not None:  # sums of an arithmetic progression are one again
            sums = range(size * low, size * max(scaled) + 1, step)
        else:
            sums = {s + x for s in sums for x in scaled}
        if as_floats:
            means.update(map(operator.truediv, sums, itertools.repeat(size)))
        else:
            denominator = size * scale
            for s in sums:
                common = math.gcd(s, denominator)
                means.add((s // common, denominator // common))
        if len(means) > MAX_VALUES:
            return None
    # int / int rounds correctly, as float(Fraction) does
    return means if as_floats else {s / d for s, d in means}


def _common_step(integers: set[int]) -> int | None:
    """d if the integers are a, a + d, …, a + k·d (1 for a single one), else None."""
    ordered = sorted(integers)
    steps = {b - a for a, b in zip(ordered, ordered[1:])} or {1}
    return steps.pop() if len(steps) == 1 else None


def at_most_one_selected(selector: rx.Selector, sets: dict[int, ValueSet], n: int) -> bool:
    """True when each query selects at most one key: some conjunct reads `indices` as
    keys and, for every query value, its predicate holds for at most one index."""
    if isinstance(selector, rx.SelectorAnd) and not isinstance(selector, rx.SelectorOr):
        return (at_most_one_selected(selector.fst, sets, n)
                or at_most_one_selected(selector.snd, sets, n))
    if not isinstance(selector, rx.Select) or not isinstance(selector.keys, rx.IndicesType):
        return False
    if selector.predicate is rx.Comparison.EQ:
        return True
    queries = sets.get(selector.queries.unique_id)
    if queries is None or queries.too_large or len(queries.values) * n > MAX_PREDICATE_CALLS:
        return False
    if isinstance(selector.predicate, rx.Comparison) and \
            all(type(q) is int for q in queries.values):
        return _compares_at_most_one(selector.predicate, queries.values, n)
    return _at_most_one(selector.predicate, queries.values, n)


def _at_most_one(predicate, query_values, n: int) -> bool:
    """Whether `predicate` holds for at most one index key 0..n−1, for every query value."""
    return all(keys_holding(predicate, range(n), q) <= 1 for q in query_values)


@functools.lru_cache(maxsize=64)
def _compares_at_most_one(comparison: rx.Comparison, query_values: tuple[int, ...],
                          n: int) -> bool:
    """`_at_most_one` of a built-in comparison between ints: memoised, a pure function
    of its arguments (asked again for the fused program)."""
    return _at_most_one(comparison, query_values, n)


def never_empty(selector: rx.Selector, sets: dict[int, ValueSet]) -> bool:
    """True when every query selects at least one key, so an Aggregate never falls back
    to its default: its own position, also under causal masking (a query sees itself)."""
    return _selects_itself(selector, sets)


def _selects_itself(selector: rx.Selector, sets: dict[int, ValueSet]) -> bool:
    """Whether every query position selects its own key position."""
    match selector:
        case rx.SelectorOr():
            return _selects_itself(selector.fst, sets) or _selects_itself(selector.snd, sets)
        case rx.SelectorAnd():
            return _selects_itself(selector.fst, sets) and _selects_itself(selector.snd, sets)
        case rx.Select():
            keys, queries = sets.get(selector.keys.unique_id), sets.get(selector.queries.unique_id)
            if keys is None or queries is None or keys.may_be_none or queries.may_be_none:
                return False  # a None key or query is never selected
            if selector.predicate is rx.Comparison.TRUE:
                return True
            if selector.keys is not selector.queries or keys.too_large:
                return False
            return all(predicate_holds(selector.predicate, v, v) for v in keys.values)
    return False


def keys_holding(predicate, keys: Sequence[Any], query) -> int:
    """How many of `keys` `predicate` holds for against `query` (`predicate_holds` of each),
    called from C unless it raises on one of them."""
    try:
        return sum(map(bool, map(predicate, keys, itertools.repeat(query))))
    except Exception:  # noqa: BLE001  predicate_holds counts a raising pair as not holding
        return sum(predicate_holds(predicate, k, query) for k in keys)


def predicate_holds(predicate, key, query) -> bool:
    try:
        return bool(predicate(key, query))
    except Exception:  # noqa: BLE001  the evaluator rejects inputs where it raises
        return False


def to_source(program: rx.RASPExpr, vocab=None, max_seq_len: int | None = None,
              name: str | None = None) -> str:
    """`rasp.to_source`, with Python functions tabulated over the exact value sets that
    `infer_value_sets` gives for `vocab` and `max_seq_len` (inferred once, when needed)."""
    found: dict = {}

    def values_of(sop) -> tuple:
        if vocab is None or max_seq_len is None:
            raise Fault("it applies a Python function; give vocab= and max_seq_len= to "
                        "print it as a table")
        if not found:
            found.update(infer_value_sets(extract_graph(program), vocab, max_seq_len))
        value_set = found[sop.unique_id]
        if value_set.too_large:
            raise Fault(f"the values of {sop.label!r} are too many to tabulate")
        return value_set.values

    return print_source(program, vocab, max_seq_len, name, values_of)
