"""Graph + value sets + spaces → craft blocks, one per computed SOp.

Tokens, indices and constants come from the embeddings and need no block.
Every other SOp becomes an MLP (Map, SequenceMap), an attention head
(Aggregate), or a head followed by an MLP (SelectorWidth, length, Aggregate
with a non-zero default). Each block records the SOps it reads.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from compiler.attention_blocks import AttentionBlocks, width_with_side
from compiler.budgets import LOOKUP_NOISE, Budgets, class_indices, one_hots
from compiler.graph import ProgramGraph
from compiler.layer_norm import LayerNormReads
from compiler.node_block import NodeBlock
from compiler.values import ValueSet
from craft import categorical, clean_lookup, numerical
from craft.bases import ONE, MatrixTooLarge, VectorSpace, zeros_matrix
from craft.blocks import MLP, BlockInfo, Series
from craft.selector_width import scratch_tolerance
from rasp import expr as rx
from rasp.errors import CompileError

EMBEDDED = (rx.TokensType, rx.IndicesType, rx.Full, rx.ConstantSOp)

# Discretising MLPs need float32 rounding of each step far below its ½ margin.
MAX_STEP_ROUNDING = 0.05
# Inputs closer than this (relative) are one value to a float32 model.
INDISTINGUISHABLE = 1e-6
# A numerical Map within this (relative) of a·x + b on its input values is computed
# as a·x + b: far below any budget, and what float arithmetic in f itself rounds.
AFFINE_FIT = 1e-12
# Widest MLP block we build (beyond this, weights run to gigabytes).
MAX_MLP_WIDTH = 100_000
REDUCE_VALUES_HINT = ("reduce the number of distinct values of its inputs, e.g. map them "
                      "to the few classes the function tells apart first")
# A gated discretiser tolerates gate error × gate strength up to this (margin is ½).
MAX_GATE_LEAK = 0.1
# Largest float32 error (any summation order) we accept on a discretiser's one-hot:
# lookups threshold one-hots at ½ and double what is left on the set direction.
MAX_ONE_HOT_ERROR = 0.05


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
class _Builder(AttentionBlocks):
    graph: ProgramGraph
    values: dict[int, ValueSet]
    spaces: dict[int, VectorSpace]
    max_seq_len: int
    causal: bool
    budgets: Budgets
    fold: bool = True  # compute an SOp inside its reader's block (affine, linear, width)
    exact: dict[int, bool] = dataclasses.field(default_factory=dict)  # _exact_lookup's answers
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
            case rx.LinearSequenceMap() if rx.is_numerical(expr.fst):
                return self._linear(node, expr)
            case rx.SequenceMap():
                return self._sequence_map(node, expr)
            case rx.Aggregate():
                return self._aggregate(node, expr)
            case rx.SelectorWidth():
                return self._selector_width(node, expr)
        raise CompileError(expr, f"no block implements {type(expr).__name__}")

    # ------------------------------------------------------------------ helpers
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

    # ------------------------------------------------------------------ MLPs
    def _map_result(self, node):
        """value ↦ the Map's output components ({} where its function raises), cached: each
        value is asked for by the exactness checks, the block, and the readers' noise."""
        if node not in self.map_results:
            expr, out = self.graph.expr(node), self._output_of(node)

            @functools.cache
            def result(value):
                try:
                    return out(expr.f(value))
                except Exception:  # noqa: BLE001  the evaluator rejects such inputs
                    return {}

            self.map_results[node] = result
        return self.map_results[node]

    def _map(self, node, expr) -> NodeBlock:
        inner = expr.inner.unique_id
        result = self._map_result(node)
        info = self._info(node, "map")
        hidden = f"{self._label(node)}.hidden"
        if rx.is_numerical(expr.inner):
            xs = _merge_indistinguishable(expr, self.values[inner].require(expr, "a numerical Map"),
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
                self.budgets.linear(node, expr, [(inner, affine[0], xs), (None, affine[1], [1.0])],
                                    block.hidden_space.dim)
            else:
                block = self._classes_then_lookup(node, expr.inner, xs, VectorSpace(()),
                                                  lambda x, c: result(x), info)
        elif rx.is_numerical(expr) and self._noise(expr.inner) > LOOKUP_NOISE:
            # a plain lookup would double a discretiser's one-hot noise into the number
            block = clean_lookup.clean_lookup_mlp(self.spaces[inner], self.spaces[node],
                                                  lambda d: result(d.value), hidden, info)
        else:
            block = self._lookup(expr.inner, node, lambda d: result(d.value), hidden, info)
        return NodeBlock(node, block, (inner,))

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

    @staticmethod
    def _check_rounding(expr, xs):
        if numerical.rounding_bound(xs) > MAX_STEP_ROUNDING:
            raise CompileError(expr, "its input values are too close together for their "
                               "magnitude to be separated exactly in float32",
                               "round or rescale the values before this Map")

    def _sequence_map(self, node, expr) -> NodeBlock:
        fst, snd = expr.fst.unique_id, expr.snd.unique_id
        out = self._output_of(node)

        def result(a, b):
            try:
                return out(expr.f(a, b))
            except Exception:  # noqa: BLE001  the evaluator rejects such inputs
                return {}

        info, label = self._info(node, "sequence_map"), self._label(node)
        width_first = self.fold and width_with_side(expr.fst, expr.snd)
        if width_first or (self.fold and width_with_side(expr.snd, expr.fst)):
            return self._width_with(node, expr, width_first)
        if rx.is_numerical(expr.fst) or rx.is_numerical(expr.snd):
            return NodeBlock(node, self._gated(node, expr, result, info), (fst, snd))
        block = categorical.pair_lookup_mlp(
            self.spaces[fst], self.spaces[snd], self.spaces[node],
            lambda a, b: result(a.value, b.value), f"{label}.hidden", info)
        return NodeBlock(node, block, (fst, snd))

    def _gated(self, node, expr, result, info) -> MLP | Series:
        """f(numerical x, categorical c): one MLP whose discretiser of x is gated by c,
        or, where c's float32 noise could open a gate, first discretise x into the
        classes f tells apart (two MLPs)."""
        numeric_first = rx.is_numerical(expr.fst)
        x, c = (expr.fst, expr.snd) if numeric_first else (expr.snd, expr.fst)

        @functools.cache  # each (x, c) is asked several times below
        def ordered(x_value, c_value):
            return result(x_value, c_value) if numeric_first else result(c_value, x_value)

        x_dir, c_space = self.spaces[x.unique_id].basis[0], self.spaces[c.unique_id]
        gate_values = [d.value for d in c_space.basis]

        def row(x_value):  # f(x, ·): what x means to this SequenceMap
            return [ordered(x_value, c_value) for c_value in gate_values]

        xs = _merge_indistinguishable(
            expr, self.values[x.unique_id].require(expr, "a SequenceMap"), row)
        self._check_rounding(expr, xs)
        self.budgets.tolerate(node, x.unique_id, numerical.input_tolerance(xs))
        label = self._label(node)
        rows = [row(v) for v in xs]
        used = [j for j in range(1, len(xs)) if rows[j - 1] != rows[j]]
        strength = max((numerical.gate_strength(xs, j) for j in used), default=0.0)
        exact = self._discretiser_is_exact(
            node, xs, [functools.partial(lambda v, x: ordered(x, v), v) for v in gate_values],
            gated=True)
        if strength * self._noise(c) <= MAX_GATE_LEAK and exact:
            return numerical.gated_discretising_mlp(x_dir, xs, c_space, self.spaces[node],
                                                    ordered, f"{label}.hidden", info)
        return self._classes_then_lookup(node, x, xs, c_space, ordered, info, c)

    def _classes_then_lookup(self, node, x, xs, c_space, ordered, info, c=None) -> Series:
        """Two MLPs: x into the classes f tells apart (one-hot), then a clean lookup from
        (class, c) — or the class alone when `c_space` is empty — to the output, exact
        while the classes and c err by less than clean_lookup.INPUT_TOLERANCE."""
        expr = self.graph.expr(node)
        gate_values = [d.value for d in c_space.basis] or [None]
        rows = [repr([ordered(v, c) for c in gate_values]) for v in xs]
        class_of = class_indices(rows, runs=False)
        if numerical.one_hot_error_bound(xs, one_hots(class_of)) > clean_lookup.INPUT_TOLERANCE:
            class_of = class_indices(rows, runs=True)
        noisy = numerical.one_hot_error_bound(xs, one_hots(class_of))
        if max(noisy, 0.0 if c is None else self._noise(c)) > clean_lookup.INPUT_TOLERANCE:
            raise CompileError(expr, "float32 rounding could garble its discretised input "
                               "in some summation order", REDUCE_VALUES_HINT)
        if rx.is_numerical(expr):
            largest = max(float(np.abs(self._rows(node, functools.partial(
                lambda c_value, v: ordered(v, c_value), c_value), xs)).max(initial=0.0))
                for c_value in gate_values)
            if clean_lookup.error_bound(largest, bool(c_space.dim)) > self.budgets.budget(node):
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

    def _discretiser_is_exact(self, node, xs, functions, gated: bool = False) -> bool:
        """Whether a discretiser of x computing each of `functions` (x ↦ output components,
        one per gate value when `gated`) is within budget in float32, in any summation
        order: the node's budget (compiler.budgets) for a number, MAX_ONE_HOT_ERROR for
        a one-hot."""
        if gated and numerical.rounding_bound(xs, gated=True) > MAX_STEP_ROUNDING:
            return False
        numeric = rx.is_numerical(self.graph.expr(node))
        budget = self.budgets.budget(node) if numeric else MAX_ONE_HOT_ERROR
        # Components are bounded independently, so the functions' rows are bounded side by
        # side, as many at once as numerical.BOUND_CHUNK allows (the xs part is shared).
        batch = max(1, numerical.BOUND_CHUNK // max(1, len(xs) * self.spaces[node].dim))
        for start in range(0, len(functions), batch):
            rows = np.hstack([self._rows(node, f, xs) for f in functions[start:start + batch]])
            if not numerical.discretiser_error_bounds(xs, rows, gated).max(initial=0.0) <= budget:
                return False
        return True

    def _rows(self, node, output_of, xs) -> np.ndarray:
        """The output vectors output_of(x) in the node's space, one row per x."""
        space = self.spaces[node]
        rows = zeros_matrix(len(xs), space.dim)
        for i, x in enumerate(xs):
            for direction, value in output_of(x).items():
                rows[i, space.index[direction]] += value
        return rows

    def _noise(self, sop) -> float:
        """A bound on the float32 error of a categorical SOp's one-hot, as its readers see
        it: what it is written with, and with a LayerNorm what the LayerNorm adds."""
        written = self._written_noise(sop)
        if self.layer_norm is None:
            return written
        return written + self.layer_norm.one_hot_error(self.spaces[sop.unique_id].dim)

    def written_error(self, block: NodeBlock) -> float:
        """A bound on the L1 float32 error of what `block` writes to the residual: its
        SOp's (a number's budget, a one-hot's noise), and a width's scratch."""
        expr = self.graph.expr(block.node)
        error = self.budgets.budget(block.node) + self.budgets.read_error(block.node) \
            if rx.is_numerical(expr) else self._written_noise(expr)
        own = set(self.spaces[block.node].basis)
        if any(d not in own for part in block.parts() for d in part.writes.basis):
            # a width's scratch: its bound where _counting recorded it, else its window
            error += self.layer_norm.written_scratch.get(
                block.node, 2 * scratch_tolerance(self.max_seq_len))
        return error

    def _written_noise(self, sop) -> float:
        """`_noise` as written: with a LayerNorm no lookup reads an exact one-hot, and
        lookups of noisy ones carry LOOKUP_NOISE."""
        if isinstance(sop, EMBEDDED):
            return 0.0
        plain = self._plain_noise(sop)
        return LOOKUP_NOISE if self.layer_norm is not None and plain == 0.0 else plain

    def _plain_noise(self, sop) -> float:
        if isinstance(sop, EMBEDDED) or self._exact_lookup(sop):
            return 0.0
        if isinstance(sop, rx.Map) and rx.is_numerical(sop.inner):
            result = self._map_result(sop.unique_id)
            xs = _merge_indistinguishable(sop, self.values[sop.inner.unique_id].values, result)
            bound = numerical.one_hot_error_bound(xs, self._rows(sop.unique_id, result, xs))
            # beyond budget it was built as classes then a clean lookup
            return bound if bound <= MAX_ONE_HOT_ERROR else clean_lookup.error_bound(1.0)
        if isinstance(sop, rx.SelectorWidth):
            return _width_noise(self.max_seq_len)
        return LOOKUP_NOISE

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

    def _linear(self, node, expr) -> NodeBlock:
        """a·x + b·y in one MLP. A term that is a numerical Map of an exact categorical c
        (tokens, indices, lookups of those) is read from c's one-hot, Σ_v f(v)·[c = v],
        so the Map needs no layer of its own and adds no error."""
        terms, nonnegative, inputs, bounded = [], set(), [], []
        for sop, coefficient in ((expr.fst, expr.fst_fac), (expr.snd, expr.snd_fac)):
            source = self._exact_categorical_source(sop) if self.fold else None
            if source is None:
                terms.append((self.spaces[sop.unique_id].basis[0], coefficient))
                inputs.append(sop.unique_id)
            else:
                result = self._map_result(sop.unique_id)
                direction = self.spaces[sop.unique_id].basis[0]
                for d in self.spaces[source.unique_id].basis:
                    terms.append((d, coefficient * float(result(d.value).get(direction, 0.0))))
                    nonnegative.add(d)
                inputs.append(source.unique_id)
            values = [float(v) for v in self.values[sop.unique_id].values]
            bounded.append((None if source is not None else sop.unique_id, coefficient, values))
        block = numerical.linear_mlp(terms, self.spaces[node].basis[0],
                                     f"{self._label(node)}.hidden",
                                     self._info(node, "linear_sequence_map"),
                                     frozenset(nonnegative))
        self.budgets.linear(node, expr, bounded, block.hidden_space.dim)
        return NodeBlock(node, block, tuple(dict.fromkeys(inputs)))

    def _exact_categorical_source(self, sop):
        """c where `sop` is a numerical Map of categorical c whose one-hot is exact."""
        if isinstance(sop, rx.Map) and not rx.is_numerical(sop.inner) \
                and not isinstance(sop.inner, rx.SelectorWidth) and self._noise(sop.inner) == 0.0:
            return sop.inner
        return None

    def _largest(self, node) -> float:
        """The largest magnitude of a numerical SOp's values (0 if they are not known)."""
        return max((abs(float(v)) for v in self.values[node].values), default=0.0)


@functools.lru_cache(maxsize=64)
def _width_noise(max_seq_len: int) -> float:
    """The float32 error bound of a SelectorWidth's one-hot: a constant of N."""
    widths = range(max_seq_len + 1)
    return numerical.one_hot_error_bound([1 / (w + 1) for w in widths], np.eye(len(widths)))


def _check_width(expr, block: NodeBlock):
    width = sum(part.hidden_space.dim for part in block.parts() if isinstance(part, MLP))
    if width > MAX_MLP_WIDTH:
        raise CompileError(expr, f"it needs an MLP with {width:,} hidden units "
                           f"(more than {MAX_MLP_WIDTH:,})", REDUCE_VALUES_HINT)


def _merge_indistinguishable(expr, xs, result) -> list[float]:
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
