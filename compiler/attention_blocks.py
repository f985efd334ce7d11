"""The attention half of block building: Aggregates, SelectorWidths and length.

`AttentionBlocks` is mixed into compiler.blocks' builder, whose graph, value sets,
spaces, budgets and helpers (`_info`, `_label`, `_output_of`, `_largest`) it uses.
A head that needs an MLP after it (a width, a default) returns both as one block.
With `soft_gaps` (a dict: soft attention) every head takes the smallest logit gap its
readers' bounds accept, recorded there by SOp label; without, the hard gaps.
"""

from __future__ import annotations

import numpy as np

from compiler.affine import affine_match
from compiler.budgets import LOOKUP_NOISE, check_scratch
from compiler.node_block import NodeBlock
from compiler.selection import Selection, build_selection
from craft import attention, float_bounds, numerical
from craft.bases import BasisDirection, VectorSpace
from craft.maps import BilinearForm, LinearMap
from craft.selector_width import fitted_selector_width, scratch_values
from rasp import expr as rx
from rasp.errors import CompileError


class AttentionBlocks:
    """Builder methods for the SOps that attention computes."""

    def _selection(self, selector) -> Selection:
        return build_selection(selector, self.spaces, self.values, self.graph)

    def _attention_info(self, node, op, selection: Selection, value=()):
        return self._info(node, op, query=tuple(self._label(q) for q in selection.queries),
                          key=tuple(self._label(k) for k in selection.keys), value=value,
                          predicate=selection.description)

    def _aggregate(self, node, expr) -> NodeBlock:
        sop = expr.sop.unique_id
        w_ov = self._value_map(node, expr, sop)
        match = affine_match(expr.selector, self.graph, self.spaces, self.max_seq_len,
                             self.causal) if self.fold else None
        if match is not None:
            info = self._info(node, "aggregate", query=tuple(map(self._label, match.inputs[1:])),
                              key=(self._label(match.inputs[0]),), value=(self._label(sop),),
                              predicate=match.description)
            gap = self._aggregate_gap(node, expr, 1.0, lambda gap: attention.match_head(
                match.form, w_ov, info, gap))
            return NodeBlock(node, attention.match_head(match.form, w_ov, info, gap),
                             (sop,) + match.inputs)
        selection = self._selection(expr.selector)
        info = self._attention_info(node, "aggregate", selection, (self._label(sop),))
        gap = self._aggregate_gap(node, expr, 0.5, lambda gap: attention.aggregate_head(
            selection.form, selection.level, w_ov, info, gap))
        head = attention.aggregate_head(selection.form, selection.level, w_ov, info, gap)
        block = head
        default = self._output_of(node)(expr.default)
        if any(default.values()):
            block = attention.default_fill(head, BasisDirection(f"{self._label(node)}.selected"),
                                           default, f"{self._label(node)}.default")
        return NodeBlock(node, block, (sop,) + selection.keys + selection.queries)

    def _aggregate_gap(self, node, expr, level_gap: float, head_at) -> float:
        """The logit gap of an Aggregate's head (`head_at(gap)`), having charged a numerical
        mean's budget: HARDNESS (whose leak is negligible, craft.attention) unless soft
        attention was asked for; then the smallest gap whose leak its readers absorb.

        The head's output moves by at most its leak (craft.attention.leak_bound) times the
        range of what it writes, and a default fill adds as much again: 3·leak·largest.
        A numerical mean may spend half of what its budget leaves after the averaging's
        own rounding on it; a categorical one, half of what LOOKUP_NOISE (the one-hot
        noise its readers assume of an Aggregate) leaves after its input's own noise.
        """
        numerical = rx.is_numerical(expr)
        count, largest = self.max_seq_len + 1, self._largest(node) if numerical else 1.0
        mean_input = expr.sop.unique_id if rx.is_numerical(expr.sop) else None
        gap, leak = attention.HARDNESS, 0.0
        if self.soft_gaps is not None:
            if numerical:
                spare = self.budgets.budget(node) - float_bounds.mean_error(count, largest)
            else:
                spare = LOOKUP_NOISE - self._noise(expr.sop)
            scale = 3 * largest

            def error(gap):
                scores = head_at(gap).w_qk
                logit_error = attention.logit_error_bound(scores) + (
                    0.0 if self.layer_norm is None else self.layer_norm.logit_error(scores))
                return scale * attention.leak_bound(logit_error, gap, self.max_seq_len,
                                                    level_gap)

            gap = attention.softest_gap(lambda gap: error(gap) <= spare / 2)
            leak = error(gap) if gap < attention.HARDNESS else 0.0
            self.soft_gaps[self._label(node)] = gap
        if numerical:
            self.budgets.mean(node, expr, mean_input, count, largest, leak)
        return gap

    def _value_map(self, node, expr, sop) -> LinearMap:
        """W_OV: the aggregated SOp's value (through any folded Map) into the output."""
        out_space = self.spaces[node]
        if rx.is_numerical(expr.sop):
            if not rx.is_numerical(expr):
                raise CompileError(expr, "a categorical Aggregate cannot copy a numerical SOp",
                                   "annotate the aggregated SOp categorical(...)")
            return LinearMap(self.spaces[sop], out_space, [[1.0]])
        value_map = expr.annotations.get("value_map", lambda v: v)
        out = self._output_of(node)

        def action(direction):
            try:
                return out(value_map(direction.value))
            except (KeyError, TypeError, ValueError):
                raise
            except Exception:  # noqa: BLE001  the evaluator rejects such inputs
                return {}

        try:
            return LinearMap.from_action(self.spaces[sop], out_space, action)
        except (TypeError, ValueError) as error:
            raise CompileError(expr, f"a numerical Aggregate averages numbers, but "
                               f"{self._label(sop)!r} holds other values ({error})",
                               "aggregate a numerical SOp") from error

    def _selector_width(self, node, expr) -> NodeBlock:
        selection = self._selection(expr.selector)
        return self._width_block(node, selection.form, selection.level,
                                 self._attention_info(node, "selector_width", selection),
                                 selection.keys + selection.queries)

    def _width_with(self, node, expr, width_first: bool) -> NodeBlock:
        """f(SelectorWidth, tokens or indices) in the width's own head and MLP: the
        width's discretiser is gated by the token or index, so no layer is added."""
        width, side = (expr.fst, expr.snd) if width_first else (expr.snd, expr.fst)
        selection = self._selection(width.selector)
        side_space, output_of = self._width_outputs(node)
        info = self._attention_info(node, "selector_width", selection)
        return self._counting(node, selection.form, selection.level, info, output_of,
                              selection.keys + selection.queries + (side.unique_id,),
                              side_space)

    def _width_outputs(self, node):
        """(side space, output_of(count, side value)): what the MLP of a width computed in
        its own head writes: a SelectorWidth or length (through its fused `width_map`), or
        a SequenceMap of one and tokens or indices (`_width_with`: gated by the side)."""
        expr = self.graph.expr(node)
        width, side, width_first = expr, None, True
        if isinstance(expr, rx.SequenceMap):
            width_first = self._width_side(expr)
            width, side = (expr.fst, expr.snd) if width_first else (expr.snd, expr.fst)
        width_map = width.annotations.get("width_map", lambda w: w)
        out, known = self._output_of(node), set(self.values[node].values)

        def output_of(count, side_value=None):
            try:
                value = width_map(count)
                if side is not None and value is not None:
                    value = expr.f(value, side_value) if width_first else expr.f(side_value, value)
            except Exception:  # noqa: BLE001  the evaluator rejects such inputs
                return {}
            return out(value) if value in known else {}

        return (VectorSpace(()) if side is None else self.spaces[side.unique_id]), output_of

    def _width_error(self, node) -> tuple[np.ndarray, np.ndarray]:
        """(bounds, written): per scratch value (rows, rising: w = N first) and written
        component (columns, one block per side value), the float32 error bound of what a
        width's MLP writes (craft.numerical.discretiser_error_bounds, through the
        LayerNorm if any), and the value written there. A side's one-hot may err (through
        a LayerNorm): each copy's base unit then leaks f(x_m, c')·error onto its output,
        counted twice as compiler.mlp_blocks' `_gated_plan` counts it."""
        side_space, output_of = self._width_outputs(node)
        scratch = sorted(scratch_values(
            self.max_seq_len, self.graph.expr(node).annotations.get("scratch_shift", 0.0)))
        count = {x: w for w, x in enumerate(reversed(scratch))}  # 1/(w+1) falls as w rises
        sides = [d.value for d in side_space.basis] or [None]
        rows = np.hstack([self._rows(node, lambda x, s=s: output_of(count[x], s), scratch)
                          for s in sides])
        bounds = numerical.discretiser_error_bounds(scratch, rows, bool(side_space.dim),
                                                    self._norm)
        if side_space.dim:
            expr = self.graph.expr(node)
            side = expr.children[int(self._width_side(expr))]  # the width's other input
            leak = np.abs(rows[-1].reshape(len(sides), -1)).sum(axis=0)
            bounds = bounds + 2 * np.tile(leak, len(sides)) * self._noise(side)
        return bounds, rows

    def _length(self, node, expr) -> NodeBlock:
        if self.causal:
            raise CompileError(expr, "a causal model cannot know the length of the whole input",
                               "use SelectorWidth(Select(indices, indices, LEQ)), the length "
                               "of the prefix each position sees")
        always = attention.predicate_form(VectorSpace(()), VectorSpace(()), lambda k, q: True)
        info = self._info(node, "length", predicate="Select(tokens, tokens, TRUE)")
        return self._width_block(node, always, 1, info, ())

    def _width_block(self, node, form: BilinearForm, level, info, inputs) -> NodeBlock:
        _, output_of = self._width_outputs(node)
        return self._counting(node, form, level, info, output_of, inputs)

    def _counting(self, node, form: BilinearForm, level, info, output_of, inputs,
                  side_space: VectorSpace = VectorSpace(())) -> NodeBlock:
        """A width head and its discretiser (gated by `side_space`), refused where
        float32 could move the head's 1/(w+1) out of its window."""
        label, expr = self._label(node), self.graph.expr(node)
        shift = expr.annotations.get("scratch_shift", 0.0)  # compiler.fusion sets it
        extra = (lambda scores: 0.0) if self.layer_norm is None else self.layer_norm.logit_error
        block, hardness = fitted_selector_width(
            form, level, self.max_seq_len, self.spaces[node], output_of,
            BasisDirection(f"{label}.width"), f"{label}.hidden", info, side_space, shift,
            self.soft_gaps is not None, extra,
            0.0 if self.layer_norm is None else self.layer_norm.scratch_error(self.max_seq_len,
                                                                              shift))
        if self.soft_gaps is not None:
            self.soft_gaps[label] = hardness
        error = check_scratch(expr, block, self.max_seq_len, hardness, shift, self.layer_norm)
        if self.layer_norm is not None:  # the scratch holds at most 1 + shift < 2
            self.layer_norm.written_scratch[node] = 2 * error
        if rx.is_numerical(expr):
            bounds, written = self._width_error(node)
            if not self.budgets.within(node, written, bounds):
                raise CompileError(expr, f"its width's MLP may err by {np.max(bounds):.2g} in "
                                   f"float32, more than {self.budgets.spent_by(node)} "
                                   f"tolerates", "compile for a shorter max_seq_len or write "
                                   "the count with fewer values")
        return NodeBlock(node, block, inputs)


def width_with_side(width, side) -> bool:
    """Whether a SequenceMap of `width` and `side` can run in the width's own MLP."""
    return (isinstance(width, rx.SelectorWidth) and rx.is_categorical(width)
            and isinstance(side, (rx.TokensType, rx.IndicesType)) and rx.is_categorical(side))
