"""The meaning of RASP's elementwise operations on parse-time values.

Takes atoms (int, float, str, bool), lists, dicts, SOps and selectors; gives
atoms or new expressions. Each SOp built here records its RASP type
(`rasp_type`: str, int, float or bool) and its source form (`rasp_source`, a
template over `rasp_args`) so that `rasp.to_source` prints it back. A misuse
raises `Fault`, which the parser turns into a located RaspSyntaxError. Selectors,
aggregates and indexing are in `rasp.syntax_attention`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

from rasp import expr as rx
from rasp.naming import derived_label

NUMBER_TYPES = ("bool", "int", "float")  # booleans are 0/1 in arithmetic
PRIMITIVES = (rx.TokensType, rx.IndicesType, rx.LengthType)
COMPARISONS = {"==": rx.Comparison.EQ, "!=": rx.Comparison.NEQ, "<": rx.Comparison.LT,
               ">": rx.Comparison.GT, "<=": rx.Comparison.LEQ, ">=": rx.Comparison.GEQ}


class Fault(Exception):
    """A misuse found while giving source a meaning; the parser adds the location."""

    def __init__(self, message: str, expected: str | None = None):
        super().__init__(message)
        self.message, self.expected = message, expected


# Parse-time values are bounded, so that parsing a program (maybe one someone sent you)
# cannot take minutes or all memory (`10 ^ 100000000` alone takes minutes). No compiled
# model needs more: float32 holds integers exactly only up to 2**24.
MAX_INT = 2 ** 63  # the largest integer magnitude, as in the 64-bit ints of numpy
MAX_ELEMENTS = 10 ** 6  # the most elements of a parse-time list, string or range
_BEYOND = "beyond 2^63 in magnitude, the limit of parse-time arithmetic"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bounded(value):
    """`value`, or a Fault for an int beyond MAX_INT or a list or string longer than
    MAX_ELEMENTS."""
    if _is_int(value) and abs(value) > MAX_INT:
        raise Fault(f"an integer of {value.bit_length()} bits is {_BEYOND}", "a smaller number")
    if isinstance(value, (list, str)) and len(value) > MAX_ELEMENTS:
        raise Fault(f"{type_name(value)} of {len(value):,} elements is longer than the "
                    f"limit of {MAX_ELEMENTS:,}", "a shorter one")
    return value


def int_literal(text) -> int:
    """An integer literal, refused (before converting it) beyond MAX_INT."""
    digits = str(text).lstrip("0")
    if len(digits) > len(str(MAX_INT)):
        raise Fault(f"the literal of {len(digits):,} digits is {_BEYOND}", "a smaller number")
    return bounded(int(digits or "0"))


def _power(base, exponent):
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1 \
            and exponent * math.log2(abs(base)) > math.log2(MAX_INT) + 1:  # refused unbuilt
        digits = math.floor(exponent * math.log10(abs(base))) + 1
        raise Fault(f"{base} ^ {exponent} has {digits:,} digits, {_BEYOND}", "a smaller number")
    result = base ** exponent
    if isinstance(result, complex):  # RASP has no complex numbers: outside the domain
        raise ValueError(f"{base} ^ {exponent} is not a real number")
    return result


def _times(a, b):
    """a * b; a list or string repeated past MAX_ELEMENTS is refused before it is built."""
    sequence, count = (a, b) if isinstance(a, (list, str)) else (b, a)
    if isinstance(sequence, (list, str)) and _is_int(count) \
            and len(sequence) * count > MAX_ELEMENTS:
        raise Fault(f"{type_name(sequence)} of {len(sequence):,} element(s) repeated {count:,} "
                    f"times is longer than the limit of {MAX_ELEMENTS:,}", "a shorter one")
    return a * b


ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": _times, "/": operator.truediv,
    "%": operator.mod, "^": _power}
COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
    "<=": operator.le, ">=": operator.ge}
LOGIC: dict[str, Callable[[Any, Any], Any]] = {
    "and": lambda a, b: bool(a) and bool(b), "or": lambda a, b: bool(a) or bool(b)}


def literal(value) -> str:
    """`value` in RASP syntax (lists and tuples print as lists)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise Fault(f"{value!r} has no RASP literal")
        return repr(value)
    if isinstance(value, str):
        if '"' not in value:
            return f'"{value}"'
        if "'" not in value:
            return f"'{value}'"
        raise Fault(f"the string {value!r} holds both quote marks and has no RASP literal")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise Fault(f"a {type(value).__name__} ({value!r}) has no RASP literal")


