"""The meaning of RASP's selectors, aggregates, indexing and `in`, as RASP expressions.

Extends `rasp.syntax_ops.Elementwise` with select (constants broadcast; both
constant gives an all-or-nothing selector), aggregate (a numerical mean of
numbers, default 0, else categorical), our numerical/categorical annotations, and
indexing constant lists and dicts by sequences (a missing entry raises, so the
input is outside the program's domain).
"""

from __future__ import annotations

from rasp import expr as rx
from rasp.syntax_ops import (COMPARE, COMPARISONS, PRIMITIVES, Elementwise, Fault, escape,
                             common_type, frozen, literal, type_name)


class Operations(Elementwise):
    """Every RASP operation on parse-time values."""

    def contains(self, item, container):
        """`x in [..]` elementwise, `atom in [..]`, and `atom in s-op` (anywhere in it)."""
        if isinstance(container, rx.SOp) and not isinstance(item, (rx.RASPExpr, list, dict)):
            present = self.indicator(self.binary("==", container, item))
            share = self.aggregate(self.everything(), present)
            return self.binary(">", share, 0)
        if not isinstance(container, (list, tuple)):
            raise Fault(f"`x in X` needs X to be a list, got {type_name(container)}", "a list")
        values = frozen(container)
        if isinstance(item, rx.Selector):
            raise Fault("cannot test whether a selector is in a list", "an s-op or an atom")
        return self.elementwise(lambda v: v in values, (item,), "bool",
                                "{0} in " + escape(literal(list(values)), 2))

    # -------------------------------------------------------------- selectors

    @staticmethod
    def everything() -> rx.Select:
        """RASP's `select(1, 1, ==)`: every query selects every key."""
        return rx.Select(rx.tokens, rx.tokens, rx.Comparison.TRUE)

    def select(self, keys, queries, op):
        """`select(keys, queries, op)`: query q selects key k when `keys[k] op queries[q]`."""
        for side, value in (("keys", keys), ("queries", queries)):
            if not isinstance(value, rx.SOp) and not _is_atom(value):
                raise Fault(f"select's {side} must be an s-op or an atom, got "
                            f"{type_name(value)}", "an s-op or an atom")
        if isinstance(op, str):
            self._comparison_type(op, keys, queries)
            if not isinstance(keys, rx.SOp) and not isinstance(queries, rx.SOp):
                always = COMPARE[op](keys, queries)
                return rx.Select(rx.tokens, rx.tokens,
                                 rx.Comparison.TRUE if always else rx.Comparison.FALSE)
            predicate = COMPARISONS[op]
        else:
            predicate = self._pair_table(op)
        return rx.Select(self.as_sop(keys), self.as_sop(queries), predicate)

    @staticmethod
    def _pair_table(pairs):
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2
                and all(_is_atom(v) or isinstance(v, list) for v in p) for p in pairs):
            raise Fault("select's third argument must be a comparison or a list of "
                        "[key, query] pairs", "one of == != < > <= >=")
        table = frozenset(frozen(p) for p in pairs)

        def selects(key, query):
            return (key, query) in table

        selects.rasp_pairs = sorted(table, key=repr)  # to_source prints the table back
        return selects

    def as_sop(self, value) -> rx.SOp:
        """An atom broadcast to a constant s-op; an s-op as it is."""
        if isinstance(value, rx.SOp):
            return value
        # One s-op per constant: two `select(is_first, True, ==)` then read the same
        # SOps, which is what lets the compiler see they group keys alike.
        constants = self.__dict__.setdefault("_broadcast_constants", {})
        key = (type(value), frozen(value))
        if key not in constants:
            constants[key] = self.typed(rx.Full(frozen(value)), self.type_of(value))
        return constants[key]

    # -------------------------------------------------------------- aggregate

    def aggregate(self, selector, values, default=0):
        """RASP's aggregate: the mean of numbers (default 0), else the one selected value."""
        if not isinstance(selector, rx.Selector):
            raise Fault(f"aggregate's first argument must be a selector, got "
                        f"{type_name(selector)}", "a selector")
        if isinstance(values, (rx.Selector, list, dict, tuple)):
            raise Fault(f"aggregate's values must be an s-op, got {type_name(values)}",
                        "an s-op or an atom")
        if isinstance(default, (rx.RASPExpr, list, dict, tuple)):
            raise Fault(f"aggregate's default must be an atom, got {type_name(default)}",
                        "an atom")
        values = self.as_sop(values)
        declared = values._annotations.get("encoding")  # noqa: SLF001  explicit numerical()
        if rx.is_numerical(values) or (declared is None and
                                       self.type_of(values) in ("int", "float")):
            if isinstance(default, str):
                raise Fault(f"the default {default!r} of a mean of numbers must be a number",
                            "a number")
            mean = rx.Aggregate(selector, self.numerical(values), default)
            return self.typed(rx.numerical(mean), "float").annotated(
                rasp_aggregate_args=(selector, values, default))
        return self.typed(rx.Aggregate(selector, values, default), self.type_of(values))

    def numerical(self, sop):
        """`sop` encoded as one number (our annotation, not RASP's)."""
        if not isinstance(sop, rx.SOp):
            raise Fault(f"numerical takes an s-op, got {type_name(sop)}", "an s-op")
        if rx.is_numerical(sop):
            return sop
        args = sop.annotations.get("rasp_aggregate_args")
        if args:
            return self.aggregate(*args)
        if isinstance(sop, (rx.Map, rx.SequenceMap, rx.Full, rx.SelectorWidth)):
            return rx.numerical(sop)
        return rx.numerical(self.typed(rx.Map(lambda v: v, sop), self.type_of(sop), "{0}",
                                       (sop,)))

    def categorical(self, sop):
        """`sop` encoded one-hot (our annotation); forces a categorical aggregate."""
        if not isinstance(sop, rx.SOp):
            raise Fault(f"categorical takes an s-op, got {type_name(sop)}", "an s-op")
        args = sop.annotations.get("rasp_aggregate_args")
        if args:
            selector, values, default = args
            return self.typed(rx.Aggregate(selector, self.categorical(values), default),
                              self.type_of(values))
        if isinstance(sop, PRIMITIVES) or sop._annotations.get("encoding"):  # noqa: SLF001
            return sop
        return rx.categorical(sop)

    # --------------------------------------------------------------- indexing

    def index(self, container, keys: list):
        """`list[i]`, `dict[k]`, `string[i]` (i, k atoms or s-ops), `s-op[i]`, `dict[x, y]`."""
        if isinstance(container, rx.SOp):
            if len(keys) != 1 or not isinstance(keys[0], int) or isinstance(keys[0], bool):
                raise Fault("an s-op is indexed by one int", "an int")
            return self._load_position(container, keys[0])
        if len(keys) == 2 and isinstance(container, dict):
            return self._pair_lookup(container, keys)
        if len(keys) != 1:
            raise Fault(f"index by one value, got {len(keys)}", "one index")
        key = keys[0]
        if isinstance(container, (list, str)):
            table = frozen(list(container))
            kind = common_type([self.type_of(v) for v in table]) if table else None
            return self.elementwise(lambda i: _list_item(table, i), (key,), kind,
                                    escape(literal(list(table)), 2) + "[{0}]")
        if isinstance(container, dict):
            table = {k: frozen(v) for k, v in container.items()}
            kind = common_type([self.type_of(v) for v in table.values()]) if table else None
            return self.elementwise(lambda k: _dict_item(table, k), (key,), kind,
                                    escape(literal(table), 2) + "[{0}]")
        raise Fault(f"cannot index {type_name(container)}", "a list, dict, string or s-op")

    def _pair_lookup(self, container, keys):
        table = {}
        for key, value in container.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise Fault("a dict indexed by two values needs [x, y] keys", "[x, y] keys")
            table[key] = frozen(value)
        kind = common_type([self.type_of(v) for v in table.values()]) if table else None
        shown = "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in table.items()) + "}"
        return self.elementwise(lambda x, y: _dict_item(table, (x, y)), keys, kind,
                                escape(shown, 2) + "[{0}, {1}]")

    def _load_position(self, sop, position: int):
        where = position if position >= 0 else self.binary("+", rx.length, position)
        return self.aggregate(self.select(rx.indices, where, "=="), sop)


def _is_atom(value) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _list_item(table, i):
    if isinstance(i, bool) or not isinstance(i, int) or not -len(table) <= i < len(table):
        raise IndexError(f"index {i!r} out of range for a list of length {len(table)}")
    return table[i]


def _dict_item(table, key):
    if key not in table:
        raise KeyError(f"{key!r} is not a key of the dict")
    return table[key]
