"""The random-program generator's selectors: Selects of every comparison and callables, composites.

A mixin of the generator in examples/random_programs/generator.py: it uses the generator's
chooser `c`, `lines`, `n`, `_pick`, `_key`, `_map_code`, `_emit`, `_name` and `_var`.
"""

from __future__ import annotations

from examples.random_programs.model import COMPARISONS, ORDERED, Line, Node, Sel, comparable, distinct


class SelectorChoices:
    def _emit_selector(self, code, deps, depth, at_most_one=False) -> Sel:
        var = self._var("s")
        if self.c.chance(0.05):
            code += f".named({self._name()!r})"
        self.lines.append(Line(var, code, tuple(deps)))
        return Sel(var, depth, at_most_one)

    def _selector(self, level: int = 0) -> Sel:
        kind = "select" if level >= 2 else self.c.weighted(
            [("select", 16), ("and", 3), ("or", 3), ("not", 3), ("constant", 1)]
            if level == 0 else [("select", 16), ("and", 2), ("or", 2), ("not", 2),
                                ("constant", 1)])
        if kind == "select":
            # Inside a composite, often SOps that are never None (a composite reads one
            # that may be None through a never-None copy: both forms get tested).
            return self._select(prefer_total=level > 0 and self.c.chance(0.5))
        if kind == "not":
            inner = self._selector(level + 1)
            return self._emit_selector(f"~{inner.var}", [inner.var], inner.depth)
        if kind == "constant":
            return self._constant_selector()
        a, b = self._selector(level + 1), self._selector(level + 1)
        op = "&" if kind == "and" else "|"
        return self._emit_selector(f"({a.var} {op} {b.var})", [a.var, b.var],
                                   max(a.depth, b.depth))

    def _constant_selector(self) -> Sel:
        """n × n (only inputs of length n are valid), or ragged and checked at no length."""
        if self.c.chance(0.5):
            matrix = [[self.c.chance(0.5) for _ in range(self.n)] for _ in range(self.n)]
            return self._emit_selector(f"rasp.ConstantSelector({matrix!r})", [], 0)
        matrix = [[self.c.chance(0.5) for _ in range(self.c.integer(0, self.n))]
                  for _ in range(self.c.integer(1, self.n))]
        return self._emit_selector(f"rasp.ConstantSelector({matrix!r}, check_length=False)",
                                   [], 0)

    def _select(self, prefer_total: bool = False) -> Sel:
        keys = self._pick(lambda n: n.small and not (prefer_total and n.none))
        queries = self._pick(lambda n: n.small and not (prefer_total and n.none))
        predicate = self.c.weighted([(name, 2) for name in COMPARISONS] + [("callable", 4)])
        if predicate in ORDERED and not comparable(keys, queries):
            predicate = "EQ"
        if predicate == "callable":
            if max(1, len(keys.values)) * max(1, len(queries.values)) > 100:
                predicate = "NEQ"
            else:
                ck, kk, ek = self._key(keys, "k")
                cq, kq, eq = self._key(queries, "q")
                density = self.c.choice([0.2, 0.5, 0.8])
                pairs = sorted({(kk(k), kq(q)) for k in keys.values for q in queries.values
                                if self.c.chance(density)}, key=repr)
                code = f"lambda k, q, s=frozenset({pairs!r}){ek}{eq}: ({ck}, {cq}) in s"
                return self._emit_selector(f"rasp.Select({keys.var}, {queries.var}, {code})",
                                           [keys.var, queries.var],
                                           max(keys.depth, queries.depth))
        return self._emit_selector(f"rasp.Select({keys.var}, {queries.var}, rasp.{predicate})",
                                   [keys.var, queries.var], max(keys.depth, queries.depth),
                                   at_most_one=keys.indices and predicate == "EQ")

    def _index_selector(self) -> Sel:
        """Select(indices, q, EQ), q an index-valued SOp: at most one key per query."""
        existing = self._pick(lambda n: bool(n.values)
                              and all(isinstance(v, int) for v in n.values), fallback=False)
        if existing is None or self.c.chance(0.6):
            inner = self._pick(lambda n: n.small)
            targets = list(range(self.n)) + [-1, self.n, None]
            code, values = self._map_code(inner, targets, partial=False)
            query = self._emit(f"rasp.Map({code}, {inner.var})", [inner.var], values=values,
                               none=inner.none or None in values,
                               numerical=self.c.chance(0.15) and not inner.none
                               and None not in values,
                               depth=inner.depth + 1)
        else:
            query = existing
        sel = self._emit_selector(f"rasp.Select(indices, {query.var}, rasp.EQ)",
                                  ["indices", query.var], query.depth, at_most_one=True)
        if self.c.chance(0.2):  # narrowing keeps it at most one
            other = self._selector(1)
            sel = self._emit_selector(f"({sel.var} & {other.var})", [sel.var, other.var],
                                      max(sel.depth, other.depth))
        return sel

    def _key_selector(self, functional: bool) -> tuple[Sel, Node]:
        """A selector under which every selected key has the same value of `keys`."""
        keys = self._pick(lambda n: n.small and bool(n.values))
        queries = self._pick(lambda n: n.small)
        if functional and len(keys.values) * max(1, len(queries.values)) <= 100:
            ck, kk, ek = self._key(keys, "k")
            cq, kq, eq = self._key(queries, "q")
            key_choices = distinct(kk(k) for k in keys.values)
            pairs = sorted({(self.c.choice(key_choices), kq(q)) for q in queries.values
                            if self.c.chance(0.8)}, key=repr)
            code = f"lambda k, q, s=frozenset({pairs!r}){ek}{eq}: ({ck}, {cq}) in s"
            sel = self._emit_selector(f"rasp.Select({keys.var}, {queries.var}, {code})",
                                      [keys.var, queries.var], max(keys.depth, queries.depth))
        else:
            sel = self._emit_selector(f"rasp.Select({keys.var}, {queries.var}, rasp.EQ)",
                                      [keys.var, queries.var], max(keys.depth, queries.depth),
                                      at_most_one=keys.indices)
        if self.c.chance(0.25):
            other = self._selector(1)
            sel = self._emit_selector(f"({sel.var} & {other.var})", [sel.var, other.var],
                                      max(sel.depth, other.depth))
        return sel, keys
