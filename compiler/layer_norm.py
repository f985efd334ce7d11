"""Pre-LN models that stay exact: the balance coordinate, the epsilon anchor, the proof.

`compile_rasp_to_model(..., layer_norm=True)` builds its blocks with a `LayerNormReads`:
every read goes through a LayerNorm, which may move each coordinate x̂ᵢ a reader sees by
up to COORDINATE_ALLOWANCE + RELATIVE_ALLOWANCE·|x̂ᵢ|, so the numerical budgets, one-hot
noise and width heads of compiler.blocks are charged that much. `with_layer_norm` then
turns the assembled model into a pre-LN one and proves the allowances hold (craft.
float_bounds.layer_norm_error, probed_read_error), or raises a CompileError naming the
SOp whose error breaks them. Three parts (see docs/compiler.md, "LayerNorm"):
  - a `balance` coordinate, written by every writer as minus the sum of what it writes
    elsewhere: every residual sums to zero, so the mean LayerNorm computes is only the
    writers' rounding;
  - a `mean_probe` coordinate that nothing writes: after LayerNorm it holds −mean, and
    every reader reads it with minus the sum of its weights, so the mean cancels in
    every read;
  - LayerNorm's epsilon is a power of four E far above the residual's variance and its
    gain is √E (offset 0): the normaliser is x·√E/√(var + E), within VARIANCE_SHARE of x.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from compiler.graph import ProgramGraph
from craft import float_bounds
from craft.bases import BOS, ONE, VectorSpace
from craft.maps import BilinearForm
from rasp import expr as rx
from rasp.errors import CompileError
from rasp.traverse import fresh_name
from rasp_runtime.model import CompiledModel

BALANCE, MEAN_PROBE = "balance", "mean_probe"  # the two residual labels it adds
# What a read through LayerNorm may err by per unit of |weight| (A of float_bounds.
# probed_read_error): the blocks are charged it, with_layer_norm proves it per model.
COORDINATE_ALLOWANCE = 2.0 ** -24
# E is chosen so that the residual's variance moves the normaliser by at most this.
VARIANCE_SHARE = 2.0 ** -27
_SCALE = VARIANCE_SHARE + (float_bounds.SQRT_ULPS + 3.01) * float_bounds.UNIT_ROUNDOFF
# The relative error of a read (ρ' of float_bounds.probed_read_error at VARIANCE_SHARE).
RELATIVE_ALLOWANCE = _SCALE + (1 + _SCALE) * 2.02 * float_bounds.UNIT_ROUNDOFF
# A width's scratch direction holds (1+c)/(w+1) − c, c < 1 (craft.selector_width): below 2.
SCRATCH_MAGNITUDE = 2.0
# What the LayerNorm before an MLP adds to the MLP's own bound (craft.float_bounds.NormedRead).
NORMED_READ = float_bounds.NormedRead(COORDINATE_ALLOWANCE, RELATIVE_ALLOWANCE)


@dataclasses.dataclass
class LayerNormReads:
    """What a read through LayerNorm may err by, and (filled in by compiler.blocks) a bound
    on the error each SOp's coordinates carry in the residual (L1 over its directions,
    a width's scratch included)."""

    written: dict[int, float] = dataclasses.field(default_factory=dict)
    # A width's scratch error bound (absolute), by the width's node (compiler.attention_blocks).
    written_scratch: dict[int, float] = dataclasses.field(default_factory=dict)

    @staticmethod
    def read_error(magnitude: float) -> float:
        """The most a LayerNorm moves one coordinate of magnitude ≤ `magnitude`."""
        return COORDINATE_ALLOWANCE + RELATIVE_ALLOWANCE * magnitude

    @staticmethod
    def one_hot_error(dim: int) -> float:
        """The most a LayerNorm moves a one-hot of `dim` directions (L1: each direction
        by the coordinate allowance, the hot one by its relative error too)."""
        return dim * COORDINATE_ALLOWANCE + RELATIVE_ALLOWANCE

    @staticmethod
    def scratch_error(max_seq_len: int, shift: float) -> float:
        """The most LayerNorms move a width's scratch, relative to (1+c)/(w+1) as
        craft.selector_width.scratch_error measures it: the head's value read (its `bos`
        and `one` weights sum to at most 1 + 2c) by A + ρ' per unit weight, and the MLP's
        read of the scratch by 2.03u (its x̃, float_bounds.NormedRead; the rest is in the
        discretiser's bound), over (1+c)/(N+1) at least."""
        absolute = 2 * (COORDINATE_ALLOWANCE + RELATIVE_ALLOWANCE) * (1 + 2 * shift)
        return absolute * (max_seq_len + 1) / (1 + shift)

    @staticmethod
    def logit_error(scores: BilinearForm) -> float:
        """The most a LayerNorm before a head moves a logit q·M·k, for one-hot query and
        key groups (as craft.attention.logit_error_bound: at most one active direction
        per group, so ‖q‖₁ ≤ groups): max|M|·(‖Δq‖₁‖k‖₁ + ‖q‖₁‖Δk‖₁ + ‖Δq‖₁‖Δk‖₁)."""
        sides = []
        for space in (scores.query_space, scores.key_space):
            groups = len({name for name, _ in space.basis})
            sides.append((groups, space.dim * COORDINATE_ALLOWANCE
                          + RELATIVE_ALLOWANCE * groups))
        (a, da), (b, db) = sides
        largest = float(np.abs(scores.matrix).max(initial=0.0))
        return largest * (da * b + a * db + da * db)


