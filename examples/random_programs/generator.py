"""Random well-typed RASP programs: the generator behind the fuzzer and the model zoo.

`generate_case(chooser)` draws one program from any `Chooser`: a seeded
`random.Random` (benchmarks/fuzz.py, the zoo: program i of seed S is
`generate_case(random.Random(f"{S}:{i}"))`), or hypothesis draws (the strategy
`programs()` in tests/fuzz_programs.py, so failures shrink). It gives a
`FuzzCase` that unpacks as `(program, vocab, max_seq_len, causal)`.

The generator writes each program as Python source (one line per expression,
lookup tables as literal dicts bound to lambda default arguments) and builds the
program by executing that source, so `case.source` is always an exact,
standalone repro.

While generating it tracks, for every SOp, a superset of the values it can take
(mirroring the compiler's value-set inference, but exact about means), so every
lookup table is total over its inputs. Values that are not integers (means,
halves) are looked up through `bisect` on midpoints between the known values,
so a float computed in a slightly different order still finds its entry.
The make_sort shapes (`_op_tie_sort`) carry labels the fuzz property reads.
"""

from __future__ import annotations

import bisect
import itertools
import random

from examples.random_programs.model import (
    MAX_DEPTH, PAIR_LIMIT, Chooser, FuzzCase, Line, Node, RandomChooser, Sel,
    _closure, build_case, distinct, dyadic, has_fraction, is_number, means, midpoints,
)
from examples.random_programs.selectors import SelectorChoices


