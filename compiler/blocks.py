"""Graph + value sets + spaces → craft blocks, one per computed SOp.

Tokens, indices and constants come from the embeddings and need no block.
Every other SOp becomes an MLP (Map, SequenceMap), an attention head
(Aggregate), or a head followed by an MLP (SelectorWidth, length, Aggregate
with a non-zero default). Each block records the SOps it reads. The MLP
constructions are in compiler.mlp_blocks, the attention ones in
compiler.attention_blocks, the one-hot error bounds in compiler.input_errors.
"""

from __future__ import annotations

import dataclasses
import numbers

from compiler.attention_blocks import AttentionBlocks
from compiler.budgets import Budgets
from compiler.graph import ProgramGraph
from compiler.input_errors import EMBEDDED, OneHotNoise
from compiler.layer_norm import NORMED_READ, LayerNormReads
from compiler.linear_blocks import LinearBlocks
from compiler.mlp_blocks import REDUCE_VALUES_HINT, MLPBlocks
from compiler.node_block import NodeBlock
from compiler.values import ValueSet
from craft import categorical
from craft.bases import MatrixTooLarge, VectorSpace
from craft.blocks import MLP, BlockInfo
from craft.selector_width import scratch_tolerance
from rasp import expr as rx
from rasp.errors import CompileError

# Widest MLP block we build (beyond this, weights run to gigabytes).
MAX_MLP_WIDTH = 100_000


def build_blocks(graph: ProgramGraph, values: dict[int, ValueSet],
                 spaces: dict[int, VectorSpace], max_seq_len: int,
                 causal: bool, fold: bool = True,
                 layer_norm: LayerNormReads | None = None,
                 soft_gaps: dict[str, float] | None = None) -> list[NodeBlock]:
    """A block for every SOp the output needs that is not embedded, in topological order.

    Demand-driven: a node gets a block only if the output or another block reads
    it, so an SOp that a block reads through its sources (see compiler.affine)
    costs nothing. With `fold` False, every SOp gets a block of its own. With
    `layer_norm`, every read goes through a LayerNorm: numerical budgets and one-hot
    noise are charged its error, and each block's written error is recorded there.
    With `soft_gaps` (a dict), heads are soft and their gaps are recorded there.
    """
    budgets = Budgets(graph.output, lambda node: rx.is_numerical(graph.expr(node)), graph.label)
    builder = _Builder(graph, values, spaces, max_seq_len, causal, budgets, fold,
                       layer_norm=layer_norm, soft_gaps=soft_gaps)
    if layer_norm is not None:
        budgets.read_error = lambda node: layer_norm.read_error(builder._largest(node) + 1)
    needed, blocks = {graph.output}, []
    for node in reversed(graph.order):
        expr = graph.expr(node)
        if node in needed and isinstance(expr, rx.SOp) and not isinstance(expr, EMBEDDED):
            try:
                block = builder.build(node)
            except MatrixTooLarge as error:
                raise CompileError(expr, f"it needs {error}", REDUCE_VALUES_HINT) from None
            _check_width(expr, block)
            builder.budgets.tolerate_by_default(node, block.inputs)
            needed.update(block.inputs)
            blocks.append(block)
    if layer_norm is not None:
        for block in blocks:
            layer_norm.written[block.node] = builder.written_error(block)
    return blocks[::-1]


@dataclasses.dataclass(frozen=True)
class _Builder(AttentionBlocks, MLPBlocks, LinearBlocks, OneHotNoise):
    """The program's blocks, built one SOp at a time (readers first, see build_blocks);
    the mixins hold the constructions and the one-hot error bounds."""

    graph: ProgramGraph
    values: dict[int, ValueSet]
    spaces: dict[int, VectorSpace]
    max_seq_len: int
    causal: bool
    budgets: Budgets
    fold: bool = True  # compute an SOp inside its reader's block (affine, linear, width)
    exact: dict[int, bool] = dataclasses.field(default_factory=dict)  # _exact_lookup's answers
    noises: dict[int, float] = dataclasses.field(default_factory=dict)  # _noise's answers
    gated_plans: dict = dataclasses.field(default_factory=dict)  # _gated_plan's answers
    # Per Map node, its cached output function (`_map_result`).
    map_results: dict = dataclasses.field(default_factory=dict)
    layer_norm: LayerNormReads | None = None  # a LayerNorm before every read
    soft_gaps: dict[str, float] | None = None  # soft attention: each head's gap, by label

    def build(self, node: int) -> NodeBlock:
        expr = self.graph.expr(node)
        match expr:
            case rx.LengthType():
                return self._length(node, expr)
            case rx.Map():
                return self._map(node, expr)
            case rx.LinearSequenceMap() if self._reads_linearly(expr):
                return self._linear(node, expr)
            case rx.SequenceMap():
                return self._sequence_map(node, expr)
            case rx.Aggregate():
                return self._aggregate(node, expr)
            case rx.SelectorWidth():
                return self._selector_width(node, expr)
        raise CompileError(expr, f"no block implements {type(expr).__name__}")

    @property
    def _norm(self):
        """What a LayerNorm before an MLP adds to its bound (None without one)."""
        return None if self.layer_norm is None else NORMED_READ

    def _label(self, node_or_expr) -> str:
        node = node_or_expr if isinstance(node_or_expr, int) else node_or_expr.unique_id
        return self.graph.label(node)

    def _output_of(self, node: int):
        space = self.spaces[node]
        if rx.is_numerical(self.graph.expr(node)):
            return categorical.numerical_output(space.basis[0])
        return categorical.categorical_output(space)

    def _info(self, node: int, op: str, **sources) -> BlockInfo:
        return BlockInfo((self._label(node),), op, **sources)

    def _largest(self, node) -> float:
        """The largest magnitude of a numerical SOp's values. A mean whose values are too
        many to list is bounded by its input's and its default's (an average never exceeds
        them); any other SOp whose values are not known is refused."""
        values, expr = self.values[node], self.graph.expr(node)
        if values.too_large and isinstance(expr, rx.Aggregate) \
                and "value_map" not in expr.annotations:
            default = expr.default if isinstance(expr.default, numbers.Real) else 0.0
            return max(self._largest(expr.sop.unique_id), abs(float(default)))
        return max((abs(float(v)) for v in values.require(expr, "its float32 error bound")),
                   default=0.0)


    def written_error(self, block: NodeBlock) -> float:
        """A bound on the L1 float32 error of what `block` writes to the residual: its
        SOp's (a number's budget at its largest, a one-hot's noise), and a width's scratch."""
        expr = self.graph.expr(block.node)
        error = self.budgets.most(block.node, self.values[block.node].values) \
            + self.budgets.read_error(block.node) if rx.is_numerical(expr) \
            else self._written_noise(expr)
        own = set(self.spaces[block.node].basis)
        if any(d not in own for part in block.parts() for d in part.writes.basis):
            # a width's scratch: its bound where _counting recorded it, else its window
            error += self.layer_norm.written_scratch.get(
                block.node, 2 * scratch_tolerance(self.max_seq_len))
        return error


def _check_width(expr, block: NodeBlock):
    width = sum(part.hidden_space.dim for part in block.parts() if isinstance(part, MLP))
    if width > MAX_MLP_WIDTH:
        raise CompileError(expr, f"it needs an MLP with {width:,} hidden units "
                           f"(more than {MAX_MLP_WIDTH:,})", REDUCE_VALUES_HINT)