@dataclasses.dataclass(frozen=True)
class LayerNormProof:
    """The numbers with_layer_norm proved, given |Σx̂| ≤ residual_sum, Σ|x̂| ≤ magnitude and
    Σx̂² ≤ square_sum: eps; (mean, scale) of float_bounds.layer_norm_error; (absolute,
    relative) of float_bounds.probed_read_error: every read errs by at most
    absolute·Σ|wᵢ| + relative·Σ|wᵢx̂ᵢ| more than without LayerNorm."""

    eps: float
    mean: float
    scale: float
    absolute: float
    relative: float
    residual_sum: float
    magnitude: float
    square_sum: float


def with_layer_norm(model: CompiledModel, graph: ProgramGraph, values: dict,
                    spaces: dict[int, VectorSpace], reads: LayerNormReads) -> CompiledModel:
    """`model` (built with `reads`) as a pre-LN model with balance and mean-probe
    coordinates, exact within the allowances `reads` charged; CompileError naming the SOp
    whose error breaks COORDINATE_ALLOWANCE otherwise. The proof is kept as
    `model.layer_norm_proof`."""
    labels = model.residual_labels
    d = len(labels) + 2
    group_sum = _group_sum(graph, values, spaces, labels)
    written = sum(reads.written.values())
    content = group_sum + written            # Σ over groups of |group's sum|, with errors
    magnitude, square_sum = 2 * content, 2 * content ** 2  # the balance doubles each
    eps = _epsilon(d, magnitude, square_sum)
    widest = max((w.shape[0] for module, p in model.params.items() for w in p.values()
                  if w.ndim == 2 and module != "unembed"), default=1)
    sublayers = 2 * len(model.config.layers) + 2
    residual_sum = (2 * written + float_bounds.gamma(widest + 1) * magnitude
                    + sublayers * float_bounds.UNIT_ROUNDOFF * magnitude)
    mean, scale = float_bounds.layer_norm_error(d, magnitude, residual_sum, square_sum, eps)
    absolute, relative = float_bounds.probed_read_error(d, mean, scale)
    if absolute > COORDINATE_ALLOWANCE:
        worst = max(reads.written, key=reads.written.get, default=None)
        raise CompileError(graph.expr(worst) if worst is not None else None,
                           f"every LayerNorm's mean may reach {mean:.2g}, and reading past it "
                           f"may err by {absolute:.2g} per unit weight, more than the "
                           f"{COORDINATE_ALLOWANCE:.2g} each read is charged: the residual's "
                           "float32 errors (this SOp's the largest) do not cancel in its sum",
                           "compile without layer_norm")
    assert relative <= RELATIVE_ALLOWANCE, (relative, RELATIVE_ALLOWANCE)  # _epsilon's choice
    params = _balanced(model.params)
    gain = np.full(d, math.sqrt(eps), np.float32)
    norm = {"scale": gain, "offset": np.zeros(d, np.float32)}
    for i, layer in enumerate(model.config.layers):
        if layer.num_heads:
            params[f"transformer/layer_{i}/ln_1"] = dict(norm)
        if layer.mlp_hidden:
            params[f"transformer/layer_{i}/ln_2"] = dict(norm)
    params["transformer/ln_final"] = dict(norm)
    config = dataclasses.replace(model.config, d_model=d, normalization="layernorm",
                                 layer_norm_eps=eps)
    taken = set(labels)  # an SOp may be called `balance` (dyck's is)
    added = [fresh_name(BALANCE, taken), fresh_name(MEAN_PROBE, taken)]
    result = CompiledModel(params, config, labels + added, model.components,
                           model.value_records.values(), model.program, domain=model.domain)
    result.layer_norm_proof = LayerNormProof(eps, mean, scale, absolute, relative, residual_sum,
                                             magnitude, square_sum)
    return result


