"""RASP expressions: sequence operations (SOps) and selectors.

Expressions are immutable, hashable by identity, and carry a unique integer id
and a readable label. Deriving an annotated copy (`named`, `numerical`, ...)
gives a new expression with a fresh id. The names and argument orders follow
DeepMind's Tracr so that its programs port by changing the import.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from rasp.annotations import DEFAULT_ANNOTATORS, Annotations, Encoding  # noqa: F401
from rasp.comparison import Comparison
from rasp.naming import derived_label

_next_id = itertools.count(1)


class RASPExpr:
    """Base class of every RASP expression."""

    default_name = "expr"

    def __init__(self):
        object.__setattr__(self, "unique_id", next(_next_id))
        object.__setattr__(self, "_annotations", MappingProxyType({}))

    def __setattr__(self, name, value):
        raise AttributeError(
            f"RASP expressions are immutable (tried to set {name!r}); "
            "use .named() or .annotated() to derive a new expression")

    def __delattr__(self, name):
        raise AttributeError(f"RASP expressions are immutable (tried to delete {name!r})")

    __hash__ = object.__hash__

    def __call__(self, xs):
        """Evaluate on `xs` (Tracr's `program(xs)` style)."""
        from rasp.evaluate import evaluate
        return evaluate(self, xs)

    @property
    def children(self) -> tuple[RASPExpr, ...]:
        return ()

    @property
    def annotations(self) -> Mapping[str, Any]:
        """Read-only annotations; a missing key falls back to DEFAULT_ANNOTATORS."""
        return Annotations(self, self._annotations)

    @property
    def name(self) -> str:
        """Same as `label` (Tracr gives every expression a name)."""
        return self.label

    @property
    def label(self) -> str:
        """The name if one was given, else one derived from what an operator computes
        (`tokens_gt_2`, see `rasp.naming`), else `<kind>_<id>`."""
        return self._annotations.get("name") or self._annotations.get("derived_name") or \
            f"{self.default_name}_{self.unique_id}"

    def annotated(self, **annotations) -> RASPExpr:
        """A copy of this expression with a fresh id and extra annotations."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        object.__setattr__(clone, "unique_id", next(_next_id))
        object.__setattr__(clone, "_annotations",
                           MappingProxyType({**self._annotations, **annotations}))
        return clone

    def named(self, name: str) -> RASPExpr:
        """A copy of this expression labelled `name`."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a name must be a non-empty str, got {name!r}")
        return self.annotated(name=name)

    def __repr__(self):
        return f"<{type(self).__name__} {self.label}>"


def _check_type(value, expected, what: str, owner: str):
    if not isinstance(value, expected):
        names = (expected.__name__ if isinstance(expected, type)
                 else " or ".join(t.__name__ for t in expected))
        raise TypeError(f"{owner}: {what} must be a {names}, got {type(value).__name__} "
                        f"({value!r})")


def readable_label(expr: RASPExpr) -> bool:
    """Whether `expr`'s label says what it is (given, derived or an input), rather than
    `<kind>_<id>`, which changes with how many expressions a process built before."""
    return isinstance(expr, (TokensType, IndicesType, LengthType)) or \
        bool(expr._annotations.get("name") or expr._annotations.get("derived_name"))


def _derived(expr: RASPExpr, formula: str) -> RASPExpr:
    """`expr`, fresh from its constructor, labelled after `formula` where that reads well
    (never after an operand labelled by its id: the label must not vary between runs)."""
    name = derived_label(formula) if all(map(readable_label, expr.children)) else None
    if name is not None:
        object.__setattr__(expr, "_annotations", MappingProxyType({"derived_name": name}))
    return expr


def _check_callable(value, owner: str):
    if not callable(value):
        raise TypeError(f"{owner}: the function must be callable, got {value!r}")


# ----------------------------------------------------------------------------- SOps