def frozen(value):
    """A hashable copy: lists become tuples, so SOps can hold them."""
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    if isinstance(value, dict):
        raise Fault("an SOp cannot hold a dict", "an atom or a list")
    return value


def type_name(value) -> str:
    """What `value` is, for messages."""
    if isinstance(value, rx.SOp):
        return "an s-op"
    if isinstance(value, rx.Selector):
        return "a selector"
    if isinstance(value, tuple):
        return f"{len(value)} returned values"
    return {list: "a list", dict: "a dict", str: "a string", bool: "a bool", int: "an int",
            float: "a float"}.get(type(value), f"a {type(value).__name__}")


def common_type(types: Sequence[str | None]) -> str | None:
    """The type of values drawn from several types (None: unknown or mixed)."""
    kinds = set(types)
    if len(kinds) == 1:
        return kinds.pop()
    if kinds <= {"int", "float", "bool"} and "float" in kinds:
        return "float"
    if kinds <= {"int", "bool"}:
        return "int"
    return None


class Elementwise:
    """RASP's elementwise operations; `input_type` is the type the program reads its
    tokens as."""

    input_type: str | None = None

    # ------------------------------------------------------------------ types

    def type_of(self, value) -> str | None:
        """RASP type of an atom or SOp: str, int, float, bool, or None if unknown."""
        if isinstance(value, rx.TokensType):
            return self.input_type or "str"
        if isinstance(value, (rx.IndicesType, rx.LengthType, rx.SelectorWidth)):
            return "int"
        if isinstance(value, rx.SOp):
            return value.annotations.get("rasp_type")
        if isinstance(value, (list, tuple)):
            return "list"
        return {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value))

    def _arithmetic_type(self, op: str, a, b) -> str | None:
        ta, tb = self.type_of(a), self.type_of(b)
        if ta is None or tb is None:
            return None
        if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
            if op == "/" or "float" in (ta, tb):
                return "float"
            return "int"
        if op == "+" and ta == tb == "str":
            return "str"
        if op == "*" and {ta, tb} == {"str", "int"}:
            return "str"
        raise Fault(f"cannot apply {op} to {ta} and {tb}", "numbers (or strings for +)")

    def _comparison_type(self, op: str, a, b) -> str:
        ta, tb = self.type_of(a), self.type_of(b)
        ordered = op not in ("==", "!=")
        if ordered and None not in (ta, tb) and not (
                ta == tb or (ta in NUMBER_TYPES and tb in NUMBER_TYPES)):
            raise Fault(f"cannot order {ta} against {tb} with {op}", "values of one type")
        return "bool"

    # ------------------------------------------------------------- elementwise

    def elementwise(self, f: Callable, args: Sequence[Any], result_type: str | None,
                    template: str):
        """f applied position by position; atoms broadcast, and atoms alone give an atom.

        `template` writes the operation over `{0}`, `{1}`, ... (one per argument);
        literal text in it is escaped twice ({{{{ for {), as it passes through two formats.
        """
        for arg in args:
            if isinstance(arg, rx.Selector):
                raise Fault(f"{template.format(*['_'] * len(args))}: a selector has no "
                            "elementwise value", "an s-op or an atom")
            if isinstance(arg, (dict, tuple)) and unique_sops(args):
                raise Fault(f"an elementwise operation cannot take {type_name(arg)}",
                            "an s-op or an atom")
        unique = unique_sops(args)
        if not unique:  # constant folding
            try:
                return bounded(f(*args))
            except Fault:
                raise
            except Exception as error:  # noqa: BLE001  constant folding failed: report it
                raise Fault(f"{type(error).__name__}: {error}") from None
        positions = [next(i for i, u in enumerate(unique) if u is a)
                     if isinstance(a, rx.SOp) else None for a in args]
        constants = [None if isinstance(a, rx.SOp) else frozen(a) for a in args]

        def call(*values):
            return f(*[values[p] if p is not None else c for p, c in zip(positions, constants)])

        source = template.format(*["{%d}" % p if p is not None else escape(literal(a))
                                   for p, a in zip(positions, args)])
        return self._map_over(call, unique, result_type, source)

    def _map_over(self, f, sops, result_type, source):
        if len(sops) == 1:
            expr = rx.Map(f, sops[0])
        elif len(sops) == 2:
            expr = rx.SequenceMap(f, sops[0], sops[1])
        elif len(bases := _common_sources(sops)) <= 2:  # e.g. `d if o else d + 1`: one MLP
            reads = [_as_function(s, bases) for s in sops]
            expr = _map_of(lambda *xs: f(*[r(*xs) for r in reads]), bases)
        else:  # RASP zips any number of s-ops; we pack all but the last into tuples
            packed = rx.SequenceMap(lambda x, y: (x, y), sops[0], sops[1])
            for sop in sops[2:-1]:
                packed = rx.SequenceMap(lambda acc, x: (*acc, x), packed, sop)
            expr = rx.SequenceMap(lambda acc, x: f(*acc, x), packed, sops[-1])
        return self.typed(expr, result_type, source, sops)

    def typed(self, expr, rasp_type, source=None, args=()):
        """`expr` annotated with its RASP type, source form and the program's input type."""
        extra = {"rasp_source": source, "rasp_args": tuple(args)} if source else {}
        if source and isinstance(expr, rx.SOp) and "name" not in expr._annotations:  # noqa: SLF001
            formula = source.format(*[a.label if isinstance(a, rx.RASPExpr) else a
                                      for a in args])
            if all(rx.readable_label(a) for a in args if isinstance(a, rx.RASPExpr)):
                extra["derived_name"] = derived_label(formula)  # `balance < 0`: balance_lt_0
        if self.input_type:
            extra["rasp_input"] = self.input_type
        return expr.annotated(rasp_type=rasp_type, **extra)

    def binary(self, op: str, a, b):
        """`a op b` for the arithmetic, comparison and logic operators."""
        for value in (a, b):
            if isinstance(value, tuple):
                raise Fault(f"{type_name(value)} used as one value", "one value (unpack "
                            "several with `a, b = f(...);`)")
        if op in LOGIC:
            return self._logic(op, a, b)
        if not any(isinstance(v, rx.RASPExpr) for v in (a, b)):  # atoms, lists: as Python
            return self.elementwise({**COMPARE, **ARITHMETIC}[op], (a, b), None, "")
        if op in COMPARE:
            result = self._comparison_type(op, a, b)
            return self.elementwise(COMPARE[op], (a, b), result, "{0} %s {1}" % op)
        result = self._arithmetic_type(op, a, b)
        linear = self._linear(op, a, b)
        if linear is not None:
            return linear
        value = self.elementwise(ARITHMETIC[op], (a, b), result, "{0} %s {1}" % op)
        return self._scale(a, b, value) if op == "*" else value

    def _logic(self, op, a, b):
        selectors = [isinstance(v, rx.Selector) for v in (a, b)]
        if all(selectors):
            return rx.SelectorAnd(a, b) if op == "and" else rx.SelectorOr(a, b)
        if any(selectors):
            raise Fault(f"cannot apply {op} to a selector and {type_name(b if selectors[0] else a)}",
                        "two selectors, or two s-ops/atoms")
        if not any(isinstance(v, rx.SOp) for v in (a, b)):
            return (a and b) if op == "and" else (a or b)
        return self.elementwise(LOGIC[op], (a, b), "bool", "{0} %s {1}" % op)

    def _linear(self, op, a, b):
        """`x ± y` and `c·x ± d·y` over two numeric s-ops, as one LinearSequenceMap."""
        if op not in "+-" or not all(isinstance(v, rx.SOp) for v in (a, b)) or a is b:
            return None
        if not all(self.type_of(v) in ("int", "float") for v in (a, b)):
            return None
        (x, c), (y, d) = self._scaled(a), self._scaled(b)
        if x is y:
            x, c, y, d = a, 1, b, 1
        d = d if op == "+" else -d
        result = self._arithmetic_type(op, a, b)
        if c == d == 1 or (c, d) == (1, -1):
            source = "{0} %s {1}" % ("+" if d == 1 else "-")
        else:
            source = f"{literal(c)} * {{0}} + {literal(d)} * {{1}}"
        return self.typed(rx.LinearSequenceMap(x, y, c, d), result, source, (x, y))

    def _scaled(self, sop):
        """(x, c) when `sop` is `c * x` or `x * c` with c a number, else (sop, 1)."""
        scale = sop.annotations.get("rasp_scale")
        return scale if scale else (sop, 1)

    def _scale(self, a, b, result):
        """Record `c * x` so that a later `+`/`-` can fold it into a linear map."""
        if not isinstance(result, rx.Map):
            return result
        sop, factor = (b, a) if isinstance(b, rx.SOp) else (a, b)
        if isinstance(factor, (int, float)) and not isinstance(factor, bool) \
                and self.type_of(sop) in ("int", "float"):
            return result.annotated(rasp_scale=(sop, factor))
        return result

    def unary(self, op: str, value):
        """`not x`, `-x`, `+x`."""
        if op == "not":
            if isinstance(value, rx.Selector):
                return rx.SelectorNot(value)
            return self.elementwise(lambda a: not a, (value,), "bool", "not {0}")
        kind = self.type_of(value)
        if kind not in (*NUMBER_TYPES, None):
            raise Fault(f"cannot apply unary {op} to {kind}", "a number")
        result = "int" if kind == "bool" else kind
        f = operator.neg if op == "-" else operator.pos
        return self.elementwise(f, (value,), result, op + "{0}")

    def ternary(self, yes, condition, no):
        """`yes if condition else no` with an s-op condition (an atom one is lazy)."""
        result = common_type([self.type_of(yes), self.type_of(no)])
        return self.elementwise(lambda c, y, n: y if c else n, (condition, yes, no), result,
                                "{1} if {0} else {2}")

    def round(self, value):
        """Round half to even, as Python and RASP do."""
        if self.type_of(value) == "str":
            raise Fault("cannot round a string", "a number")
        return self.elementwise(round, (value,), "int", "round({0})")

    def indicator(self, value):
        """1 where `value` holds, else 0."""
        if not isinstance(value, rx.SOp):
            raise Fault(f"indicator takes an s-op, got {type_name(value)}", "an s-op")
        return self.elementwise(lambda a: 1 if a else 0, (value,), "int", "indicator({0})")


