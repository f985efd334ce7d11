"""The program's domain: where the reference evaluator gives a value at all.

Takes a RASP program with its vocabulary and length bound and gives a `Domain`,
the list of conditions under which evaluation raises and a compiled model's output
means nothing: a Map or SequenceMap whose function raises on a value it can
receive, and a categorical Aggregate not proven to select one value per query.
`Domain.empty` says why no input at all is valid, where that is proven; the compiler
refuses such a program.
"""

from __future__ import annotations

from typing import Any

import rasp
from compiler.graph import extract_graph
from compiler.lowering import lower_program
from compiler.selection import describe
from compiler.uniqueness import ProgramFacts
from compiler.values import MAX_PREDICATE_CALLS, Failure, infer_value_sets
from rasp import expr as rx
from rasp.errors import CompileError, ValueRangeError
from rasp_runtime.domain import (AMBIGUOUS, LENGTH, RAISES, WITNESS, Domain,
                                 DomainCondition)

MAX_EXAMPLES = 3


def infer_domain(program: rx.SOp, lowered: rx.SOp, vocab, max_seq_len: int,
                 causal: bool, value_sets: dict | None = None) -> Domain:
    """The domain of `program`, analysed on its lowered form `lowered` (same values at
    every position, same labels, and value sets cheap to enumerate).

    `value_sets`, if given, receives the lowered program's value sets (see
    compiler.values.infer_value_sets' `known`), so that the compile reuses them."""
    graph = extract_graph(lowered)
    failures: list[Failure] = []
    try:
        sets = infer_value_sets(graph, vocab, max_seq_len, failures, known=value_sets)
    except ValueRangeError:
        raise  # a value no model can hold: no compile, whatever the domain
    except CompileError as error:
        return Domain(unknown=error.reason)
    facts = ProgramFacts(graph, sets, max_seq_len, causal)
    written = rasp.topological_order(program)
    # Lowering rebuilds selectors; a condition names the selector as written.
    selectors = {e.label: e.selector for e in written if isinstance(e, rx.Aggregate)}
    conditions = [_raising(expr, group, facts) for expr, group in _by_expr(failures)]
    conditions += [c for node in graph.order
                   if (c := _ambiguity(graph.expr(node), facts, selectors)) is not None]
    conditions += [DomainCondition(e.label, LENGTH, str(len(e.value)), certain=True)
                   for e in written  # lowering drops ConstantSelector
                   if isinstance(e, (rx.ConstantSOp, rx.ConstantSelector)) and e.check_length
                   and not max_seq_len == len(e.value) == 1]
    return Domain(tuple(conditions), empty=_emptiness(written, sets, failures, conditions,
                                                      vocab, max_seq_len))


def program_domain(program: rx.SOp, vocab, max_seq_len: int, causal: bool = False) -> Domain:
    """The domain of `program` on its own, without compiling it."""
    return infer_domain(program, lower_program(program), vocab, max_seq_len, causal)


def _by_expr(failures: list[Failure]):
    groups: dict[int, list[Failure]] = {}
    for failure in failures:
        groups.setdefault(failure.expr.unique_id, []).append(failure)
    return [(group[0].expr, group) for group in groups.values()]


def _raising(expr, failures: list[Failure], facts: ProgramFacts) -> DomainCondition:
    error = failures[0].error
    examples = tuple(f.args[0] if len(f.args) == 1 else f.args for f in failures[:MAX_EXAMPLES])
    certain = isinstance(expr, rx.Map) and facts.exact(expr.inner)
    return DomainCondition(expr.label, RAISES, f"{type(error).__name__}: {error}", examples,
                           certain)


def _ambiguity(expr, facts: ProgramFacts, selectors: dict) -> DomainCondition | None:
    if not isinstance(expr, rx.Aggregate) or rx.is_numerical(expr) or facts.unique(expr):
        return None
    selector = selectors.get(expr.label, expr.selector)
    detail = f"{selector.label!r} = {describe(selector)}"
    # A key broken by position that the selector reads: say where it collides, and
    # never advise breaking ties by position, which it already does.
    tie_broken = [sop for sop in rasp.topological_order(expr.selector)
                  if isinstance(sop, rx.SequenceMap)
                  and any(isinstance(c, rx.IndicesType) for c in sop.children)]
    collision = next(filter(None, map(facts.collision, tie_broken)), None)
    if collision is not None:
        return DomainCondition(expr.label, AMBIGUOUS, f"{detail}{WITNESS}{collision}",
                               fix=collision.fix())
    fix = ("make each selector pick one key per query or keys of one value (the keys it "
           "breaks by position may still collide)") if tie_broken else ""
    return DomainCondition(expr.label, AMBIGUOUS, detail, fix=fix)


