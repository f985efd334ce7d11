"""The linear maps of compiler.blocks' builder: a·x + b·y in one MLP.

`LinearBlocks` is mixed into the builder (whose value sets, spaces, budgets and one-hot
noise it uses). A numerical input is read as it is; a categorical one that holds
numbers, Σ_v v·[c = v], through its one-hot (through a clamp per value where that
one-hot is noisy, craft.clean_lookup). The float32 bound, in any summation order, is
compiler.budgets' `linear`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers

from compiler.node_block import NodeBlock
from craft import clean_lookup, numerical
from craft.blocks import combine_mlps
from rasp import expr as rx


class LinearBlocks:
    """Builder methods for numerical LinearSequenceMaps."""

    def _reads_linearly(self, expr) -> bool:
        """Whether numerical LinearSequenceMap `expr` (with a numerical input) is built by
        `_linear`: each categorical input holds numbers only, never None, in a one-hot that
        is exact or errs by less than a clamp cleans (clean_lookup.INPUT_TOLERANCE). Any
        other is a SequenceMap: a discretiser of its numerical input gated by the other."""
        if not rx.is_numerical(expr) or not any(map(rx.is_numerical, expr.children)):
            return False
        for sop in expr.children:
            if rx.is_numerical(sop):
                continue
            known = self.values[sop.unique_id]
            if known.may_be_none or not all(map(_is_number, known.values)):
                return False
            source, _ = self._read_as_one_hot(sop)
            if self._noise(source) > clean_lookup.INPUT_TOLERANCE:
                return False
        return True

    def _linear(self, node, expr) -> NodeBlock:
        """a·x + b·y in one MLP: a numerical input through relu(x) − relu(−x); a categorical
        c (numbers, `_reads_linearly`) as Σ_v v·[c = v], linear in its one-hot, read as it
        is where the one-hot is exact, else through a clamp per value (clean_lookup), which
        is exactly [c = v] while c errs by less than 1/16. A Map of an exact categorical c
        (tokens, indices, lookups of those) is read from c's one-hot, Σ_v f(v)·[c = v], so
        it needs no layer of its own and adds no error."""
        terms, nonnegative, inputs, bounded, clamps = [], set(), [], [], []
        label, info, out = self._label(node), self._info(node, "linear_sequence_map"), \
            self.spaces[node].basis[0]
        for sop, coefficient in ((expr.fst, expr.fst_fac), (expr.snd, expr.snd_fac)):
            values = [float(v) for v in self.values[sop.unique_id].values]
            reading = self._read_as_one_hot(sop)
            if reading is None:
                terms.append((self.spaces[sop.unique_id].basis[0], coefficient))
                inputs.append(sop.unique_id)
                bounded.append((sop.unique_id, coefficient, values))
                continue
            source, number = reading
            space = self.spaces[source.unique_id]
            inputs.append(source.unique_id)
            if self._noise(source) == 0.0:
                for d in space.basis:
                    terms.append((d, coefficient * number(d.value)))
                    nonnegative.add(d)
                bounded.append((None, coefficient, values))
            else:
                clamps.append(clean_lookup.clean_lookup_mlp(
                    space, self.spaces[node],
                    lambda d, c=coefficient, n=number: {out: c * n(d.value)},
                    f"{label}.clamp", info))  # one at most: one input is a number
                bounded.append((None, coefficient, values,
                                *clean_lookup.normed_read(self._norm)))
        block = numerical.linear_mlp(terms, out, f"{label}.hidden", info, frozenset(nonnegative))
        if clamps:
            block = dataclasses.replace(combine_mlps([block, *clamps]), info=info)
        self.budgets.linear(node, expr, bounded, block.hidden_space.dim)
        return NodeBlock(node, block, tuple(dict.fromkeys(inputs)))

    def _read_as_one_hot(self, sop):
        """(c, number) where input `sop` of a linear map is Σ_v number(v)·[c = v] over the
        one-hot of categorical c: `sop` itself where it is categorical, or, folded, the
        exact categorical SOp a Map `sop` reads; None for a numerical input read as is."""
        source = self._exact_categorical_source(sop) if self.fold else None
        if source is None:
            return None if rx.is_numerical(sop) else (sop, float)
        if rx.is_numerical(sop):
            result = self._map_result(sop.unique_id)
            direction = self.spaces[sop.unique_id].basis[0]
            return source, lambda v: float(result(v).get(direction, 0.0))
        return source, functools.partial(_number_or_zero, sop.f)

    def _exact_categorical_source(self, sop):
        """c where `sop` is a Map of categorical c whose one-hot is exact."""
        if isinstance(sop, rx.Map) and not rx.is_numerical(sop.inner) \
                and not isinstance(sop.inner, rx.SelectorWidth) and self._noise(sop.inner) == 0.0:
            return sop.inner
        return None


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _number_or_zero(f, value) -> float:
    """f(value) as a float; 0 where f raises (the evaluator rejects such inputs)."""
    try:
        return float(f(value))
    except Exception:  # noqa: BLE001
        return 0.0
