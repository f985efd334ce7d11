"""Realism knobs: compiled models that look less like compiled models, with exact truth.

Each knob takes a `CompiledModel` and gives an ordinary one (same API, exports, save/load)
whose ground truth was carried through the same transformation, never rebuilt:

  - `rotate(model, seed)`: a seeded random orthogonal change of the residual basis (with
    LayerNorm, one that fixes the all-ones vector); the truth's `residual_basis` says
    where every named direction went;
  - `permute_neurons(model, seed)`: each MLP block's hidden units shuffled and scaled by
    powers of two (exact under ReLU); the truth's `units` / `unit_scales` follow them;
  - `perturb(model, seed, scale=None)`: uniform noise of at most `scale` on every weight,
    zeros included, at the largest scale the error bound (interp.realism_bounds) accepts;
  - `recheck_truth(model)`: path patching confirms the (carried) truth on a dataset.

A knob is recorded in `model.knobs` (saved with the model and shown by `raspc report`);
rotate and perturb refuse (KnobError) a model their error bound cannot prove exact.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from rasp.errors import KnobError
from rasp_runtime.model import CompiledModel

# Power-of-two scales for hidden units: multiplying and dividing by them is exact in float.
UNIT_SCALES = (0.5, 1.0, 2.0, 4.0)
# Noise scales searched for `perturb(scale=None)`: bisection steps on a log scale.
SCALE_SEARCH_STEPS = 40
# The largest |cos| a rotated named direction may keep with a coordinate axis.
MAX_AXIS_COSINE = 0.9
# Smallest group of coordinates `rotate` mixes (a 2×2 or 3×3 group stays near the axes).
MIN_BLOCK = 4
# Modules whose weights read the residual (rows = residual) or write it (columns).
_READERS = ("attn/query", "attn/key", "attn/value", "mlp/linear_1", "unembed")
_WRITERS = ("token_embed", "pos_embed", "attn/linear", "mlp/linear_2")


def rotate(model: CompiledModel, seed: int, block: int | None = None) -> CompiledModel:
    """`model` with its residual stream in a seeded random orthonormal basis.

    Every reader's weights become Rᵀ W and every writer's W R, so outputs are unchanged
    in exact arithmetic. R mixes the coordinates in random groups of `block` (a random
    permutation, then a Haar rotation per group); block=None takes the whole residual
    if the float32 error bound (interp.realism_bounds) accepts it, else halves the
    groups until it does (at least MIN_BLOCK). A given `block` is refused (KnobError)
    when the bound fails. The block used is recorded in the knob.

    With LayerNorm (uniform gain, zero offset, as compiled) R fixes the all-ones vector:
    it rotates only the subspace orthogonal to it (within each group), so the mean and
    the norm LayerNorm computes, hence LayerNorm itself, commute with R. Its own two
    coordinates, balance and mean_probe, stay on their axes (no reader reads the balance,
    whose size is that of the whole content), so the mean-probe reads still cancel the
    computed mean (docs/realism.md).
    """
    fixed = _norm_coordinates(model, "rotate")
    truth = model.ground_truth
    from interp.realism_bounds import named_magnitudes
    magnitudes = named_magnitudes(model, truth)  # basis-free: the same after rotating
    d = model.config.d_model
    sizes = [block] if block is not None else \
        [d] + [b for b in (2 ** k for k in range(d.bit_length() - 1, 1, -1)) if b < d]
    for size in sizes:
        rotation = random_rotation(d, seed, size, bool(fixed), fixed)
        params = _change_basis(model.params, rotation)
        basis = truth.direction_vectors() @ rotation
        new_truth = dataclasses.replace(truth, residual_basis=tuple(map(tuple, basis)))
        if size == sizes[-1]:
            _require_bound(model, params, new_truth, 0.0, "rotate", magnitudes,
                           smallest=size <= MIN_BLOCK)
        elif not _bound(model, params, new_truth, 0.0, magnitudes).accepted:
            continue
        knob = {"knob": "rotate", "seed": int(seed), "block": int(min(size, d - len(fixed)))}
        return _knobbed(model, params, new_truth, knob)
    raise AssertionError("unreachable: the last size raises or returns")


def random_rotation(d: int, seed: int, block: int | None = None, keep_ones: bool = False,
                    fixed: tuple[int, ...] = ()) -> np.ndarray:
    """A seeded random orthogonal d×d matrix (float64): a random permutation of the
    coordinates, then a Haar-random rotation within each group of about `block` (the
    whole space by default). Each group is redrawn until its entries all stay below
    MAX_AXIS_COSINE in size, so no named direction keeps a coordinate axis.
    keep_ones: each group's rotation fixes the group's all-ones vector (it is Haar on the
    orthogonal complement), so the matrix fixes the all-ones vector of the residual.
    `fixed` coordinates stay on their axes; the others are grouped and rotated."""
    moved = d - len(fixed)
    block = moved if block is None else block
    if block < MIN_BLOCK and block < moved or moved < 2:
        raise KnobError(f"rotate needs groups of at least {MIN_BLOCK} coordinates and "
                        f"at least 2 to rotate, got block {block} and {moved}")
    rng = np.random.default_rng(seed)
    order = np.setdiff1d(np.arange(d), fixed)[rng.permutation(moved)]
    # Groups of about `block`; keeping the all-ones vector, none smaller than `block`
    # (a group of 2 then has only the identity and the swap, both axis-aligned).
    count = max(1, moved // block) if keep_ones else -(-moved // block)
    groups = np.array_split(order, count)
    rotation = np.diag(np.isin(np.arange(d), fixed).astype(np.float64))
    for group in groups:
        rotation[np.ix_(group, group)] = _haar(rng, len(group), keep_ones)
    return rotation


def _haar(rng, size: int, keep_ones: bool = False) -> np.ndarray:
    inner = size - 1 if keep_ones else size
    reflect = _ones_reflection(size) if keep_ones else None
    for _ in range(1000):
        q, r = np.linalg.qr(rng.standard_normal((inner, inner)))
        q = q * np.sign(np.diag(r))  # the sign fix makes the draw Haar-distributed
        if keep_ones:  # q acts on the complement of 1: H·diag(1, q)·H, with H e₁ = 1/√size
            q = reflect @ _direct_sum(np.eye(1), q) @ reflect
        if np.max(np.abs(q)) < MAX_AXIS_COSINE:
            return q
    raise KnobError(f"no rotation of {size} coordinates kept every entry below "
                    f"{MAX_AXIS_COSINE} in 1000 draws")


def _ones_reflection(size: int) -> np.ndarray:
    """The Householder reflection H (symmetric, orthogonal) that swaps e₁ and 1/√size."""
    v = np.full(size, 1 / np.sqrt(size))
    v[0] -= 1.0
    norm = np.linalg.norm(v)
    if norm == 0:  # size 1: e₁ is already the all-ones vector
        return np.eye(size)
    v /= norm
    return np.eye(size) - 2 * np.outer(v, v)


def _direct_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((len(a) + len(b), len(a) + len(b)))
    out[:len(a), :len(a)], out[len(a):, len(a):] = a, b
    return out


def permute_neurons(model: CompiledModel, seed: int) -> CompiledModel:
    """`model` with each MLP block's hidden units shuffled and scaled by powers of two.

    ReLU commutes with permutations and positive scalings, and a power of two times a
    float32 is exact, so outputs are bit-for-bit unchanged (barring the summation order
    of the second MLP matrix). Units stay inside their block's `hidden` range; the truth's
    `units` give each unit's new column, `unit_scales` its scale.
    """
    rng = random.Random(seed)
    truth = model.ground_truth
    params = {m: dict(w) for m, w in model.params.items()}
    components = []
    for c in truth.components:
        if c.kind != "mlp" or c.hidden is None:
            components.append(c)
            continue
        prefix = f"transformer/layer_{c.layer}/mlp"
        start, stop = c.hidden
        old = list(c.units or range(start, stop))
        old_scales = list(c.unit_scales or [1.0] * len(old))
        order = list(range(start, stop))
        rng.shuffle(order)                   # new column of the unit at old column start + i
        scales = [rng.choice(UNIT_SCALES) for _ in order]
        first, bias, second = (np.array(params[f"{prefix}/linear_1"]["w"]),
                               np.array(params[f"{prefix}/linear_1"]["b"]),
                               np.array(params[f"{prefix}/linear_2"]["w"]))
        new_first, new_bias, new_second = first.copy(), bias.copy(), second.copy()
        for i, (column, scale) in enumerate(zip(order, scales)):
            new_first[:, column] = first[:, start + i] * np.float32(scale)
            new_bias[column] = bias[start + i] * np.float32(scale)
            new_second[column] = second[start + i] / np.float32(scale)
        params[f"{prefix}/linear_1"] = {"w": new_first, "b": new_bias}
        params[f"{prefix}/linear_2"] = {**params[f"{prefix}/linear_2"], "w": new_second}
        moved = {start + i: (column, scale) for i, (column, scale) in enumerate(zip(order, scales))}
        components.append(dataclasses.replace(
            c, units=tuple(moved[u][0] for u in old),
            unit_scales=tuple(s * moved[u][1] for u, s in zip(old, old_scales))))
    new_truth = dataclasses.replace(truth, components=tuple(components))
    return _knobbed(model, params, new_truth, {"knob": "permute_neurons", "seed": int(seed)})


def perturb(model: CompiledModel, seed: int, scale: float | None = None) -> CompiledModel:
    """`model` with seeded noise, uniform in [−scale, scale], added to every weight.

    scale=None takes the largest scale the error bound accepts (interp.realism_bounds: no
    read's worst-case error, rounding of the now dense sums included, exceeds its margin,
    so every reader still decodes the same values and the truth is unchanged); a given
    `scale` is refused when the bound fails. The scale used is recorded in the knob.
    """
    _norm_coordinates(model, "perturb")  # LayerNorm as compiled: the bound covers it
    from interp.realism_bounds import named_magnitudes
    truth = model.ground_truth
    magnitudes = named_magnitudes(model, truth)
    if scale is None:
        scale = largest_scale(model, truth, magnitudes)
    elif not scale > 0:
        raise KnobError(f"perturb's scale must be a number > 0, got {scale!r}")
    _require_bound(model, model.params, truth, float(scale), "perturb", magnitudes)
    rng = np.random.default_rng(seed)
    params = {m: {n: (np.asarray(a, np.float64)
                      + rng.uniform(-scale, scale, np.shape(a))).astype(np.float32)
                  for n, a in sorted(w.items())} for m, w in sorted(model.params.items())}
    knob = {"knob": "perturb", "seed": int(seed), "scale": float(scale)}
    return _knobbed(model, params, truth, knob)


def largest_scale(model: CompiledModel, truth=None, magnitudes=None) -> float:
    """The largest noise scale whose error bound `perturb` accepts (bisection, from below)."""
    from interp.realism_bounds import named_magnitudes
    truth = truth or model.ground_truth
    magnitudes = named_magnitudes(model, truth) if magnitudes is None else magnitudes
    accepts = lambda s: _bound(model, model.params, truth, s, magnitudes).accepted  # noqa: E731
    tiny = np.finfo(np.float64).tiny
    if not accepts(tiny):
        bound = _bound(model, model.params, truth, tiny, magnitudes)
        if bound.layer_norm == float("inf"):
            raise _layer_norm_refusal("perturb", "at any noise scale")
        raise KnobError(f"perturb cannot keep this model exact at any noise scale: rounding "
                        f"alone, once every weight is non-zero, would equal moving a read's "
                        f"input by {bound.read_error:.3g}, over the margin {bound.margin:.3g}; "
                        "perturb a model with a smaller d_model" + " (or before rotating it)"
                        * (truth.residual_basis is not None))
    low, high = 0.0, 1.0
    while accepts(high):
        low, high = high, high * 2
    low = _bisect(accepts, low, high)
    if low == 0.0:  # below the bisection's resolution: halve down to an accepted scale
        while not accepts(high / 2):
            high /= 2
        low = _bisect(accepts, high / 2, high)
    return low


def _bisect(accepts, low: float, high: float) -> float:
    """The largest accepted scale in [low, high) to SCALE_SEARCH_STEPS halvings."""
    for _ in range(SCALE_SEARCH_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if accepts(middle) else (low, middle)
    return low


def _bound(model, params, truth, scale, magnitudes):
    from interp.realism_bounds import knob_error
    return knob_error(model, params, truth, scale, magnitudes)


def _require_bound(model, params, truth, scale, knob, magnitudes, smallest=False):
    """KnobError unless the bound accepts; `smallest`: no smaller rotation group is left."""
    bound = _bound(model, params, truth, scale, magnitudes)
    if bound.layer_norm == float("inf"):
        raise _layer_norm_refusal(knob, "in any group size" if smallest else "")
    if not bound.accepted:
        from_norm = f" ({bound.layer_norm:.3g} of it from LayerNorm)" if bound.layer_norm else ""
        advice = f" (scale {scale:.3g}); use a smaller scale or scale=None" if scale else ""
        raise KnobError(f"{knob} cannot keep this model exact: a read's worst-case error "
                        f"would equal moving its input by {bound.read_error:.3g}{from_norm}, "
                        f"over the margin {bound.margin:.3g}{advice}")


def _layer_norm_refusal(knob: str, at: str) -> KnobError:
    """The refusal of a knob under which LayerNorm's statistics leave the read bound's
    assumptions (`at`: "at any noise scale" or "in any group size" where no smaller
    scale or group helps)."""
    advice = "compile without layer_norm or for a shorter max_seq_len" if at else \
        "rotate in smaller groups (block), perturb at a smaller scale, or compile without " \
        "layer_norm"
    return KnobError(f"{knob} cannot keep this model exact{' ' + at if at else ''}: LayerNorm's "
                     "computed mean or scale error may exceed what the read bound assumes "
                     f"(interp.realism_bounds.MEAN_SLACK, NORM_SLACK); {advice}")


def _norm_coordinates(model, knob: str = "rotate") -> tuple[int, ...]:
    """The balance and mean-probe coordinates of a LayerNorm model (compiler.layer_norm
    puts them last), () without LayerNorm. KnobError unless every gain is one number on
    every coordinate and every offset is zero, as compiled: then LayerNorm commutes with
    any rotation that fixes the all-ones vector."""
    if model.config.normalization == "none":
        return ()
    if model.config.normalization != "layernorm":
        raise KnobError(f"{knob} does not support normalization "
                        f"{model.config.normalization!r}; use a model without it or with "
                        "compiled LayerNorm (layer_norm=True)")
    for module, weights in sorted(model.params.items()):
        if "scale" in weights and (np.ptp(weights["scale"]) != 0 or np.any(weights["offset"])):
            raise KnobError(f"{knob} needs every LayerNorm gain equal on all coordinates and "
                            f"every offset zero, as compiled; {module} is not")
    d = model.config.d_model
    labels = model.residual_labels[-2:]
    if not (labels[0].startswith("balance") and labels[1].startswith("mean_probe")):
        raise KnobError(f"{knob} expects a LayerNorm model's last two residual directions to "
                        f"be its balance and mean probe, got {labels}; compile it again")
    return d - 2, d - 1


def _change_basis(params, rotation: np.ndarray):
    """Params with the residual in the basis `rotation` (row i: axis i's new vector)."""
    out = {}
    for module, weights in params.items():
        reads = module.endswith(_READERS)
        writes = module.endswith(_WRITERS)
        out[module] = {}
        for name, array in weights.items():
            a = np.asarray(array, np.float64)
            if reads and name == "w":
                a = rotation.T @ a
            elif writes and name in ("w", "b", "embeddings"):
                a = a @ rotation
            out[module][name] = a.astype(np.float32)
    return out


def _knobbed(model: CompiledModel, params, truth, knob: dict) -> CompiledModel:
    """A new model with `params`, the same records, and `truth` carried along."""
    new = CompiledModel(params, model.config, model.residual_labels, model.components,
                        model.value_records.values(), model.program, model.saved_alignment,
                        model.domain)
    new.source = model.source
    new.knobs = [*model.knobs, knob]
    new.saved_truth = truth.to_json()
    return new


@dataclasses.dataclass(frozen=True)
class TruthCheck:
    """What path patching found of a model's truth: edges checked and those that failed."""

    edges: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every edge behaved as the truth says."""
        return not self.failures

    def raise_if_failed(self):
        """Raise KnobError (one line, the first failure) when the truth failed."""
        if self.failures:
            raise KnobError(f"the model's ground truth fails the path-patching re-check on "
                            f"{len(self.failures)} edges, e.g. {self.failures[0]}; do not "
                            "score this variant")


def recheck_truth(model: CompiledModel, source=None, pairs: int = 32, seed: int = 0,
                  granularity: str = "component", task: str | None = None,
                  dataset=None) -> TruthCheck:
    """Path patching against the model's (carried) ground truth, edge by edge.

    Every edge off the true circuit must change no decoded output on any pair, and every
    true edge that is neither constant nor inert must change some output (one that changes
    nothing on the drawn pairs is tried again on eight times as many). `source` is
    what `interp.circuits.make_dataset` draws from (default: the library example the
    model came from, else uniform tokens of the vocabulary). `task`: a several-task
    model's task, whose circuit is checked (give a source of that task's inputs, e.g.
    `examples.multitask.task_sampler`). `dataset`: check on this `make_dataset` of the
    model instead of drawing one (pairs is then not used; a quiet edge is tried again
    on draws from `source` only when it is given).
    """
    from interp.circuits import make_dataset
    can_draw = dataset is None or source is not None
    source = _default_source(model) if source is None else source
    if dataset is None:
        dataset = make_dataset(source, model, pairs, seed)
    checked, failures, quiet = _patch_every_edge(dataset, granularity, task)
    if can_draw and quiet:
        # A true edge that changed nothing may only lack a pair where it matters (a rare
        # bracket pattern, say): re-check just those edges on eight times the pairs.
        larger = make_dataset(source, model, len(dataset) * ESCALATION, seed + 1)
        _, _, quiet = _patch_every_edge(larger, granularity, task, only=quiet)
    failures += [f"{u} -> {v} is on the circuit but changes nothing" for u, v in quiet]
    return TruthCheck(checked, tuple(failures))


ESCALATION = 8  # how many times the pairs a quiet true edge is re-checked on


def _patch_every_edge(dataset, granularity: str, task: str | None, only=None):
    """(edges checked, failures, true live edges that changed nothing) on `dataset`;
    `only`: patch just these edges, each of which must change something (being inert on
    this draw is no excuse: it was not inert on the first)."""
    from interp.circuits.patching import changed_pairs, patched_logits, scorable_edges
    truth = dataset.hooked.truth
    true_graph = truth.circuit_graph(granularity, task=task)
    inert = truth.inert(dataset, granularity, task=task)
    edges = [e for e in scorable_edges(truth, granularity)
             if only is None or (e[0], e[1]) in only]
    if not edges:
        return 0, [], []
    masks = np.stack([dataset.hooked.wiring.mask([a]) for *_, a in edges])
    changed = changed_pairs(dataset, patched_logits(dataset, masks))
    failures, quiet = [], []
    for (u, v, _), moved in zip(edges, changed):
        if not true_graph.has_edge(u, v):
            if moved.any():
                failures.append(f"{u} -> {v} is off the circuit but changes the output")
        elif true_graph.edges[u, v]["constant"] or (only is None and (u, v) in inert):
            if moved.any():
                failures.append(f"{u} -> {v} is constant or inert but changes the output")
        elif not moved.any():
            quiet.append((u, v))
    return len(edges), failures, quiet


def _default_source(model: CompiledModel):
    """The library example's sampler for an example model, else uniform tokens."""
    source = model.source or {}
    if source.get("kind") == "example":
        from examples.library import EXAMPLES
        if source.get("name") in EXAMPLES:
            return EXAMPLES[source["name"]]
    return lambda rng, vocab, length: [rng.choice(vocab) for _ in range(length)]


def describe_knobs(model: CompiledModel) -> str:
    """The model's knobs in order, e.g. "rotate (seed 1), perturb (seed 3, scale 5.2e-07)";
    "none" for a plain compiled model."""
    parts = []
    for knob in model.knobs:
        details = [f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                   for key, value in knob.items() if key != "knob"]
        parts.append(f"{knob['knob']} ({', '.join(details)})" if details else knob["knob"])
    return ", ".join(parts) or "none"


def apply_knobs(model: CompiledModel, rotate_seed: int | None = None,
                permute_seed: int | None = None, perturb_seed: int | None = None,
                scale: float | None = None) -> CompiledModel:
    """The knobs whose seeds are given, in the order rotate, permute_neurons, perturb."""
    if rotate_seed is not None:
        model = rotate(model, rotate_seed)
    if permute_seed is not None:
        model = permute_neurons(model, permute_seed)
    if perturb_seed is not None:
        model = perturb(model, perturb_seed, scale)
    return model
