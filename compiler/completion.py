"""The completion form: a program rewritten so that a causal decoder generates its output.

Takes a program, its vocabulary and length bound N and gives a "raw" program over the
sequence `x_0 … x_{n-1} SEP y_0 … y_{n-1}` (the model prepends BOS), compiled causally by
the ordinary pipeline: at raw position n + j its value is the next token, y_j for j < n
and EOS for j = n. Every SOp of the program gets a completion version (its value at
logical position j, computed where the whole prompt is visible) and, where causally
computable, a prompt version (its value at a prompt position, which Select keys and
Aggregate values are read from). docs/compiler.md, "Completion form", gives the argument.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

from compiler.graph import extract_graph
from compiler.lowering import lower_program
from compiler.values import infer_value_sets
from rasp import expr as rx
from rasp.comparison import Comparison
from rasp.errors import CompileError, CompileWarning, EvaluationError
from rasp.evaluate import evaluate
from rasp.traverse import topological_order

# Preferred names; primed ("SEP'") where a token already uses one. NONE is written where
# the program's output is None, so that a tokenizer-level consumer (Hugging Face
# generate) sees a token there, not an arbitrary argmax or an early EOS.
SEP, EOS, NONE = "SEP", "EOS", "None"


def compile_completion(program: rx.SOp, vocab: list, max_seq_len: int, causal: bool,
                       strict: bool, compile_raw: Callable[..., Any]):
    """The completion-form model of `program` (see the module docstring).

    `compile_raw(raw_program, raw_vocab, raw_max_seq_len)` compiles the rewritten
    program causally (compile_rasp_to_model with this call's other arguments); `strict`
    refuses a program whose own domain is not total. The
    model's `domain` is the program's own; `program` is the raw program (the weights'
    ground truth) and `completion_of` the program as written.
    """
    from compiler.compiling import _enforce  # compiling imports this module
    from compiler.domain import program_domain
    from rasp_runtime.model import CompiledModel
    lowered = lower_program(program)  # its value sets are tighter (a mean of differences)
    outputs = infer_value_sets(extract_graph(lowered), vocab, max_seq_len)[lowered.unique_id]
    written = [v for v in outputs.values if v is not None]
    sep, eos, none = _special_tokens({*vocab, *written})
    none = none if outputs.may_be_none else None
    raw = completion_program(program, vocab, max_seq_len, causal, sep, eos,
                             outputs.may_be_none, none)
    raw_vocab = [*vocab, *(v for v in written if v not in vocab), sep, eos,
                 *([none] if none is not None else [])]
    domain = program_domain(program, vocab, max_seq_len, causal)
    _enforce(domain, strict)
    with warnings.catch_warnings():  # the raw program's domain covers garbage positions
        warnings.simplefilter("ignore", CompileWarning)
        model = compile_raw(raw, raw_vocab, 2 * max_seq_len + 1)
    config = dataclasses.replace(model.config, form="completion", sep=sep, eos=eos, none=none,
                                 prompt_vocab=tuple(vocab), completion_causal=causal)
    completed = CompiledModel(model.params, config, model.residual_labels, model.components,
                              model.value_records.values(), raw, domain=domain)
    completed.completion_of = program
    if not domain.total:
        warnings.warn(CompileWarning(domain.message()), stacklevel=3)
    return completed


def completion_program(program: rx.SOp, vocab: list, max_seq_len: int, causal: bool,
                       sep: Any = SEP, eos: Any = EOS, may_be_none: bool = True,
                       none: Any = None) -> rx.SOp:
    """The raw program: over `x_0 … x_{n-1} sep y_0 …`, the next token at each position
    from `sep` on (garbage before it). Raises CompileError naming an SOp that a Select
    reads as keys, or an Aggregate as values, which is not computable at prompt positions.
    `may_be_none`: whether the program's output can be None (then it is boxed, so that
    the final position still says EOS); it writes `none` where the output is None."""
    return _Rewrite(list(vocab), max_seq_len, causal, sep, eos).output(program, may_be_none,
                                                                       none)


def _special_tokens(taken: set) -> tuple[str, str]:
    """SEP, EOS and NONE, primed until no token or output value uses them."""
    def free(name: str) -> str:
        while name in taken:
            name += "'"
        return name
    return free(SEP), free(EOS), free(NONE)


class _Rewrite:
    """The prompt and completion versions of each SOp, built once per expression."""

    def __init__(self, vocab: list, max_seq_len: int, causal: bool, sep, eos):
        self.vocab, self.n_max, self.causal, self.sep, self.eos = \
            vocab, max_seq_len, causal, sep, eos
        self.prompt: dict[int, rx.SOp] = {}
        self.unavailable: dict[int, str] = {}  # why an SOp has no prompt version
        self.done: dict[int, rx.RASPExpr] = {}
        self._build_positions()

    def _build_positions(self) -> None:
        """Where SEP is, the logical position j, its token and the prompt's length. Before
        SEP they are None (nothing selected), so no completion query selects anything there."""
        n_max, known = self.n_max, set(self.vocab)
        first, last = self.vocab[0], n_max - 1
        raw_t, raw_r = rx.tokens, rx.indices
        # Tokens and indices as the program may see them: non-prompt positions are
        # clamped into the program's own value sets, so its functions see nothing new.
        self.prompt_tokens = rx.Map(lambda t: t if t in known else first, raw_t).named(
            "completion.prompt_tokens")
        self.prompt_indices = rx.Map(lambda r: min(r, last), raw_r).named(
            "completion.prompt_indices")
        at_sep = rx.Select(raw_t, raw_t, lambda key, query: key == self.sep).named(
            "completion.select_sep")
        # n: SEP's position, which is the prompt's length (1..N for a valid prompt).
        clamped = rx.Map(lambda r: min(max(r, 1), n_max), raw_r).named("completion.positions")
        n = rx.Aggregate(at_sep, clamped).named("completion.length")
        self.length = n
        # j = r − n, the logical position whose output is predicted; the final position
        # (r = 2n, which predicts EOS) computes j = n − 1 again, a real position.
        self.index = rx.SequenceMap(lambda r, n: max(0, min(r - n, n - 1)), raw_r, n).named(
            "completion.index")
        self.is_end = rx.SequenceMap(lambda r, n: r == 2 * n, raw_r, n).named(
            "completion.is_end")
        self.token = rx.Aggregate(rx.Select(raw_r, self.index, Comparison.EQ),
                                  self.prompt_tokens).named("completion.token")
        # Keys a completion query may select: prompt positions (r ≤ n − 1), and for a
        # causal program only those up to j.
        limit = self.index if self.causal else rx.Map(lambda n: n - 1, n).named(
            "completion.last_prompt_index")
        self.key_mask = rx.Select(raw_r, limit, Comparison.LEQ).named("completion.prompt_keys")

    # ---------------------------------------------------------------- the walk
    def output(self, program: rx.SOp, may_be_none: bool, none: Any = None) -> rx.SOp:
        """The raw program's output: the program's value at j (`none` where it is None),
        or EOS where r = 2n."""
        for expr in topological_order(program):
            self._visit(expr)
        value, eos = self.done[program.unique_id], self.eos
        if not may_be_none:
            return rx.SequenceMap(lambda end, v: eos if end else v, self.is_end,
                                  value).named("completion.next_token")
        # A None value would make the SequenceMap None at the end too: box it first.
        here = rx.Select(rx.indices, rx.indices, Comparison.EQ) & \
            rx.Select(value, value, Comparison.TRUE)
        boxed = rx.Aggregate(here, rx.Map(lambda v: (v,), value), default=()).named(
            "completion.boxed")
        return rx.SequenceMap(lambda end, box: eos if end else (box[0] if box else none),
                              self.is_end, boxed).named("completion.next_token")

    def _visit(self, expr: rx.RASPExpr) -> None:
        key = expr.unique_id
        match expr:
            case rx.TokensType():
                self.prompt[key], self.done[key] = self.prompt_tokens, self.token
            case rx.IndicesType():
                self.prompt[key], self.done[key] = self.prompt_indices, self.index
            case rx.LengthType():
                self.unavailable[key] = "the input's length"
                self.done[key] = self.length
            case rx.Full():
                self.prompt[key] = self.done[key] = expr
            case rx.ConstantSOp() | rx.ConstantSelector():
                raise CompileError(expr, "constant sequences and selectors have no "
                                   "completion form", "compute it from indices instead")
            case rx.Map():
                self._elementwise(expr, lambda c: rx.Map(expr.f, c[0]), (expr.inner,))
            case rx.LinearSequenceMap():
                self._elementwise(expr, lambda c: rx.LinearSequenceMap(
                    c[0], c[1], expr.fst_fac, expr.snd_fac), expr.children)
            case rx.SequenceMap():
                self._elementwise(expr, lambda c: rx.SequenceMap(expr.f, c[0], c[1]),
                                  expr.children)
            case rx.SelectorWidth() if not self.causal and _counts_everything(expr.selector):
                self.unavailable[key] = "the input's length"
                self.done[key] = self.length  # make_length(): SEP's position, one head
            case rx.SelectorWidth():
                self._selection(expr, lambda s: rx.SelectorWidth(s))
            case rx.Aggregate():
                values = self._prompt_version(expr.sop, expr)
                self._selection(expr, lambda s: rx.Aggregate(s, values, expr.default),
                                expr.sop)

    def _elementwise(self, expr, build, children) -> None:
        """A Map or SequenceMap: the same function of each version of its inputs."""
        self.done[expr.unique_id] = _like(expr, build([self.done[c.unique_id]
                                                       for c in children]))
        missing = [c for c in children if c.unique_id not in self.prompt]
        if missing:
            self.unavailable[expr.unique_id] = self._why(missing[0])
        else:
            self.prompt[expr.unique_id] = _like(expr, build(
                [self.prompt[c.unique_id] for c in children]), ".prompt")

    def _selection(self, expr, build, values: rx.SOp | None = None) -> None:
        """An Aggregate or SelectorWidth: at completion positions its selector's queries
        are completion versions and its keys prompt versions, restricted to the prompt
        keys (and, for a causal program, to those up to j). At prompt positions it has a
        version only where its selector never selects a later key."""
        selector = self._completion_selector(expr.selector, expr)
        self.done[expr.unique_id] = _like(expr, build(selector & self.key_mask))
        later = None if self.causal else _later_key(expr.selector, self.n_max, self.vocab)
        reason = self._prompt_blocker(expr.selector)
        if values is not None and values.unique_id not in self.prompt:
            reason = reason or self._why(values)
        if reason is None and later is None:
            self.prompt[expr.unique_id] = _like(expr, build(
                self._prompt_selector(expr.selector)), ".prompt")
        else:
            self.unavailable[expr.unique_id] = reason or (
                f"{expr.selector.label!r}, a selector not shown to select only earlier "
                f"positions ({later})")

    # ---------------------------------------------------------------- selectors
    def _completion_selector(self, selector: rx.Selector, reader) -> rx.Selector:
        match selector:
            case rx.Select():
                keys = self._prompt_version(selector.keys, reader)
                return rx.Select(keys, self.done[selector.queries.unique_id],
                                 selector.predicate)
            case rx.SelectorNot():
                return ~self._completion_selector(selector.inner, reader)
            case rx.SelectorOr():
                return self._completion_selector(selector.fst, reader) | \
                    self._completion_selector(selector.snd, reader)
            case rx.SelectorAnd():
                return self._completion_selector(selector.fst, reader) & \
                    self._completion_selector(selector.snd, reader)
        raise CompileError(selector, "constant selectors have no completion form",
                           "select on indices instead")

    def _prompt_selector(self, selector: rx.Selector) -> rx.Selector:
        match selector:
            case rx.Select():
                return rx.Select(self.prompt[selector.keys.unique_id],
                                 self.prompt[selector.queries.unique_id], selector.predicate)
            case rx.SelectorNot():
                return ~self._prompt_selector(selector.inner)
            case rx.SelectorOr():
                return self._prompt_selector(selector.fst) | self._prompt_selector(selector.snd)
            case rx.SelectorAnd():
                return self._prompt_selector(selector.fst) & self._prompt_selector(selector.snd)
        raise CompileError(selector, "constant selectors have no completion form")

    def _prompt_blocker(self, selector: rx.Selector) -> str | None:
        """Why the selector has no prompt version (a key or query SOp has none), or None."""
        for select in _selects(selector):
            for sop in (select.keys, select.queries):
                if sop.unique_id not in self.prompt:
                    return self._why(sop)
        return None

    def _prompt_version(self, sop: rx.SOp, reader) -> rx.SOp:
        """`sop` at prompt positions, or CompileError naming it."""
        if sop.unique_id in self.prompt:
            return self.prompt[sop.unique_id]
        role = "values" if isinstance(reader, rx.Aggregate) and reader.sop is sop else "keys"
        raise CompileError(sop, f"{reader.label!r} reads it as {role} at prompt positions, "
                           "where a decoder has seen only the prompt up to there, but its "
                           f"value depends on {self._why(sop)}",
                           "compile it per position (form='per-position'), or compute these "
                           "keys and values from tokens and indices alone")

    def _why(self, sop: rx.SOp) -> str:
        return self.unavailable.get(sop.unique_id, f"{sop.label!r}")


def _like(original: rx.SOp, new: rx.SOp, suffix: str = "") -> rx.SOp:
    """`new` with `original`'s annotations, labelled after it (plus `suffix`)."""
    return new.annotated(**{**original.annotations, "name": original.label + suffix})


