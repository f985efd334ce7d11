"""Clean/corrupted input pairs for one example, and the faithfulness metrics.

`make_dataset(example, model, pairs, seed)` draws seeded clean inputs from the
example's sampler (or a sampler function, or a list of inputs) and, for each, a corrupted input of the same length from the
same sampler (resampling). A `Dataset` holds both padded to the model's width,
and answers `differs(writer, indices)` for `GroundTruth.inert`.

Metrics compare a patched output with the clean output, per pair, over the real
positions 1..n (BOS and PAD are left out):
  - categorical output: `kl_divergence`, KL(p_clean || p_patched) where p is the
    softmax of the output logits (the unembedding columns, one per output value)
    at each position, averaged over positions;
  - numerical output: `mse`, the squared difference of the output value,
    averaged over positions.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

import rasp
from rasp_runtime.batch import encode_batch

# Carried values closer than this on every pair count as identical: float
# rounding and softmax leakage stay far below it, while two different values
# of any SOp differ by at least 1/(N+1)^2 (about 0.03 at N = 5).
INERT_TOLERANCE = 1e-5
# A knobbed model's (interp.realism) contributions carry the rounding of dense sums, about
# 1e-5 where a plain model's are exact; a quarter of the 1/(N+1)^2 value gap, at most this:
KNOBBED_INERT_TOLERANCE = 1e-3
MAX_DRAWS = 50  # resamples per input before giving up on a valid, different corruption


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Clean and corrupted inputs (lists of tokens without BOS) and their padded ids."""

    hooked: object   # interp.circuits.hooked.HookedModel
    clean: tuple[tuple, ...]
    corrupt: tuple[tuple, ...]

    def __len__(self):
        return len(self.clean)

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """clean/corrupt ids [P, S], valid [P, S] (not PAD), scored [P, S] (1..n)."""
        model = self.hooked.model
        out = {key: encode_batch(model, [[model.config.bos, *xs] for xs in inputs])
               for key, inputs in (("clean", self.clean), ("corrupt", self.corrupt))}
        out["valid"] = out["clean"] != model.input_encoder.encoding_map[model.config.pad]
        out["scored"] = out["valid"] & (np.arange(out["valid"].shape[1]) >= 1)[None]
        return out

    def forward(self, which: str, **patches) -> dict:
        """The hooked forward on the clean or corrupt inputs (with optional patches)."""
        a = self.arrays
        return self.hooked.run(self.hooked.weights, a[which], a["valid"], **patches)

    @cached_property
    def clean_run(self) -> dict:
        return self.forward("clean")

    @cached_property
    def corrupt_run(self) -> dict:
        return self.forward("corrupt")

    def differs(self, writer: str, indices) -> bool:
        """Whether `writer`'s values on these residual indices differ on some pair."""
        w = self.hooked.wiring.writer_index[writer]
        valid = self.arrays["valid"]
        gap = np.asarray(self.clean_run["contributions"][w]) \
            - np.asarray(self.corrupt_run["contributions"][w])
        # indices name directions; a rotated model (interp.realism) holds them off-axis
        gap = np.abs(self.hooked.truth.named(gap)[..., list(indices)])
        return bool(np.any(gap[valid] > self.inert_tolerance))

    @cached_property
    def inert_tolerance(self) -> float:
        """How far a writer's values may differ and still count as identical."""
        model = self.hooked.model
        if not model.knobs:
            return INERT_TOLERANCE
        gap = 1 / (model.config.max_seq_len + 1) ** 2
        return max(INERT_TOLERANCE, min(KNOBBED_INERT_TOLERANCE, gap / 4))

    def metric(self, logits) -> jnp.ndarray:
        """Per-pair metric of `logits` [P, S, out] against the clean logits (see module doc)."""
        return output_metric(self.hooked.model, self.clean_run["output"], logits,
                             self.arrays["scored"])


def kl_divergence(clean_logits, logits, scored) -> jnp.ndarray:
    """Per-row mean over scored positions of KL(softmax(clean) || softmax(logits))."""
    p_log = jax.nn.log_softmax(clean_logits, axis=-1)
    q_log = jax.nn.log_softmax(logits, axis=-1)
    per_position = jnp.sum(jnp.exp(p_log) * (p_log - q_log), axis=-1)
    return _position_mean(per_position, scored)