class _Generator(SelectorChoices):
    """SOps; the selectors come from SelectorChoices."""

    def __init__(self, c: Chooser, max_ops: int, max_len: int, causal_share: float):
        self.c = c
        self.lines: list[Line] = []
        self.pool: list[Node] = []
        self.tracked: dict[str, tuple[tuple, bool]] = {}
        self.counter = itertools.count()
        self.vocab = self._vocab()
        self.n = self._max_seq_len(max_len)
        self.causal = c.chance(causal_share)
        self.max_ops = max_ops

    # ---------------------------------------------------------------- set-up
    def _vocab(self):
        size = self.c.integer(2, 5)
        if self.c.chance(0.5):
            return tuple(sorted(self.c.sample(range(-2, 8), size)))
        return tuple(sorted(self.c.sample("abcdexyz", size)))

    def _max_seq_len(self, max_len):
        small = min(4, max_len)
        band = self.c.weighted([("small", 6), ("medium", 3), ("large", 1)])
        if band == "small" or max_len <= 4:
            return self.c.integer(1, small)
        if band == "medium" or max_len <= 8:
            return self.c.integer(5, min(8, max_len))
        return self.c.integer(9, max_len)

    # ---------------------------------------------------------------- emitting
    def _var(self, prefix):
        return f"{prefix}{next(self.counter)}"

    def _emit(self, code, deps, *, values, none, numerical, depth, indices=False,
              prefix="v", name=None) -> Node:
        var = self._var(prefix)
        values = list(values)
        none = none or None in values
        values = [v for v in values if v is not None]
        if numerical:
            code = f"rasp.numerical({code})"
        if name is not None:
            code += f".named({name.format(var=var)!r})"
        elif self.c.chance(0.08):
            code += f".named({self._name()!r})"
        self.lines.append(Line(var, code, tuple(deps)))
        node = Node(var, distinct(values), none, numerical, depth, indices)
        self.tracked[var] = (node.values, none)
        self.pool.append(node)
        return node

    def _name(self):
        # Some names collide with each other, with built-in labels, or with the
        # compiler's derived names ("<label>.categorical", ".hidden", ...).
        return self.c.choice(["x", "y", "x", "tokens", "indices", "x.categorical", "x.hidden",
                              "x.width", "x.selected", "x.default", "x.keys", "x_2", "out"])

    # ---------------------------------------------------------------- picking
    def _pick(self, ok=lambda n: True, fallback=True) -> Node | None:
        """A pool SOp satisfying `ok`, most often the newest (to build chains)."""
        eligible = [n for n in self.pool if n.depth < MAX_DEPTH and ok(n)]
        if not eligible:
            if not fallback:
                return None
            eligible = [n for n in self.pool[:2] if ok(n)] or self.pool[:1]
        if self.c.chance(0.45):
            return eligible[-1]
        return self.c.choice(eligible)

    # ---------------------------------------------------------------- tables
    def _pool_values(self, numeric=False):
        kind = self.c.weighted([("int", 5), ("bool", 1), ("half", 1)] if numeric else
                               [("int", 5), ("str", 3), ("bool", 1), ("mixed", 1)])
        size = self.c.integer(1, 4)
        if kind == "int":
            return self.c.sample(range(-2, 7), size)
        if kind == "str":
            return self.c.sample("abcdef", size)
        if kind == "bool":
            return [False, True]
        if kind == "half":
            return self.c.sample([0, 0.5, 1, 1.5, -0.5], size)
        return self.c.sample([0, 1, 2, "a", "b"], size)

    def _key(self, node: Node, name: str):
        """(code for the lookup key of `name`, key function, extra lambda arguments)."""
        if not has_fraction(node.values):
            return name, lambda v: v, ""
        cuts = midpoints(sorted(float(v) for v in node.values if is_number(v)))
        if all(is_number(v) for v in node.values):
            return (f"bisect.bisect(c{name}, {name})", lambda v: bisect.bisect(cuts, v),
                    f", c{name}={cuts!r}")
        # numbers and other values: only the numbers go through bisect
        return (f"(bisect.bisect(c{name}, {name}) if isinstance({name}, (int, float)) "
                f"else {name})",
                lambda v: bisect.bisect(cuts, v) if is_number(v) else v, f", c{name}={cuts!r}")

    def _table(self, inputs, outputs, partial: bool) -> dict:
        table = {}
        for key in inputs:
            table[key] = None if partial and self.c.chance(0.3) else self.c.choice(outputs)
        return table

    def _map_code(self, inner: Node, outputs, partial: bool):
        """(code of a table-driven function of one argument, its output values)."""
        code, key, extra = self._key(inner, "x")
        table = self._table(distinct(key(v) for v in inner.values), outputs, partial)
        values = [table[key(v)] for v in inner.values]
        return f"lambda x, t={table!r}{extra}: t[{code}]", values

    def _threshold_code(self, inner: Node, outputs):
        """(code of a step function with a few thresholds, its output values)."""
        xs = sorted(set(float(v) for v in inner.values))
        gaps = list(range(len(xs) - 1))
        chosen = sorted(self.c.sample(gaps, self.c.integer(1, 3))) if gaps else []
        cuts = tuple((xs[g] + xs[g + 1]) / 2 for g in chosen)
        outs = tuple(self.c.choice(outputs) for _ in range(len(cuts) + 1))
        values = [outs[bisect.bisect(cuts, v)] for v in xs]
        return f"lambda x, c={cuts!r}, o={outs!r}: o[bisect.bisect(c, x)]", values

    # ---------------------------------------------------------------- SOps
    def generate(self) -> FuzzCase:
        self.pool.append(Node("tokens", distinct(self.vocab), False, False, 0))
        self.pool.append(Node("indices", tuple(range(self.n)), False, False, 0, indices=True))
        self.lines += [Line("tokens", "rasp.tokens", ()), Line("indices", "rasp.indices", ())]
        if not self.causal:
            self.pool.append(Node("length", tuple(range(1, self.n + 1)), False, False, 0))
            self.lines.append(Line("length", "rasp.length", ()))
        if all(is_number(v) for v in self.vocab) and self.c.chance(0.1):
            self._emit("rasp.tokens", [], values=self.vocab, none=False, numerical=True, depth=0)
        if self.c.chance(0.05):
            self._emit("rasp.indices", [], values=range(self.n), none=False, numerical=True,
                       depth=0)
        for node in self.pool:
            self.tracked.setdefault(node.var, (node.values, node.none))
        ops = [("map", 6), ("numerical_map", 3), ("sequence_map", 4), ("linear", 2),
               ("aggregate", 6), ("numerical_aggregate", 4), ("width", 3), ("mean_pair", 1),
               ("full", 1), ("constant_sop", 1), ("tie_sort", 1), ("mean_linear", 1)]
        start = len(self.pool)
        for _ in range(self.c.integer(1, self.max_ops)):
            getattr(self, "_op_" + self.c.weighted(ops))()
        if len(self.pool) == start:  # nothing built: at least one Map
            self._op_map()
        # The output: the SOp with the most sub-expressions, sometimes combined with
        # another one that it does not use.
        built = self.pool[start:]
        sizes = {n.var: len(_closure(self.lines, n.var)) for n in built}
        output = max(reversed(built), key=lambda n: sizes[n.var])
        unused = [n for n in built if n.var not in _closure(self.lines, output.var)
                  and sizes[n.var] > 2 and n.small and output.small
                  and max(1, len(n.values)) * max(1, len(output.values)) <= PAIR_LIMIT]
        if unused and self.c.chance(0.6):
            self.pool = [output, self.c.choice(unused)]
            output = self._op_sequence_map()
        return build_case(self.lines, output.var, self.vocab, self.n, self.causal,
                          self.tracked)

    def _op_map(self):
        inner = self._pick(lambda n: n.small)
        code, values = self._map_code(inner, self._pool_values(), partial=self.c.chance(0.25))
        return self._emit(f"rasp.Map({code}, {inner.var})", [inner.var], values=values,
                          none=inner.none or None in values, numerical=False,
                          depth=inner.depth + 1)

    def _op_numerical_map(self, inner: Node | None = None):
        """A numerical Map (never None); of a numerical SOp often a step function."""
        inner = inner or self._pick(lambda n: not n.none and n.small)
        if inner.none:
            return self._op_map()
        outputs = self._pool_values(numeric=True)
        if inner.numerical and all(is_number(v) for v in inner.values) and self.c.chance(0.6):
            code, values = self._threshold_code(inner, outputs)
        elif all(is_number(v) for v in inner.values) and self.c.chance(0.15):
            code, values = "lambda x: x", inner.values   # categorical → numerical copy
        else:
            code, values = self._map_code(inner, outputs, partial=False)
        return self._emit(f"rasp.Map({code}, {inner.var})", [inner.var], values=values,
                          none=False, numerical=True, depth=inner.depth + 1)

    def _op_sequence_map(self):
        fst = self._pick(lambda n: n.small)
        snd = self._pick(lambda n: n.small and len(n.values) * max(1, len(fst.values))
                         <= PAIR_LIMIT)
        if fst.var == snd.var and self.c.chance(0.5):
            snd = self._pick(lambda n: n.small and n.var != fst.var)
        if max(1, len(fst.values)) * max(1, len(snd.values)) > PAIR_LIMIT:
            return self._op_map()
        numerical = not fst.none and not snd.none and self.c.chance(0.25)
        outputs = self._pool_values(numeric=numerical)
        partial = not numerical and self.c.chance(0.2)
        cx, kx, ex = self._key(fst, "x")
        cy, ky, ey = self._key(snd, "y")
        keys = distinct((kx(x), ky(y)) for x in fst.values for y in snd.values)
        table = self._table(keys, outputs, partial)
        values = [table[k] for k in keys]
        code = f"lambda x, y, t={table!r}{ex}{ey}: t[{cx}, {cy}]"
        return self._emit(f"rasp.SequenceMap({code}, {fst.var}, {snd.var})",
                          [fst.var, snd.var], values=values,
                          none=fst.none or snd.none or None in values, numerical=numerical,
                          depth=max(fst.depth, snd.depth) + 1)

    def _numeric(self, n: Node) -> bool:
        return not n.none and bool(n.values) and all(is_number(v) for v in n.values)

    def _op_linear(self):
        fst = self._pick(lambda n: self._numeric(n) and n.numerical)
        if not self._numeric(fst):
            fst = self._op_numerical_map()
        if not self._numeric(fst):
            return fst
        snd = self._pick(lambda n: self._numeric(n) and len(n.values) * len(fst.values) <= 400)
        if not self._numeric(snd) or len(snd.values) * len(fst.values) > 400:
            snd = fst
        a, b = self.c.choice([1, -1, 2, 0.5, 3]), self.c.choice([1, -1, 2, 0.5, -0.5, 0])
        if fst is snd:
            values = [a * x + b * x for x in fst.values]
        else:
            values = [a * x + b * y for x in fst.values for y in snd.values]
        numerical = self.c.chance(0.85)
        return self._emit(f"rasp.LinearSequenceMap({fst.var}, {snd.var}, {a!r}, {b!r})",
                          [fst.var, snd.var], values=values, none=False, numerical=numerical,
                          depth=max(fst.depth, snd.depth) + 1)

    def _op_full(self):
        value = self.c.choice(self._pool_values())
        numerical = is_number(value) and self.c.chance(0.4)
        return self._emit(f"rasp.Full({value!r})", [], values=[value], none=False,
                          numerical=numerical, depth=0)

    def _op_constant_sop(self):
        value = [self.c.choice(self._pool_values()) for _ in range(self.n)]
        if all(is_number(v) for v in value) and self.c.chance(0.2):
            # numerical needs check_length=True: only inputs of length max_seq_len are valid
            return self._emit(f"rasp.ConstantSOp({value!r})", [], values=value, none=False,
                              numerical=True, depth=0)
        return self._emit(f"rasp.ConstantSOp({value!r}, check_length=False)", [], values=value,
                          none=True, numerical=False, depth=0)

    def _op_width(self):
        sel = self._selector()
        return self._emit(f"rasp.SelectorWidth({sel.var})", [sel.var],
                          values=range(self.n + 1), none=False,
                          numerical=self.c.chance(0.3), depth=sel.depth + 1)

    def _op_tie_sort(self):
        """make_sort's shape over numeric tokens: keys broken by position, k + m·i/N, with
        offsets below every gap between tokens (provably total: no warning is due) or
        reaching one (two positions can share a key). Its label says which, for
        tests/fuzz_checks.py: tie_sort_total_*, or tie_sort_collides_at_N_* at length N."""
        numbers = sorted(v for v in self.vocab if is_number(v) and not isinstance(v, bool))
        if self.causal or len(numbers) < 2 or len(numbers) != len(self.vocab):
            return self._op_aggregate()  # ranks are only proven over the whole input
        gap, n = min(b - a for a, b in zip(numbers, numbers[1:])), self.n
        min_key = gap * self.c.choice([0.5, 1, 2, n])
        keys = {v + min_key * i / n for v in numbers for i in range(n)}
        label = ("tie_sort_total_{var}" if len(keys) == len(numbers) * n else
                 f"tie_sort_collides_at_{n}_{{var}}")
        key = self._emit(f"rasp.SequenceMap(lambda k, i, m={min_key!r}, n={n}: k + m * i / n, "
                         "tokens, indices)", ["tokens", "indices"], values=sorted(keys),
                         none=False, numerical=False, depth=1)
        rank = self._emit(f"rasp.SelectorWidth(rasp.Select({key.var}, {key.var}, rasp.LT))",
                          [key.var], values=range(n + 1), none=False, numerical=False,
                          depth=2)
        return self._emit(f"rasp.Aggregate(rasp.Select({rank.var}, indices, rasp.EQ), tokens)",
                          [rank.var, "indices", "tokens"], values=numbers, none=True,
                          numerical=False, depth=3, name=label)

    def _op_aggregate(self):
        """A categorical Aggregate, mostly one where every input is valid."""
        form = self.c.weighted([("index", 4), ("equal_key", 3), ("functional", 2),
                                ("constant", 2), ("anything", 1)])
        if form == "index":
            sel = self._index_selector()
            sop = self._pick(lambda n: n.small or n.numerical)
        elif form in ("equal_key", "functional"):
            sel, keys = self._key_selector(functional=form == "functional")
            sop = keys if self.c.chance(0.5) else self._op_map_of(keys)
        elif form == "constant":
            sel = self._selector()
            sop = self._pick(lambda n: len(n.values) <= 1, fallback=False)
            if sop is None or self.c.chance(0.3):
                sop = self._op_full()
        else:
            sel = self._selector()
            sop = self._pick(lambda n: n.small)
        default = None if self.c.chance(0.8) else self.c.choice(self._pool_values())
        values = list(sop.values) + ([] if default is None else [default])
        return self._emit(f"rasp.Aggregate({sel.var}, {sop.var}, default={default!r})",
                          [sel.var, sop.var], values=values,
                          none=sop.none or default is None, numerical=False,
                          depth=max(sel.depth, sop.depth) + 1)

    def _op_map_of(self, inner: Node) -> Node:
        code, values = self._map_code(inner, self._pool_values(), partial=self.c.chance(0.2))
        return self._emit(f"rasp.Map({code}, {inner.var})", [inner.var], values=values,
                          none=inner.none or None in values, numerical=False,
                          depth=inner.depth + 1)

    def _averageable(self, n: Node) -> bool:
        return (self._numeric(n) and len(n.values) <= 4 and all(dyadic(v) for v in n.values)
                and means(n.values, self.n) is not None)

    def _op_numerical_aggregate(self):
        """The mean of a numeric SOp with few values (default 0, sometimes another number)."""
        sop = None if self.c.chance(0.5) else self._pick(self._averageable, fallback=False)
        if sop is None:  # a fresh 0/1 (or small-valued) indicator
            inner = self._pick(lambda n: not n.none and n.small)
            outputs = self.c.weighted([([0, 1], 6), ([0, 1, 2], 1), ([0, 0.5, 1], 1),
                                       ([False, True], 1), ([1], 1)])
            sop = self._op_numerical_map_to(inner, outputs)
        if self.c.chance(0.25):
            sel = self._index_selector()
        else:
            sel = self._selector()
        default = self.c.weighted([(0, 8), (1, 1), (0.5, 1)])
        return self._numerical_mean(sel, sop, default)

    def _numerical_mean(self, sel: Sel, sop: Node, default) -> Node:
        if sel.at_most_one:
            values = list(sop.values) + [default]
        else:
            values = [float(m) for m in means(sop.values, self.n)] + [default]
        return self._emit(f"rasp.Aggregate({sel.var}, {sop.var}, default={default!r})",
                          [sel.var, sop.var], values=values, none=False, numerical=True,
                          depth=max(sel.depth, sop.depth) + 1)

    def _op_numerical_map_to(self, inner: Node, outputs) -> Node:
        if inner.none:
            inner = self.pool[0]
        if inner.numerical and has_fraction(inner.values):
            code, values = self._threshold_code(inner, outputs)
        else:
            code, values = self._map_code(inner, outputs, partial=False)
        return self._emit(f"rasp.Map({code}, {inner.var})", [inner.var], values=values,
                          none=False, numerical=True, depth=inner.depth + 1)

    def _op_mean_pair(self):
        """Two means over one selector, combined linearly (the compiler fuses them)."""
        sel = self._selector()
        parts = []
        for _ in range(2):
            inner = self._pick(lambda n: not n.none and n.small)
            parts.append(self._op_numerical_map_to(inner, [0, 1]))
        d1, d2 = 0, self.c.choice([0, 0, 1])
        m1 = self._numerical_mean(sel, parts[0], d1)
        m2 = self._numerical_mean(sel, parts[1], d2)
        a, b = self.c.choice([1, 2, 0.5]), self.c.choice([1, -1, 0.5])
        values = [a * x + b * y for x in m1.values for y in m2.values]
        node = self._emit(f"rasp.LinearSequenceMap({m1.var}, {m2.var}, {a!r}, {b!r})",
                          [m1.var, m2.var], values=values, none=False, numerical=True,
                          depth=max(m1.depth, m2.depth) + 1)
        if self.c.chance(0.5):  # a threshold on the combination
            self._op_numerical_map_to(node, [0, 1, 2])
        return node

    def _op_mean_linear(self):
        """A mean (values k/n) combined linearly with an integer map up to 32 (issue 30)."""
        mean = self._op_numerical_aggregate()
        inner = self._pick(lambda n: not n.none and n.small and not n.numerical)
        integers = self._op_numerical_map_to(inner, self.c.choice([[0, 8, 16, 24, 32],
                                                                   [1, 5, 15], [0, 3, 30]]))
        a, b = self.c.choice([1, -1, 2, -3]), self.c.choice([1, -1, 2, 3])
        values = [a * x + b * y for x in mean.values for y in integers.values]
        return self._emit(f"rasp.LinearSequenceMap({mean.var}, {integers.var}, {a!r}, {b!r})",
                          [mean.var, integers.var], values=values, none=False,
                          numerical=True, depth=max(mean.depth, integers.depth) + 1)


def generate_case(chooser: Chooser | random.Random, max_ops: int = 9, max_len: int = 12,
                  causal_share: float = 0.25) -> FuzzCase:
    """One random program, its every choice made by `chooser`."""
    if isinstance(chooser, random.Random):
        chooser = RandomChooser(chooser)
    return _Generator(chooser, max_ops, max_len, causal_share).generate()