def _group_sum(graph: ProgramGraph, values: dict, spaces: dict[int, VectorSpace],
               labels: list[str]) -> float:
    """Σ over the residual's groups of the largest |sum of the group's coordinates|: a
    categorical SOp's one-hot 1 (None: 0), a numerical SOp its largest |value|, `one` and
    `bos` 1 each, a width's scratch SCRATCH_MAGNITUDE."""
    present = set(labels)
    total, covered = 0.0, set()
    for node, space in spaces.items():
        names = [str(d) for d in space.basis if str(d) in present]
        if not names or names[0] in covered:
            continue
        covered.update(names)
        if rx.is_numerical(graph.expr(node)):
            total += max((abs(float(v)) for v in values[node].values), default=0.0)
        else:
            total += 1.0
    for label in labels:
        if label not in covered:
            total += 1.0 if label in (str(ONE), str(BOS)) else SCRATCH_MAGNITUDE
    return total


def _epsilon(d: int, magnitude: float, square_sum: float) -> float:
    """The smallest power of four E with layer_norm_error's variance share ≤ VARIANCE_SHARE."""
    variance = (1 + float_bounds.gamma(d + 2)) * square_sum * (1 + 2 ** -20) / d
    exponent = max(0, math.ceil(math.log(variance / (2 * VARIANCE_SHARE), 4)))
    while float_bounds.layer_norm_error(d, magnitude, 0.0, square_sum, 4.0 ** exponent)[1] \
            > _SCALE * (1 - 1e-9):
        exponent += 1
    return 4.0 ** exponent


def _balanced(params: dict) -> dict:
    """The parameters with two last residual coordinates. Balance: writers (embeddings,
    attention output, MLP output) write minus the sum of each row there, readers read it
    with 0. Mean probe: no writer writes it, every reader (query, key, value, MLP input,
    unembedding) reads it with minus the sum of each column."""
    out = {}
    for module, weights in params.items():
        out[module] = {}
        for name, w in weights.items():
            w = np.asarray(w)
            writer = module.endswith(("/attn/linear", "/mlp/linear_2")) or \
                module in ("token_embed", "pos_embed")
            # sums in float64, each rounded once to float32
            if writer:
                balance = -w.astype(np.float64).sum(axis=-1, keepdims=True)
                w = np.concatenate([w, balance.astype(np.float32), np.zeros_like(balance)],
                                   axis=-1)
            elif name == "w":
                probe = -w.astype(np.float64).sum(axis=0, keepdims=True)
                w = np.concatenate([w, np.zeros_like(probe), probe], axis=0)
            out[module][name] = w.astype(np.float32, copy=False)
    return out
