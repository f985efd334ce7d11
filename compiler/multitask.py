"""Several tasks in one model: programs rewritten into one "raw" program over `task x1 … xn`.

Takes a dict {task name: program}, a vocabulary and a length bound N and gives one program
over raw inputs whose first token names the task (the model prepends BOS): at raw
positions 1..n its value is the named program's output on `x1 … xn`. Each SOp is
rewritten once (memoised by expression, and every all-true SelectorWidth becomes the one
shared length), so programs that share SOps share their components. docs/multitask.md
gives the construction and its cost.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from compiler.graph import extract_graph
from compiler.values import infer_value_sets
from rasp import expr as rx
from rasp.comparison import Comparison
from rasp.errors import CompileError, CompileWarning
from rasp.traverse import topological_order

TASK_LABEL = "multitask.task"  # the task token, fetched from raw position 0 everywhere
GATE_PREFIX = "multitask.gate."  # + task: the SOp that passes that task's output or ()


def compile_multitask(programs: Mapping[str, rx.SOp], vocab: list, max_seq_len: int,
                      causal: bool, compile_raw: Callable[..., Any]):
    """The several-task model of `programs` (see the module docstring).

    `compile_raw(raw_program, raw_vocab, raw_max_seq_len)` compiles the rewritten program
    (compile_rasp_to_model with this call's other arguments). The model's `program` is
    the raw program; its `domain` joins the programs' own domains (the raw program's
    would list conditions that only the task position reaches); `tasks` maps each task to its program as written, and `config.tasks`
    names the tasks in order (GroundTruth.for_task finds each one's circuit by its gate).
    """
    from compiler.domain import program_domain
    from rasp_runtime.domain import Domain
    from rasp_runtime.model import CompiledModel
    names = check_tasks(programs, vocab)
    rewrite = _Rewrite(vocab, max_seq_len)
    raw = rewrite.output({name: programs[name] for name in names})
    with warnings.catch_warnings():  # position 0 (the task token) widens some value sets
        warnings.simplefilter("ignore", CompileWarning)
        model = compile_raw(raw, [*vocab, *names], max_seq_len + 1)
    config = dataclasses.replace(model.config, tasks=tuple(names))
    domains = [program_domain(programs[name], vocab, max_seq_len, causal) for name in names]
    domain = Domain(tuple(c for d in domains for c in d.conditions),
                    next((d.unknown for d in domains if d.unknown), None))
    combined = CompiledModel(model.params, config, model.residual_labels, model.components,
                             model.value_records.values(), raw, domain=domain)
    combined.tasks = dict(programs)
    if not domain.total:
        warnings.warn(CompileWarning(domain.message()), stacklevel=3)
    return combined


def check_tasks(programs, vocab: list) -> list[str]:
    """The task names in order; CompileError for a malformed dict, a name that is also a
    token, or a numerical output (the outputs share one categorical unembedding)."""
    if not isinstance(programs, Mapping) or not programs:
        raise CompileError(None, "several tasks are given as a non-empty dict "
                           "{task name: program}")
    names = list(programs)
    for name in names:
        if not isinstance(name, str) or not name:
            raise CompileError(None, f"task names must be non-empty strings, got {name!r}")
        if name in vocab:
            raise CompileError(None, f"task name {name!r} is also a token",
                               "rename the task: the task token must differ from every token")
        program = programs[name]
        if not isinstance(program, rx.SOp):
            raise CompileError(repr(program), f"task {name!r} must be a RASP SOp")
        if rx.is_numerical(program):
            raise CompileError(program, f"task {name!r} has a numerical output, and the "
                               "tasks share one categorical output",
                               "make it categorical (rasp.categorical(rasp.Map(lambda x: x, "
                               "...))) or compile it on its own")
    return names


def task_input(task: str, xs) -> list:
    """The model input that runs `task` on `xs`: BOS, the task token, then the tokens."""
    return ["BOS", task, *xs]


class _Rewrite:
    """The raw version of each SOp (its value at raw position r is the original SOp's value
    at position r − 1), built once per expression."""

    def __init__(self, vocab: list, max_seq_len: int):
        self.done: dict[int, rx.RASPExpr] = {}
        self.vocab, self.max_seq_len = vocab, max_seq_len
        known, first, last = set(vocab), vocab[0], max_seq_len - 1
        # Position 0 holds the task token: clamped into the program's own value sets, so
        # its functions see nothing new, and masked out of every selector.
        self.tokens = rx.Map(lambda t: t if t in known else first, rx.tokens).named(
            "multitask.tokens")
        self.indices = rx.Map(lambda r: min(max(r - 1, 0), last), rx.indices).named(
            "multitask.indices")
        self.key_mask = rx.Select(rx.indices, rx.indices, lambda key, query: key >= 1).named(
            "multitask.inputs")
        self.length = rx.Map(lambda n: min(max(n, 1), max_seq_len), rx.SelectorWidth(
            self.key_mask).named("multitask.width")).named("multitask.length")
        at_task = rx.Select(rx.indices, rx.indices, lambda key, query: key == 0).named(
            "multitask.select_task")
        self.task = rx.Aggregate(at_task, rx.tokens).named(TASK_LABEL)

    def output(self, programs: dict[str, rx.SOp]) -> rx.SOp:
        """The raw program: each task's output gated by the task token (a box (v,) for the
        chosen task, () for the others), the boxes or-ed in a balanced tree, then unboxed."""
        gates = []
        for name, program in programs.items():
            for expr in topological_order(program):
                if expr.unique_id not in self.done:
                    self._visit(expr)
            value = self.done[program.unique_id]
            gate = rx.SequenceMap(lambda task, box, name=name: box if task == name else (),
                                  self.task, self._boxed(value, program)).named(
                                      GATE_PREFIX + name)
            gates.append(gate)
        while len(gates) > 1:  # one MLP layer per level: ceil(log2(tasks)) levels
            pairs = [rx.SequenceMap(lambda a, b: a or b, gates[i], gates[i + 1]).named(
                f"multitask.either.{len(gates)}.{i // 2}") for i in range(0, len(gates) - 1, 2)]
            gates = pairs + gates[len(pairs) * 2:]
        output = rx.categorical(rx.Map(lambda box: box[0] if box else None, gates[0]).named(
            "multitask.output"))
        return output

    def _boxed(self, value: rx.SOp, program: rx.SOp) -> rx.SOp:
        """`value` as a 1-tuple, also where it is None (a SequenceMap reading None is None).

        An output that may be None is an Aggregate selecting nothing (boxed inside: its
        values boxed, default ()), or else boxed by a head that copies it where it is not
        None (that head's query and key read only whether it is None)."""
        values = infer_value_sets(extract_graph(program), self.vocab, self.max_seq_len)
        label = value.label + ".boxed"
        if not values[program.unique_id].may_be_none:
            return rx.Map(lambda v: (v,), value).named(label)
        if isinstance(value, rx.Aggregate) and rx.is_categorical(value) and \
                not values[program.sop.unique_id].may_be_none:
            return rx.Aggregate(value.selector, rx.Map(lambda v: (v,), value.sop).named(
                label + "_values"), default=()).named(label)
        here = rx.Select(rx.indices, rx.indices, Comparison.EQ) & \
            rx.Select(value, value, Comparison.TRUE)
        return rx.Aggregate(here, rx.Map(lambda v: (v,), value), default=()).named(label)

    def _visit(self, expr: rx.RASPExpr) -> None:
        key = expr.unique_id
        match expr:
            case rx.TokensType():
                self.done[key] = self.tokens
            case rx.IndicesType():
                self.done[key] = self.indices
            case rx.LengthType():
                self.done[key] = self.length
            case rx.Full():
                self.done[key] = expr
            case rx.ConstantSOp() | rx.ConstantSelector():
                raise CompileError(expr, "constant sequences and selectors cannot be "
                                   "shifted past the task token", "compute it from indices")
            case rx.Map():
                self.done[key] = _like(expr, rx.Map(expr.f, self.done[expr.inner.unique_id]))
            case rx.LinearSequenceMap():
                fst, snd = (self.done[c.unique_id] for c in expr.children)
                self.done[key] = _like(expr, rx.LinearSequenceMap(fst, snd, expr.fst_fac,
                                                                  expr.snd_fac))
            case rx.SequenceMap():
                fst, snd = (self.done[c.unique_id] for c in expr.children)
                self.done[key] = _like(expr, rx.SequenceMap(expr.f, fst, snd))
            case rx.SelectorWidth() if _counts_everything(expr.selector):
                self.done[key] = self.length  # every task's length is the same head
            case rx.SelectorWidth():
                self.done[key] = _like(expr, rx.SelectorWidth(self._selector(expr.selector)
                                                              & self.key_mask))
            case rx.Aggregate():
                selector = self._selector(expr.selector) & self.key_mask
                self.done[key] = _like(expr, rx.Aggregate(
                    selector, self.done[expr.sop.unique_id], expr.default))

    def _selector(self, selector: rx.Selector) -> rx.Selector:
        match selector:
            case rx.Select():
                return rx.Select(self.done[selector.keys.unique_id],
                                 self.done[selector.queries.unique_id], selector.predicate)
            case rx.SelectorNot():
                return ~self._selector(selector.inner)
            case rx.SelectorOr():
                return self._selector(selector.fst) | self._selector(selector.snd)
            case rx.SelectorAnd():
                return self._selector(selector.fst) & self._selector(selector.snd)
        raise CompileError(selector, "constant selectors cannot be shifted past the task "
                           "token", "select on indices instead")


def _like(original: rx.SOp, new: rx.SOp) -> rx.SOp:
    """`new` with `original`'s annotations and label."""
    return new.annotated(**{**original.annotations, "name": original.label})


def _counts_everything(selector: rx.Selector) -> bool:
    """A Select TRUE over tokens or indices (never None): its width is the length."""
    never_none = (rx.TokensType, rx.IndicesType)
    return isinstance(selector, rx.Select) and selector.predicate is Comparison.TRUE and \
        isinstance(selector.keys, never_none) and isinstance(selector.queries, never_none)