# ------------------------------------------------------------------ empty domains
def _emptiness(written: list, sets: dict, failures: list[Failure], conditions: list,
               vocab, max_seq_len: int) -> tuple[str, ...]:
    """Why no input of length 1..max_seq_len is valid, or () where some may be.

    Proven three ways: a function raises on every value its never-None inputs can take
    (value sets are supersets, so on every value they do take); the lengths that
    constants allow include none up to max_seq_len; or at every length some position
    makes a function of the token, index and length raise whatever its token."""
    reasons = []
    for expr, group in _by_expr(failures):
        values = sets.get(expr.unique_id)
        if values is not None and not (values.values or values.may_be_none or values.too_large):
            shown = ", ".join(repr(f.args[0] if len(f.args) == 1 else f.args)
                              for f in group[:MAX_EXAMPLES])
            reasons.append(f"{expr.label!r} raises {type(group[0].error).__name__} on every "
                           f"value its input can take ({shown}{', …' * (len(group) > MAX_EXAMPLES)})")
    lengths = {int(c.detail) for c in conditions if c.kind == LENGTH}
    if len(lengths) > 1 or any(n > max_seq_len for n in lengths):
        reasons.append("its constants fix the input length to " +
                       " and to ".join(map(str, sorted(lengths))) +
                       f", and max_seq_len is {max_seq_len}")
    if reasons or not failures:  # no function raises on a value it can take: none fails
        return tuple(reasons)
    return _positions_fail(written, vocab, max_seq_len)


def _positions_fail(written: list, vocab, max_seq_len: int) -> tuple[str, ...]:
    """Why, at every length, some position makes a positionwise function (of the token,
    index and length there) raise whatever its token; () where some input of some
    length passes them all (or the search is too large)."""
    known: dict[int, bool] = {}
    positionwise = [e for e in written if _positionwise(e, known)]
    if not any(isinstance(e, (rx.Map, rx.SequenceMap)) for e in positionwise):
        return ()
    # Without length, a position's functions do not depend on the length: a valid
    # input of length 1 exists unless position 0 fails, which every input has.
    reads_length = any(isinstance(e, rx.LengthType) for e in positionwise)
    lengths = range(1, max_seq_len + 1) if reads_length else (1,)
    calls = len(vocab) * len(positionwise) * sum(lengths)
    if calls > MAX_PREDICATE_CALLS:
        return ()
    reasons = []
    for length in lengths:
        for position in range(length):
            failures = [_raising_at(positionwise, token, position, length) for token in vocab]
            if None not in failures:
                break  # no token passes here: no input of this length is valid
        else:
            return ()  # every position has a token that passes: a valid input
        shown = "; ".join(dict.fromkeys(failures))
        where = f"at position {position}" + (f" of inputs of length {length}"
                                             if reads_length else " (every input has one)")
        reasons.append(f"{where}, every token makes a function raise: {shown}")
    return tuple(reasons[:MAX_EXAMPLES]) + (("…",) if len(reasons) > MAX_EXAMPLES else ())


def _positionwise(expr, known: dict) -> bool:
    """Whether `expr` is a function of the token, index and length at one position
    (memoised in `known`, keyed by id)."""
    if expr.unique_id not in known:
        known[expr.unique_id] = isinstance(expr, (rx.TokensType, rx.IndicesType, rx.LengthType,
                                                  rx.Full)) or (
            isinstance(expr, (rx.Map, rx.SequenceMap))
            and all(_positionwise(c, known) for c in expr.children))
    return known[expr.unique_id]


def _raising_at(positionwise: list, token, position: int, length: int) -> str | None:
    """The first function (in evaluation order) that raises at `position` of an input
    of `length` holding `token` there, and how; or None."""
    values: dict[int, Any] = {}
    for expr in positionwise:
        match expr:
            case rx.TokensType():
                value = token
            case rx.IndicesType():
                value = position
            case rx.LengthType():
                value = length
            case rx.Full():
                value = expr.fill
            case _:
                args = [values[c.unique_id] for c in expr.children]
                try:
                    value = None if any(a is None for a in args) else expr.f(*args)
                except Exception as error:  # noqa: BLE001  the evaluator's error too
                    return f"{expr.label!r} raises {type(error).__name__}: {error}"
        values[expr.unique_id] = value
    return None