def _selects(selector: rx.Selector):
    if isinstance(selector, rx.Select):
        yield selector
    for child in selector.children:
        if isinstance(child, rx.Selector):
            yield from _selects(child)


def _counts_everything(selector: rx.Selector) -> bool:
    """A Select TRUE over tokens or indices (never None): its width is the length."""
    never_none = (rx.TokensType, rx.IndicesType)
    return isinstance(selector, rx.Select) and selector.predicate is Comparison.TRUE and \
        isinstance(selector.keys, never_none) and isinstance(selector.queries, never_none)


def _later_key(selector: rx.Selector, max_seq_len: int, vocab: list) -> str | None:
    """None if the selector provably never selects a key after its query (checked on every
    pair of positions, for a selector over SOps of indices alone), else a description."""
    match selector:
        case rx.SelectorAnd() if not isinstance(selector, rx.SelectorOr):
            fst = _later_key(selector.fst, max_seq_len, vocab)
            return fst and _later_key(selector.snd, max_seq_len, vocab)
        case rx.SelectorOr():
            return _later_key(selector.fst, max_seq_len, vocab) or \
                _later_key(selector.snd, max_seq_len, vocab)
        case rx.Select():
            return _select_later_key(selector, max_seq_len, vocab[0])
    return "a negated or constant selector"


def _select_later_key(select: rx.Select, max_seq_len: int, filler: Any) -> str | None:
    if not all(_of_indices(sop) for sop in (select.keys, select.queries)):
        return "it reads more than indices"
    xs = [filler] * max_seq_len  # any tokens: the keys and queries read indices alone
    try:
        keys, queries = evaluate(select.keys, xs), evaluate(select.queries, xs)
        for q, query in enumerate(queries):
            for k in range(q + 1, max_seq_len):
                if keys[k] is not None and query is not None and select.predicate(keys[k], query):
                    return f"query {q} selects key {k}"
    except (EvaluationError, Exception) as error:  # a predicate raising: not provable
        return f"{type(error).__name__}: {error}"
    return None


def _of_indices(sop: rx.SOp) -> bool:
    """Whether `sop` is a function of indices alone (Maps, SequenceMaps, Full)."""
    return all(isinstance(e, (rx.IndicesType, rx.Full, rx.Map, rx.SequenceMap))
               for e in topological_order(sop))