def _elementwise_inputs(sop) -> tuple[rx.SOp, ...] | None:
    """The inputs of a categorical Map or SequenceMap (None for anything else)."""
    if isinstance(sop, (rx.Map, rx.SequenceMap)) and rx.is_categorical(sop):
        return sop.children
    return None


def _common_sources(sops) -> list[rx.SOp]:
    """Fewer s-ops that `sops` are computed from by elementwise steps: an input is
    replaced by its own inputs while that lowers the count."""
    current = _unique(sops)
    shrinking = True
    while len(current) > 2 and shrinking:
        shrinking = False
        for sop in current:
            inputs = _elementwise_inputs(sop)
            if inputs is not None:
                candidate = _unique([s for s in current if s is not sop] + list(inputs))
                if len(candidate) < len(current):
                    current, shrinking = candidate, True
                    break
    return current


def unique_sops(values) -> list[rx.SOp]:
    """The s-ops among `values`, each once, in order."""
    return _unique(v for v in values if isinstance(v, rx.SOp))


def _unique(sops) -> list[rx.SOp]:
    found: list[rx.SOp] = []
    for sop in sops:  # by identity: == on s-ops builds a new s-op
        if not any(sop is f for f in found):
            found.append(sop)
    return found


def _as_function(sop, bases) -> Callable:
    """`sop`'s value as a function of the values of `bases` (None in, None out)."""
    for i, base in enumerate(bases):
        if sop is base:
            return lambda *xs, i=i: xs[i]
    reads = [_as_function(c, bases) for c in sop.children]

    def value(*xs):
        inputs = [r(*xs) for r in reads]
        return None if any(v is None for v in inputs) else sop.f(*inputs)
    return value


def _map_of(f, bases):
    return rx.Map(f, bases[0]) if len(bases) == 1 else rx.SequenceMap(f, bases[0], bases[1])


def escape(text: str, times: int = 1) -> str:
    """`text` to sit inside a str.format template (`times` templates deep)."""
    for _ in range(times):
        text = text.replace("{", "{{").replace("}", "}}")
    return text
