"""The MLP blocks of compiler.blocks' builder: Maps and SequenceMaps.

`MLPBlocks` is mixed into the builder (whose graph, value sets, spaces and budgets it
uses). A numerical input is discretised (craft.numerical) or read linearly; a
categorical one is looked up (craft.categorical), cleanly where its one-hot is noisy
(craft.clean_lookup). Each construction is accepted only where its float32 error bound,
in any summation order, fits what its readers tolerate (compiler.budgets).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import numbers

import numpy as np

from compiler.attention_blocks import width_with_side
from compiler.budgets import class_indices, one_hots
from compiler.input_errors import (LOOKUP_NOISE, MAX_ONE_HOT_ERROR, lookup_error,
                                   merge_indistinguishable)
from compiler.node_block import NodeBlock
from craft import categorical, clean_lookup, numerical
from craft.bases import ONE, VectorSpace, zeros_matrix
from craft.blocks import MLP, Series
from rasp import expr as rx
from rasp.errors import CompileError

# Discretising MLPs need float32 rounding of each step far below its ½ margin.
MAX_STEP_ROUNDING = 0.05
# A numerical Map within this (relative) of a·x + b on its input values is computed
# as a·x + b: far below any budget, and what float arithmetic in f itself rounds.
AFFINE_FIT = 1e-12
REDUCE_VALUES_HINT = ("reduce the number of distinct values of its inputs, e.g. map them "
                      "to the few classes the function tells apart first")
# A gated discretiser tolerates gate error × gate strength up to this (margin is ½).
MAX_GATE_LEAK = 0.1


class MLPBlocks:
    """Builder methods for the SOps that MLPs compute."""

    def _map_result(self, node):
        """value ↦ the Map's output components ({} where its function raises), cached: each
        value is asked for by the exactness checks, the block, and the readers' noise."""
        if node not in self.map_results:
            expr, out = self.graph.expr(node), self._output_of(node)
            written = self._as_written(expr.inner)

            @functools.cache
            def result(value):
                try:
                    return out(expr.f(written(value)))
                except Exception:  # noqa: BLE001  the evaluator rejects such inputs
                    return {}

            self.map_results[node] = result
        return self.map_results[node]

    def _as_written(self, sop):
        """value ↦ the value as the evaluator gives it: the discretisers see a numerical
        SOp's values as floats, and f(0.0) may differ from f(0) (T[w], str(w))."""
        if not rx.is_numerical(sop):
            return lambda value: value
        known = {float(v): v for v in self.values[sop.unique_id].values
                 if isinstance(v, numbers.Real)}  # numpy scalars and Fractions too
        return lambda value: known.get(value, value) if isinstance(value, float) else value

    def _map(self, node, expr) -> NodeBlock:
        inner = expr.inner.unique_id
        result = self._map_result(node)
        info = self._info(node, "map")
        hidden = f"{self._label(node)}.hidden"
        if rx.is_numerical(expr.inner):
            xs = merge_indistinguishable(expr, self.values[inner].require(expr, "a numerical Map"),
                                          result)
            self._check_rounding(expr, xs)
            self.budgets.tolerate(node, inner, numerical.input_tolerance(xs))
            x_dir = self.spaces[inner].basis[0]
            if self._discretiser_is_exact(node, xs, [result]):
                block = numerical.discretising_mlp(x_dir, xs, self.spaces[node], result, hidden,
                                                   info)
            elif rx.is_numerical(expr) and (affine := self._affine_fit(node, xs)) is not None:
                block = numerical.linear_mlp([(x_dir, affine[0]), (ONE, affine[1])],
                                             self.spaces[node].basis[0], hidden, info,
                                             frozenset({ONE}))
                one = (None, affine[1], [1.0], *clean_lookup.normed_read(self._norm, clamp=False))
                self.budgets.linear(node, expr, [(inner, affine[0], xs), one],
                                    block.hidden_space.dim)
            else:
                block = self._classes_then_lookup(node, expr.inner, xs, VectorSpace(()),
                                                  lambda x, c: result(x), info)
        elif rx.is_numerical(expr):
            block = self._numerical_lookup(node, expr, result, hidden, info)
        else:
            self._check_one_hot(expr, self._noise(expr))
            block = self._lookup(expr.inner, node, lambda d: result(d.value), hidden, info)
        return NodeBlock(node, block, (inner,))

    def _numerical_lookup(self, node, expr, result, hidden, info) -> MLP:
        """A numerical Map of categorical c whose error, in float32 and any summation order,
        fits what the Map's readers tolerate for each value it writes, given the error of
        c's one-hot (`_noise`): a plain lookup, which passes on twice c's error
        (categorical.output_lookup_error), where c errs by at most LOOKUP_NOISE and that
        fits; else a clean lookup, whose error does not grow with c's; else a refusal
        naming the reader."""
        inner, noise = expr.inner, self._noise(expr.inner)
        in_space = self.spaces[inner.unique_id]
        written = sorted({float(v) for d in in_space.basis for v in result(d.value).values()})
        fits = self._fits(node, written)  # per signed value: readers say so

        if noise <= LOOKUP_NOISE and fits(
                lambda v: categorical.output_lookup_error(1, v, noise, self._norm)):
            return self._lookup(inner, node, lambda d: result(d.value), hidden, info)
        if noise <= clean_lookup.INPUT_TOLERANCE and fits(
                lambda v: clean_lookup.error_bound(v, norm=self._norm)):
            return clean_lookup.clean_lookup_mlp(in_space, self.spaces[node],
                                                 lambda d: result(d.value), hidden, info)
        raise self._too_large(expr, node, written, f"a one-hot that may err by {noise:.2g}")

    def _affine_fit(self, node, xs) -> tuple[float, float] | None:
        """(a, b) with the numerical Map's f(x) = a·x + b on every value x it accepts (to
        AFFINE_FIT, relative), else None: then a linear MLP computes it for any values."""
        direction = self.spaces[node].basis[0]
        known = [(x, float(y)) for x in xs
                 if (y := self._map_result(node)(x).get(direction)) is not None]
        if not known:
            return None
        (x0, y0), (x1, y1) = known[0], known[-1]
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
        intercept = y0 - slope * x0
        if all(abs(slope * x + intercept - y) <= AFFINE_FIT * max(1.0, abs(y)) for x, y in known):
            return slope, intercept
        return None

    def _lookup(self, inner, node, output_of, hidden, info) -> MLP:
        """A plain lookup of categorical `inner`: one unit per output value where that is
        narrower and `inner`'s one-hot is exact (then so is the output, see
        categorical.output_lookup_error), else one unit per input value. Summing the
        noise of a whole preimage would break what readers assume (LOOKUP_NOISE)."""
        in_space, out_space = self.spaces[inner.unique_id], self.spaces[node]
        if self._noise(inner) == 0.0:
            units = categorical.output_groups(in_space, output_of)
            if len(units) < sum(len(group) for group in units.values()):
                return categorical.output_lookup_mlp(in_space, out_space, output_of, hidden, info)
        return categorical.lookup_mlp(in_space, out_space, output_of, hidden, info)

    def _check_rounding(self, expr, xs):
        if numerical.rounding_bound(xs, norm=self._norm) > MAX_STEP_ROUNDING:
            raise CompileError(expr, "its input values are too close together for their "
                               "magnitude to be separated exactly in float32",
                               "round or rescale the values before this Map")

    def _sequence_result(self, node):
        """(a, b) ↦ the SequenceMap's output components ({} where its function raises), cached."""
        if node not in self.map_results:
            expr, out = self.graph.expr(node), self._output_of(node)
            first, second = self._as_written(expr.fst), self._as_written(expr.snd)

            def result(a, b):
                try:
                    return out(expr.f(first(a), second(b)))
                except Exception:  # noqa: BLE001  the evaluator rejects such inputs
                    return {}

            self.map_results[node] = result
        return self.map_results[node]

    def _with_width(self, expr) -> bool | None:
        """True (False) where SequenceMap `expr` runs in its first (second) SOp's width
        head (`_width_with`), None where it does not: where it could (`_width_side`) but
        writes a number that its width's MLP cannot write within its readers' budgets,
        it is a lookup of the categorical width instead, one MLP later."""
        side = self._width_side(expr)
        if side is None or not rx.is_numerical(expr):
            return side
        bounds, written = self._width_error(expr.unique_id)
        return side if self.budgets.within(expr.unique_id, written, bounds) else None

    def _too_large(self, expr, node, written, source: str) -> CompileError:
        """The refusal of a lookup from `source` whose values no construction writes within
        its readers' budgets, naming the reader."""
        largest = max(map(abs, written), default=0.0)
        allowed = self.budgets.allowed(node, written)
        return CompileError(expr, f"float32 cannot write values as large as {largest:g} from "
                            f"{source} within what {self.budgets.spent_by(node)} tolerates "
                            f"({float(min(allowed, default=0.0)):.2g})", "rescale the values")

    def _fits(self, node, written):
        """error_of ↦ whether a writer of `node` erring by error_of(|v|) at each written
        value v stays within its readers' budgets (Budgets.within)."""
        return lambda error_of: self.budgets.within(node, written,
                                                    [error_of(abs(v)) for v in written])

    def _width_side(self, expr) -> bool | None:
        """True (False) where SequenceMap `expr` is of a categorical width first (second)
        and tokens or indices, which the width's MLP can compute gated by them."""
        if self.fold and width_with_side(expr.fst, expr.snd):
            return True
        return False if self.fold and width_with_side(expr.snd, expr.fst) else None

    def _sequence_map(self, node, expr) -> NodeBlock:
        fst, snd = expr.fst.unique_id, expr.snd.unique_id
        result = self._sequence_result(node)
        info, label = self._info(node, "sequence_map"), self._label(node)
        if (width_first := self._with_width(expr)) is not None:
            return self._width_with(node, expr, width_first)
        if rx.is_numerical(expr.fst) or rx.is_numerical(expr.snd):
            return NodeBlock(node, self._gated(node, info), (fst, snd))
        if rx.is_numerical(expr):
            return NodeBlock(node, self._numerical_pair_lookup(node, expr, result, info),
                             (fst, snd))
        self._check_one_hot(expr, self._noise(expr))
        block = categorical.pair_lookup_mlp(
            self.spaces[fst], self.spaces[snd], self.spaces[node],
            lambda a, b: result(a.value, b.value), f"{label}.hidden", info)
        return NodeBlock(node, block, (fst, snd))

    def _numerical_pair_lookup(self, node, expr, result, info) -> MLP:
        """A numerical SequenceMap of two categoricals whose error fits what its readers
        tolerate at each value it writes: a pair lookup, whose set unit writes v times a
        one-hot unit (so errs by |v| times input_errors.lookup_error's bound), else a clean
        pair lookup, whose error does not grow with its inputs', else a refusal naming
        the reader."""
        fst, snd = self.spaces[expr.fst.unique_id], self.spaces[expr.snd.unique_id]
        noises = [self._noise(expr.fst), self._noise(expr.snd)]
        written = sorted({float(v) for a in fst.basis for b in snd.basis
                          for v in result(a.value, b.value).values()})
        fits = self._fits(node, written)

        hidden, output_of = f"{self._label(node)}.hidden", \
            (lambda a, b: result(a.value, b.value))
        exact = not any(noises) and self._norm is None  # every term an exact small integer
        unit = 0.0 if exact else lookup_error(noises, 3.0, self._norm)
        if fits(lambda v: v * unit):
            return categorical.pair_lookup_mlp(fst, snd, self.spaces[node], output_of, hidden,
                                               info)
        if max(noises) <= clean_lookup.INPUT_TOLERANCE and not set(fst.basis) & set(snd.basis) \
                and fits(lambda v: clean_lookup.error_bound(v, True, self._norm)):
            return clean_lookup.clean_pair_lookup_mlp(fst, snd, self.spaces[node], output_of,
                                                      hidden, info)
        raise self._too_large(expr, node, written,
                              f"one-hots that may err by {max(noises):.2g}")

    def _gated(self, node, info) -> MLP | Series:
        """f(numerical x, categorical c): one MLP whose discretiser of x is gated by c,
        or, where c's float32 noise could open a gate, first discretise x into the
        classes f tells apart (two MLPs)."""
        plan = self._gated_plan(node)
        self._check_rounding(self.graph.expr(node), plan.xs)
        self.budgets.tolerate(node, plan.x.unique_id, numerical.input_tolerance(plan.xs))
        if plan.one_mlp:
            return numerical.gated_discretising_mlp(
                self.spaces[plan.x.unique_id].basis[0], plan.xs, self.spaces[plan.c.unique_id],
                self.spaces[node], plan.ordered, f"{self._label(node)}.hidden", info)
        return self._classes_then_lookup(node, plan.x, plan.xs, self.spaces[plan.c.unique_id],
                                         plan.ordered, info, plan.c)

    def _gated_plan(self, node) -> _GatedPlan:
        """What `_gated` builds for SequenceMap `node`, and its error bound; memoised, as
        readers ask for it (`_noise`) before the node is built."""
        if node in self.gated_plans:
            return self.gated_plans[node]
        expr, result = self.graph.expr(node), self._sequence_result(node)
        numeric_first = rx.is_numerical(expr.fst)
        x, c = (expr.fst, expr.snd) if numeric_first else (expr.snd, expr.fst)

        @functools.cache  # each (x, c) is asked several times below
        def ordered(x_value, c_value):
            return result(x_value, c_value) if numeric_first else result(c_value, x_value)

        gate_values = [d.value for d in self.spaces[c.unique_id].basis]

        def row(x_value):  # f(x, ·): what x means to this SequenceMap
            return [ordered(x_value, c_value) for c_value in gate_values]

        xs = merge_indistinguishable(
            expr, self.values[x.unique_id].require(expr, "a SequenceMap"), row)
        rows = [row(v) for v in xs]
        used = [j for j in range(1, len(xs)) if rows[j - 1] != rows[j]]
        strength = max((numerical.gate_strength(xs, j) for j in used), default=0.0)
        error = self._discretiser_error(
            node, xs, [functools.partial(lambda v, x: ordered(x, v), v) for v in gate_values],
            gated=True)
        # Each copy's base unit writes f(x_m, c')·x_c', so c's error leaks onto each output
        # direction k as Σ_c' |f(x_m, c')_k|·e_c (doubled: a generous cover of the rounding
        # of those few products); the copies' steps cancel it exactly.
        leaks = collections.Counter()
        for out in rows[-1]:
            leaks.update({k: abs(v) for k, v in out.items()})
        error += 2 * max(leaks.values(), default=0.0) * self._noise(c)
        one_mlp = strength * self._noise(c) <= MAX_GATE_LEAK and error <= self._budget(node)
        if not one_mlp and not rx.is_numerical(expr):
            error = clean_lookup.error_bound(1.0, pair=True, norm=self._norm)
        plan = _GatedPlan(x, c, xs, ordered, one_mlp, error)
        self.gated_plans[node] = plan
        return plan

    def _classes_then_lookup(self, node, x, xs, c_space, ordered, info, c=None) -> Series:
        """Two MLPs: x into the classes f tells apart (one-hot), then a clean lookup from
        (class, c) — or the class alone when `c_space` is empty — to the output, exact
        while the classes and c err by less than clean_lookup.INPUT_TOLERANCE."""
        expr = self.graph.expr(node)
        gate_values = [d.value for d in c_space.basis] or [None]
        rows = [repr([ordered(v, c) for c in gate_values]) for v in xs]
        class_of = class_indices(rows, runs=False)
        if numerical.one_hot_error_bound(xs, one_hots(class_of), norm=self._norm) \
                > clean_lookup.INPUT_TOLERANCE:
            class_of = class_indices(rows, runs=True)
        noisy = numerical.one_hot_error_bound(xs, one_hots(class_of), norm=self._norm)
        if max(noisy, 0.0 if c is None else self._noise(c)) > clean_lookup.INPUT_TOLERANCE:
            raise CompileError(expr, "float32 rounding could garble its discretised input "
                               "in some summation order", REDUCE_VALUES_HINT)
        if rx.is_numerical(expr):
            largest = max(float(np.abs(self._rows(node, functools.partial(
                lambda c_value, v: ordered(v, c_value), c_value), xs)).max(initial=0.0))
                for c_value in gate_values)
            if clean_lookup.error_bound(largest, bool(c_space.dim), self._norm) \
                    > self.budgets.budget(node):
                raise CompileError(expr, f"float32 cannot write values as large as {largest} "
                                   f"within {self.budgets.budget(node):.2g}", "rescale the values")
        representative = {c: v for v, c in zip(xs, class_of)}
        label = self._label(node)
        steps = VectorSpace.from_values(f"{label}.{self._label(x)}", range(max(class_of) + 1))
        discretise = numerical.discretising_mlp(
            self.spaces[x.unique_id].basis[0], xs, steps,
            lambda v: {steps.basis[class_of[xs.index(v)]]: 1.0}, f"{label}.discretise", info)
        if c_space.dim:
            lookup = clean_lookup.clean_pair_lookup_mlp(
                steps, c_space, self.spaces[node],
                lambda a, b: ordered(representative[a.value], b.value), f"{label}.hidden", info)
        else:
            lookup = clean_lookup.clean_lookup_mlp(
                steps, self.spaces[node], lambda a: ordered(representative[a.value], None),
                f"{label}.hidden", info)
        return Series((discretise, lookup))

    def _budget(self, node) -> float:
        """The error a discretiser writing `node` may make: the node's budget
        (compiler.budgets) for a number, MAX_ONE_HOT_ERROR for a one-hot."""
        numeric = rx.is_numerical(self.graph.expr(node))
        return self.budgets.budget(node) if numeric else MAX_ONE_HOT_ERROR

    def _discretiser_is_exact(self, node, xs, functions) -> bool:
        """Whether a discretiser of x computing each of `functions` is within `_budget`."""
        return self._discretiser_error(node, xs, functions) <= self._budget(node)

    def _discretiser_error(self, node, xs, functions, gated: bool = False) -> float:
        """The float32 error bound, in any summation order, of a discretiser of x computing
        each of `functions` (x ↦ output components, one per gate value when `gated`);
        infinite where its steps' rounding is too large to bound."""
        if gated and numerical.rounding_bound(xs, True, self._norm) > MAX_STEP_ROUNDING:
            return np.inf
        # Components are bounded independently, so the functions' rows are bounded side by
        # side, as many at once as numerical.BOUND_CHUNK allows (the xs part is shared).
        batch = max(1, numerical.BOUND_CHUNK // max(1, len(xs) * self.spaces[node].dim))
        error = 0.0
        for start in range(0, len(functions), batch):
            rows = np.hstack([self._rows(node, f, xs) for f in functions[start:start + batch]])
            error = max(error, float(numerical.discretiser_error_bounds(xs, rows, gated, self._norm)
                                     .max(initial=0.0)))
        return error

    def _rows(self, node, output_of, xs) -> np.ndarray:
        """The output vectors output_of(x) in the node's space, one row per x."""
        space = self.spaces[node]
        rows = zeros_matrix(len(xs), space.dim)
        for i, x in enumerate(xs):
            for direction, value in output_of(x).items():
                rows[i, space.index[direction]] += value
        return rows

@dataclasses.dataclass(frozen=True)
class _GatedPlan:
    """A SequenceMap of numerical x and categorical c: x's values, f ordered as (x, c),
    whether one gated discretiser computes it (else classes then a clean lookup), and the
    error bound of what it writes (a one-hot's, per direction, when categorical)."""
    x: rx.SOp
    c: rx.SOp
    xs: list
    ordered: object
    one_mlp: bool
    error: float
