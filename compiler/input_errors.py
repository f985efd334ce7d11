"""How far the values a block reads may be from exact in float32.

Categorical SOps: a bound on the error of each direction of their one-hot, from the
block that writes it (`OneHotNoise`, mixed into compiler.blocks' builder). Numerical
SOps: values float32 cannot tell apart are merged (`merge_indistinguishable`).
"""

from __future__ import annotations


import numpy as np

from compiler.budgets import LOOKUP_NOISE
from craft import clean_lookup, float_bounds, numerical
from rasp import expr as rx
from rasp.errors import CompileError

EMBEDDED = (rx.TokensType, rx.IndicesType, rx.Full, rx.ConstantSOp)

# Inputs closer than this (relative) are one value to a float32 model.
INDISTINGUISHABLE = 1e-6

# Largest float32 error (any summation order) we accept on a discretiser's one-hot:
# lookups threshold one-hots at ½ and double what is left on the set direction.
MAX_ONE_HOT_ERROR = 0.05
# A one-hot that errs by less than this still reads right: every lookup and the
# decoder threshold its directions at ½ (lookup_error).
ONE_HOT_LIMIT = 0.25


class OneHotNoise:
    """Builder methods bounding the float32 error of categorical one-hots."""

    def _noise(self, sop) -> float:
        """A bound on the float32 error of every direction of a categorical SOp's one-hot
        as its readers see it: what it is written with, and with a LayerNorm what the
        LayerNorm adds."""
        written = self._written_noise(sop)
        if self.layer_norm is None:
            return written
        return written + self.layer_norm.one_hot_error(self.spaces[sop.unique_id].dim)

    def _written_noise(self, sop) -> float:
        """`_noise` as written: with a LayerNorm no lookup reads an exact one-hot, and
        lookups of noisy ones carry LOOKUP_NOISE."""
        if isinstance(sop, EMBEDDED):
            return 0.0
        plain = self._plain_noise(sop)
        return LOOKUP_NOISE if self.layer_norm is not None and plain == 0.0 else plain

    def _plain_noise(self, sop) -> float:
        """The one-hot's error without a LayerNorm, in any summation order (memoised:
        readers ask before the SOp is built)."""
        if isinstance(sop, EMBEDDED) or self._exact_lookup(sop):
            return 0.0
        if sop.unique_id not in self.noises:
            self.noises[sop.unique_id] = self._one_hot_error(sop)
        return self.noises[sop.unique_id]

    def _one_hot_error(self, sop) -> float:
        """`_noise` of an SOp whose one-hot is not exact, from the block that writes it."""
        if isinstance(sop, rx.Map) and rx.is_numerical(sop.inner):
            result = self._map_result(sop.unique_id)
            xs = merge_indistinguishable(sop, self.values[sop.inner.unique_id].values, result)
            bound = numerical.one_hot_error_bound(xs, self._rows(sop.unique_id, result, xs),
                                                  norm=self._norm)
            # beyond budget it was built as classes then a clean lookup
            return bound if bound <= MAX_ONE_HOT_ERROR else \
                clean_lookup.error_bound(1.0, norm=self._norm)
        if isinstance(sop, (rx.SelectorWidth, rx.LengthType)) or (
                isinstance(sop, rx.SequenceMap) and self._with_width(sop) is not None):
            return float(self._width_error(sop.unique_id)[0].max(initial=0.0))
        if isinstance(sop, rx.Map):  # a lookup, one unit per input value
            return max(LOOKUP_NOISE, lookup_error([self._noise(sop.inner)], 1.0, self._norm))
        if isinstance(sop, rx.Aggregate):  # an average of equal one-hots
            return max(LOOKUP_NOISE, float_bounds.mean_error(self.max_seq_len + 1, 1.0,
                                                             self._noise(sop.sop)))
        if isinstance(sop, rx.SequenceMap) and self._with_width(sop) is None:
            if any(rx.is_numerical(child) for child in sop.children):
                return self._gated_plan(sop.unique_id).error
            return max(LOOKUP_NOISE, lookup_error([self._noise(c) for c in sop.children], 3.0,
                                                  self._norm))
        return LOOKUP_NOISE

    @staticmethod
    def _check_one_hot(expr, error: float):
        """Refuse a lookup whose inputs err so much that its own one-hot could be garbled."""
        if not error < ONE_HOT_LIMIT:
            raise CompileError(expr, f"float32 rounding upstream could garble its one-hot "
                               f"(by up to {error:.2g}) in some summation order",
                               REDUCE_VALUES_HINT)

    def _exact_lookup(self, sop) -> bool:
        """Whether `sop` is a categorical lookup (Map, or pair-lookup SequenceMap) of exact
        categorical one-hots, so exact itself: its units add exact 0/1 inputs with weights
        ±1, ±2 and ±3, small integers that float32 holds exactly. Memoised (DAGs share)."""
        if rx.is_numerical(sop) or not isinstance(sop, (rx.Map, rx.SequenceMap)):
            return False
        if sop.unique_id not in self.exact:
            self.exact[sop.unique_id] = all(
                not rx.is_numerical(child) and self._noise(child) == 0.0
                for child in sop.children)
        return self.exact[sop.unique_id]


def lookup_error(input_errors: list[float], offset: float,
                 norm: float_bounds.NormedRead | None = None) -> float:
    """One-hot error bound, any summation order, of a lookup whose set unit is
    relu(2·Σ x_d − offset·one) over one set direction per input (`offset` 1 for a Map,
    3 for a pair), each erring by at most e_i; infinite where a unit could misfire. With
    `norm`, read through a LayerNorm (float_bounds.NormedRead).

    The unit carries 2·Σe_i plus the rounding of its terms; every other unit stays below
    −1 + 2·Σe_i + rounding, exactly 0; the second layer writes the unit once (weight 1)
    and the residual add rounds once more.
    """
    carried, count = 2 * sum(input_errors), len(input_errors) + 1
    terms = 2 * (len(input_errors) + sum(input_errors)) + offset
    unit = float_bounds.matmul_error(terms, count, carried)
    if norm is not None:
        unit += norm.unit_error(2 * len(input_errors) + offset, terms + carried, count)
    if not unit < ONE_HOT_LIMIT:
        return np.inf
    second = float_bounds.matmul_error(1 + unit, 1, unit)
    if norm is not None:
        second = norm.output_error(second, 1.0)
    return second + float_bounds.add_error(1 + second)



def merge_indistinguishable(expr, xs, result) -> list[float]:
    """One representative per run of values float32 cannot tell apart.

    Such values arise from float arithmetic (0.8 − 0.6 vs 0.2); merging is exact
    when the Map gives them the same output, and refused otherwise.
    """
    groups: list[list[float]] = []
    for x in sorted(float(v) for v in xs):
        if groups and x - groups[-1][-1] <= INDISTINGUISHABLE * max(1.0, abs(x)):
            groups[-1].append(x)
        else:
            groups.append([x])
    for group in (g for g in groups if len(g) > 1):
        outputs = [result(x) for x in group]
        if any(o != outputs[0] for o in outputs[1:]):
            raise CompileError(expr, f"its inputs {group[0]!r} and {group[-1]!r} are too close "
                               "for float32 to tell apart, but it maps them differently",
                               "round the values before this Map, e.g. Map(lambda x: round(x, 6), ...)")
    return [group[0] for group in groups]
