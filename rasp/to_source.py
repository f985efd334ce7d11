"""Print a RASP program, parsed or built in Python, in RASP syntax.

Takes an SOp or selector and gives source text that `rasp.parse` turns back into
an equivalent program, one assignment per expression. Expressions parsed from
RASP print as they were written; a Python function (a Map's, a SequenceMap's or a
Select's predicate) prints as a table over the values it can receive, which the
caller passes in (`values_of`): `compiler.to_source` passes the compiler's exact
value sets, since rasp does not infer them (rasp imports nothing above it).
"""

from __future__ import annotations

import re

from rasp import expr as rx
from rasp.errors import RaspError
from rasp.syntax_ops import Fault, literal
from rasp.traverse import fresh_name, topological_order

_OPERATORS = {rx.Comparison.EQ: "==", rx.Comparison.NEQ: "!=", rx.Comparison.LT: "<",
              rx.Comparison.GT: ">", rx.Comparison.LEQ: "<=", rx.Comparison.GEQ: ">="}
_PRIMITIVES = {rx.TokensType: "tokens", rx.IndicesType: "indices", rx.LengthType: "length"}


def to_source(program: rx.RASPExpr, vocab=None, max_seq_len: int | None = None,
              name: str | None = None, values_of=None) -> str:
    """RASP source whose `parse(...)[name]` is equivalent to `program`.

    Args:
      program: an SOp or a selector.
      vocab: the vocabulary (it sets the printed token type).
      max_seq_len: not read here; kept so that calls read as compiler.to_source's.
      name: the name the program is bound to (default: its label, made an identifier).
      values_of: sop -> the values it can take, to tabulate Python functions over
        (needed only when the program has some). rasp cannot infer value sets exactly;
        `compiler.to_source(program, vocab, max_seq_len)` passes the compiler's.

    Raises:
      RaspError: for an expression with no RASP form (a ConstantSelector), or a
        Python function when `values_of` is not given.
    """
    if isinstance(program, (*_PRIMITIVES, rx.Full)):
        raise RaspError(f"{program.label!r} is a primitive; there is nothing to print")
    printer = _Printer(values_of)
    order = topological_order(program, _arguments)
    names = _names(order, program, name)
    lines = ["# printed by rasp.to_source", *_input_type_line(order, vocab)]
    for node in order:
        if isinstance(node, (*_PRIMITIVES, rx.Full)):
            continue
        try:
            lines.append(f"{names[node.unique_id]} = {printer.render(node, names)};")
        except Fault as fault:
            raise RaspError(f"cannot print {node.label!r} in RASP syntax: {fault.message}") \
                from None
    return "\n".join(lines) + "\n"


def _arguments(node) -> tuple[rx.RASPExpr, ...]:
    """What `node` is printed in terms of: its source arguments if parsed, else children."""
    return node.annotations.get("rasp_args") or node.children


def _names(order, program, name) -> dict[int, str]:
    """A distinct identifier per expression; the program's comes first, so it is exact."""
    from rasp.syntax_scope import BUILTINS, KEYWORDS, base_scope  # imports lark

    taken = set(KEYWORDS) | set(BUILTINS) | set(base_scope().names)
    names = {}
    for node in [program] + order:
        if node.unique_id in names:
            continue
        if isinstance(node, tuple(_PRIMITIVES)):
            names[node.unique_id] = _PRIMITIVES[type(node)]
            continue
        base = re.sub(r"\W", "_", name if node is program and name else node.label)
        base = base.strip("_") or "value"
        base = base if not base[0].isdigit() else f"v_{base}"
        names[node.unique_id] = fresh_name(base, taken)
    return names


def _input_type_line(order, vocab) -> list[str]:
    """`tokens = tokens_int;` (or float, bool) for a program parsed with that input
    type, or else one whose vocabulary is not strings."""
    parsed = {n.annotations.get("rasp_input") for n in order} - {None}
    if parsed:
        return [f"tokens = tokens_{parsed.pop()};"] if parsed != {"str"} else []
    if not vocab or all(isinstance(t, str) for t in vocab):
        return []
    if all(isinstance(t, bool) for t in vocab):
        kind = "bool"
    elif all(isinstance(t, int) and not isinstance(t, bool) for t in vocab):
        kind = "int"
    elif all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in vocab):
        kind = "float"
    else:
        return []
    return [f"tokens = tokens_{kind};"]