class SOp(RASPExpr):
    """A sequence operation: maps an input sequence to a sequence of equal length."""

    default_name = "sop"

    # Arithmetic and comparisons build Maps (with a constant) or SequenceMaps
    # (with another SOp). Hashing stays by identity; use `is` to compare SOps.
    def _binary(self, other, op, symbol):
        if isinstance(other, SOp):
            return _derived(SequenceMap(op, self, other), f"{self.label} {symbol} {other.label}")
        if isinstance(other, RASPExpr):
            raise TypeError(f"cannot apply {symbol} to an SOp and a {type(other).__name__}")
        return _derived(Map(lambda x: op(x, other), self), f"{self.label} {symbol} {other!r}")

    def _reflected(self, other, op, symbol):
        if isinstance(other, RASPExpr):
            raise TypeError(f"cannot apply {symbol} to a {type(other).__name__} and an SOp")
        return _derived(Map(lambda x: op(other, x), self), f"{other!r} {symbol} {self.label}")

    def __add__(self, o): return self._binary(o, lambda x, y: x + y, "+")
    def __radd__(self, o): return self._reflected(o, lambda x, y: x + y, "+")
    def __sub__(self, o): return self._binary(o, lambda x, y: x - y, "-")
    def __rsub__(self, o): return self._reflected(o, lambda x, y: x - y, "-")
    def __mul__(self, o): return self._binary(o, lambda x, y: x * y, "*")
    def __rmul__(self, o): return self._reflected(o, lambda x, y: x * y, "*")
    def __truediv__(self, o): return self._binary(o, lambda x, y: x / y, "/")
    def __rtruediv__(self, o): return self._reflected(o, lambda x, y: x / y, "/")
    def __floordiv__(self, o): return self._binary(o, lambda x, y: x // y, "//")
    def __rfloordiv__(self, o): return self._reflected(o, lambda x, y: x // y, "//")
    def __mod__(self, o): return self._binary(o, lambda x, y: x % y, "%")
    def __rmod__(self, o): return self._reflected(o, lambda x, y: x % y, "%")
    def __pow__(self, o): return self._binary(o, lambda x, y: x ** y, "**")
    def __rpow__(self, o): return self._reflected(o, lambda x, y: x ** y, "**")
    def __and__(self, o): return self._binary(o, lambda x, y: x and y, "&")
    def __rand__(self, o): return self._reflected(o, lambda x, y: x and y, "&")
    def __or__(self, o): return self._binary(o, lambda x, y: x or y, "|")
    def __ror__(self, o): return self._reflected(o, lambda x, y: x or y, "|")
    def __lt__(self, o): return self._binary(o, lambda x, y: x < y, "<")
    def __le__(self, o): return self._binary(o, lambda x, y: x <= y, "<=")
    def __gt__(self, o): return self._binary(o, lambda x, y: x > y, ">")
    def __ge__(self, o): return self._binary(o, lambda x, y: x >= y, ">=")
    def __eq__(self, o): return self._binary(o, lambda x, y: x == y, "==")  # type: ignore[override]
    def __ne__(self, o): return self._binary(o, lambda x, y: x != y, "!=")  # type: ignore[override]
    def __neg__(self): return _derived(Map(lambda x: -x, self), f"neg {self.label}")
    def __invert__(self): return _derived(Map(lambda x: not x, self), f"not {self.label}")

    __hash__ = RASPExpr.__hash__

    @property
    def annotations(self) -> Mapping[str, Any]:
        """Annotations, with the default encoding (categorical) filled in."""
        return Annotations(self, {"encoding": Encoding.CATEGORICAL, **self._annotations})

    def __bool__(self):
        raise TypeError("an SOp has no truth value; comparisons on SOps build new SOps "
                        "(use `is` to test identity)")


class TokensType(SOp):
    """The input tokens."""

    @property
    def label(self):
        return self._annotations.get("name") or "tokens"


class IndicesType(SOp):
    """The position of each token, counting from 0."""

    @property
    def label(self):
        return self._annotations.get("name") or "indices"


class LengthType(SOp):
    """The length of the input, at every position."""

    @property
    def label(self):
        return self._annotations.get("name") or "length"


class Map(SOp):
    """Applies `f` to each element of `inner`. None stays None."""

    default_name = "map"

    def __init__(self, f: Callable[[Any], Any], inner: SOp, simplify: bool = False):
        super().__init__()
        _check_callable(f, "Map")
        _check_type(inner, SOp, "the input", "Map")
        if simplify and isinstance(inner, Map) and not set(inner._annotations) - {"derived_name"}:
            g, inner_f = f, inner.f

            def f(x):  # compose into one Map; None from the inner function stays None
                y = inner_f(x)
                return None if y is None else g(y)
            inner = inner.inner
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "inner", inner)

    @property
    def children(self):
        return (self.inner,)


class SequenceMap(SOp):
    """Applies `f` to the pair of elements of `fst` and `snd` at each position."""

    default_name = "sequence_map"

    def __init__(self, f: Callable[[Any, Any], Any], fst: SOp, snd: SOp):
        super().__init__()
        _check_callable(f, type(self).__name__)
        _check_type(fst, SOp, "the first input", type(self).__name__)
        _check_type(snd, SOp, "the second input", type(self).__name__)
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "fst", fst)
        object.__setattr__(self, "snd", snd)

    @property
    def children(self):
        return (self.fst, self.snd)


class LinearSequenceMap(SequenceMap):
    """`fst_fac * fst + snd_fac * snd`, elementwise."""

    default_name = "linear_sequence_map"

    def __init__(self, fst: SOp, snd: SOp, fst_fac: float, snd_fac: float):
        for fac in (fst_fac, snd_fac):
            _check_type(fac, (int, float), "a coefficient", "LinearSequenceMap")
        super().__init__(lambda x, y: fst_fac * x + snd_fac * y, fst, snd)
        object.__setattr__(self, "fst_fac", fst_fac)
        object.__setattr__(self, "snd_fac", snd_fac)


class Full(SOp):
    """The constant `fill` at every position."""

    default_name = "full"

    def __init__(self, fill: Any):
        super().__init__()
        object.__setattr__(self, "fill", fill)