def mse(clean_logits, logits, scored) -> jnp.ndarray:
    """Per-row mean over scored positions of (value − clean value)² (numerical output)."""
    return _position_mean((logits[..., 0] - clean_logits[..., 0]) ** 2, scored)


def output_metric(model, clean_logits, logits, scored) -> jnp.ndarray:
    """`mse` for a numerical output, `kl_divergence` for a categorical one."""
    metric = mse if model.config.output_numerical else kl_divergence
    return metric(clean_logits, logits, scored)


def _position_mean(values, scored):
    scored = jnp.asarray(scored, values.dtype)
    return jnp.sum(values * scored, axis=-1) / jnp.maximum(jnp.sum(scored, axis=-1), 1.0)


def make_dataset(source, model, pairs: int = 32, seed: int = 0, hooked=None) -> Dataset:
    """`pairs` seeded (clean, corrupted) inputs of equal length, valid for the evaluator.

    source: a library `Example`, a sampler `f(rng, vocab, length) -> tokens`, or a
    list of inputs to draw from. The corrupted input is drawn at the clean
    input's length until it differs from it (or MAX_DRAWS tries: then it may equal it).
    """
    from interp.circuits.hooked import HookedModel

    clean, corrupt = sample_pairs(source, model, pairs, seed)
    return Dataset(hooked or HookedModel(model), clean, corrupt)


def sample_pairs(source, model, pairs: int, seed: int) -> tuple[tuple, tuple]:
    """The (clean, corrupted) token tuples `make_dataset` draws (see there)."""
    rng = random.Random(seed)
    draw, draw_at = _drawers(source, model)
    clean, corrupt = [], []
    for _ in range(MAX_DRAWS * pairs):
        if len(clean) == pairs:
            break
        xs = draw(rng)
        if not is_valid_input(model, xs):
            continue
        for _ in range(MAX_DRAWS):
            ys = draw_at(rng, len(xs))
            if len(ys) == len(xs) and is_valid_input(model, ys) and ys != xs:
                break
        else:
            ys = xs
        clean.append(tuple(xs))
        corrupt.append(tuple(ys))
    if len(clean) < pairs:
        raise ValueError(f"only {len(clean)} of {MAX_DRAWS * pairs} sampled inputs are valid "
                         f"for the evaluator; give a sampler of valid inputs")
    return tuple(clean), tuple(corrupt)


def _drawers(source, model):
    """(draw(rng) -> input of random length, draw_at(rng, length) -> input) for a source."""
    max_len, vocab = model.config.max_seq_len, list(model.config.vocab)
    if isinstance(source, (list, tuple)):
        inputs = [list(xs) for xs in source]
        if not inputs:
            raise ValueError("make_dataset needs at least one input to draw from")
        by_length: dict[int, list] = {}
        for xs in inputs:
            by_length.setdefault(len(xs), []).append(xs)
        return (lambda rng: rng.choice(inputs)), (lambda rng, n: rng.choice(by_length[n]))
    sampler = getattr(source, "sampler", source)  # an Example's, or the function itself
    if not callable(sampler):
        raise ValueError(f"make_dataset takes an Example, a sampler f(rng, vocab, length) or "
                         f"a list of inputs, not {type(source).__name__}")
    # The same draws as Example.sample: a length in 1..max_len, then the sampler.
    return ((lambda rng: sampler(rng, vocab, rng.randint(1, max_len))),
            (lambda rng, n: sampler(rng, vocab, n)))


def is_valid_input(model, xs) -> bool:
    """Whether `xs` is in the vocabulary (and, with the program, the evaluator's domain)."""
    if not all(t in model.config.vocab for t in xs):
        return False
    if model.program is None:  # a loaded model: only the vocabulary can be checked
        return True
    try:
        rasp.evaluate(model.program, list(xs), causal=model.config.causal)
    except rasp.EvaluationError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def example_model(name: str, max_len: int = 5):
    """The library example `name` compiled at max_seq_len = min(max_len, its own) (cached)."""
    from compiler.compiling import compile_rasp_to_model
    from examples.library import EXAMPLES

    example = EXAMPLES[name]
    n = min(max_len, example.max_seq_len)
    return compile_rasp_to_model(example.build(n), set(example.vocab), n, causal=example.causal)