class _Printer:
    """Renders one expression at a time; Python functions are tabulated over `values_of`."""

    def __init__(self, values_of):
        self._values_of = values_of

    def values_of(self, sop) -> tuple:
        """The values `sop` can take (as the caller's `values_of` gives them)."""
        if self._values_of is None:
            raise Fault("it applies a Python function; print it with compiler.to_source("
                        "program, vocab, max_seq_len), which tabulates it over the "
                        "compiler's exact value sets")
        return self._values_of(sop)

    def render(self, node, names) -> str:
        """The right-hand side printing `node`; `names` gives each expression's name."""
        def ref(expr):
            return literal(expr.fill) if isinstance(expr, rx.Full) else names[expr.unique_id]

        text = self._expression(node, ref)
        if isinstance(node, rx.SOp) and not isinstance(node, rx.Aggregate):
            return f"numerical({text})" if rx.is_numerical(node) else text
        return text

    def _expression(self, node, ref) -> str:
        source = node.annotations.get("rasp_source")
        if source:
            return source.format(*[ref(a) for a in node.annotations["rasp_args"]])
        match node:
            case rx.Aggregate():
                call = f"aggregate({ref(node.selector)}, {ref(node.sop)}, {literal(node.default)})"
                return f"{'numerical' if rx.is_numerical(node) else 'categorical'}({call})"
            case rx.SelectorWidth():
                return f"selector_width({ref(node.selector)})"
            case rx.LinearSequenceMap():
                a, b = node.fst_fac, node.snd_fac
                return f"{literal(a)} * {ref(node.fst)} + {literal(b)} * {ref(node.snd)}"
            case rx.SequenceMap():
                table = {}
                for x in self.values_of(node.fst):
                    for y in self.values_of(node.snd):
                        _try_put(table, (x, y), node.f, x, y)
                pairs = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in table.items())
                return f"{{{pairs}}}[{ref(node.fst)}, {ref(node.snd)}]"
            case rx.Map():
                table = {}
                for x in self.values_of(node.inner):
                    _try_put(table, x, node.f, x)
                return f"{literal(table)}[{ref(node.inner)}]"
            case rx.ConstantSOp():
                return f"{literal(list(node.value))}[indices]"
            case rx.Select():
                keys, queries, op = ref(node.keys), ref(node.queries), self._predicate(node)
                if node.predicate in (rx.Comparison.TRUE, rx.Comparison.FALSE) and op[0] != "[":
                    keys = queries = "1"  # never None: everything or nothing is selected
                return f"select({keys}, {queries}, {op})"
            case rx.SelectorOr():
                return f"{ref(node.fst)} or {ref(node.snd)}"
            case rx.SelectorAnd():
                return f"{ref(node.fst)} and {ref(node.snd)}"
            case rx.SelectorNot():
                return f"not {ref(node.inner)}"
        raise Fault(f"{type(node).__name__} has no RASP form")

    def _predicate(self, node) -> str:
        predicate = node.predicate
        if predicate in _OPERATORS:
            return _OPERATORS[predicate]
        if predicate in (rx.Comparison.TRUE, rx.Comparison.FALSE) and all(
                isinstance(s, tuple(_PRIMITIVES)) for s in (node.keys, node.queries)):
            return "==" if predicate is rx.Comparison.TRUE else "!="  # of select(1, 1, ...)
        pairs = getattr(predicate, "rasp_pairs", None)
        if pairs is None:  # a Python predicate (or TRUE/FALSE): the pairs that select
            pairs = [(k, q) for k in self.values_of(node.keys) for q in self.values_of(node.queries)
                     if _holds(predicate, k, q)]
        return literal([list(p) for p in pairs])


def _try_put(table, key, f, *args):
    try:
        table[key] = f(*args)
    except Exception:  # noqa: BLE001  the evaluator rejects this input; so does the table
        pass


def _holds(predicate, key, query) -> bool:
    try:
        return bool(predicate(key, query))
    except Exception:  # noqa: BLE001  the evaluator rejects inputs where it raises
        return False