class ConstantSOp(SOp):
    """A fixed sequence of values; its length must match the input's if `check_length`."""

    default_name = "constant_sop"

    def __init__(self, value: Sequence[Any], check_length: bool = True):
        super().__init__()
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise TypeError(f"ConstantSOp: value must be a list or tuple, got {value!r}")
        object.__setattr__(self, "value", tuple(value))
        object.__setattr__(self, "check_length", check_length)


class SelectorWidth(SOp):
    """The number of keys each query selects."""

    default_name = "selector_width"

    def __init__(self, selector: Selector):
        super().__init__()
        _check_type(selector, Selector, "the selector", "SelectorWidth")
        object.__setattr__(self, "selector", selector)

    @property
    def children(self):
        return (self.selector,)


class Aggregate(SOp):
    """Each query's value of `sop` gathered from the keys `selector` picks.

    Numerical: the mean of the selected values. Categorical: the selected value,
    which must agree across all selected keys. Nothing selected: `default`.
    """

    default_name = "aggregate"

    def __init__(self, selector: Selector, sop: SOp, default: Any = None):
        super().__init__()
        _check_type(selector, Selector, "the selector", "Aggregate")
        _check_type(sop, SOp, "the aggregated value", "Aggregate")
        object.__setattr__(self, "selector", selector)
        object.__setattr__(self, "sop", sop)
        object.__setattr__(self, "default", default)

    @property
    def children(self):
        return (self.selector, self.sop)


# ------------------------------------------------------------------------ selectors


class Selector(RASPExpr):
    """A boolean matrix over (query, key) positions."""

    default_name = "selector"

    def __and__(self, other): return SelectorAnd(self, other)
    def __or__(self, other): return SelectorOr(self, other)
    def __invert__(self): return SelectorNot(self)


class Select(Selector):
    """Query position q selects key position k when `predicate(keys[k], queries[q])`.

    A None key or query is never selected.
    """

    default_name = "select"

    def __init__(self, keys: SOp, queries: SOp, predicate: Comparison | Callable):
        super().__init__()
        _check_type(keys, SOp, "keys", "Select")
        _check_type(queries, SOp, "queries", "Select")
        _check_callable(predicate, "Select")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "queries", queries)
        object.__setattr__(self, "predicate", predicate)

    @property
    def children(self):
        return (self.keys, self.queries)


class ConstantSelector(Selector):
    """A fixed selection matrix, indexed [query][key]."""

    default_name = "constant_selector"

    def __init__(self, value: Sequence[Sequence[bool]], check_length: bool = True):
        super().__init__()
        object.__setattr__(self, "value", tuple(tuple(bool(v) for v in row) for row in value))
        object.__setattr__(self, "check_length", check_length)


class SelectorAnd(Selector):
    """Selected where both selectors select."""

    default_name = "selector_and"

    def __init__(self, fst: Selector, snd: Selector):
        super().__init__()
        _check_type(fst, Selector, "the first selector", type(self).__name__)
        _check_type(snd, Selector, "the second selector", type(self).__name__)
        object.__setattr__(self, "fst", fst)
        object.__setattr__(self, "snd", snd)

    @property
    def children(self):
        return (self.fst, self.snd)


class SelectorOr(SelectorAnd):
    """Selected where either selector selects."""

    default_name = "selector_or"


class SelectorNot(Selector):
    """Selected where the inner selector does not select."""

    default_name = "selector_not"

    def __init__(self, inner: Selector):
        super().__init__()
        _check_type(inner, Selector, "the selector", "SelectorNot")
        object.__setattr__(self, "inner", inner)

    @property
    def children(self):
        return (self.inner,)


# ---------------------------------------------------------------------- annotations


def annotate(expr: RASPExpr, **annotations) -> RASPExpr:
    """A copy of `expr` with extra annotations (Tracr's `rasp.annotate`)."""
    _check_type(expr, RASPExpr, "the expression", "annotate")
    return expr.annotated(**annotations)


def numerical(sop: SOp) -> SOp:
    """A copy of `sop` encoded as one residual direction holding its value."""
    _check_type(sop, SOp, "the argument", "numerical")
    return sop.annotated(encoding=Encoding.NUMERICAL)


def categorical(sop: SOp) -> SOp:
    """A copy of `sop` encoded one-hot, one residual direction per value."""
    _check_type(sop, SOp, "the argument", "categorical")
    return sop.annotated(encoding=Encoding.CATEGORICAL)


def get_encoding(sop: SOp) -> Encoding:
    """The SOp's encoding; categorical unless annotated otherwise."""
    return sop._annotations.get("encoding", Encoding.CATEGORICAL)


def is_numerical(sop: SOp) -> bool:
    """Whether the SOp is annotated numerical (`get_encoding`, read directly: the compiler
    asks this of every SOp many times)."""
    return sop._annotations.get("encoding") is Encoding.NUMERICAL


def is_categorical(sop: SOp) -> bool:
    return sop._annotations.get("encoding", Encoding.CATEGORICAL) is Encoding.CATEGORICAL


tokens = TokensType()
indices = IndicesType()
length = LengthType()
