"""Where a zoo's programs come from: the example library and seeded random programs.

A `ModelSpec` names one model before it is compiled: its id (also its directory
name), source ("library" or "random"), family, vocabulary, length, causality,
realism variant, and how to build the program. Library specs come from
`library_specs(names, lengths)`; random program i of seed S is
`random_spec(S, i)`, drawn by examples.random_programs exactly as
benchmarks/fuzz.py draws it, so a zoo is deterministic for its seed.
A variant (VARIANTS) is named after the `raspc compile` flag that makes it: compile
keyword arguments, or a knob of interp.realism applied to the compiled model with a
seed drawn from the zoo's seed and the model's id (`knob_seed`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rasp.errors import InputError



@dataclasses.dataclass(frozen=True)
class Variant:
    """How a variant differs from the plain compiled model: keyword arguments of
    compile_rasp_to_model, and/or a realism knob (model, seed) -> model that carries
    the ground truth along (design.md: "Knobs transform the truth with the weights")."""

    help: str
    compile_kwargs: dict = dataclasses.field(default_factory=dict)
    knob: Callable[[Any, int], Any] | None = None


def _knob(name: str) -> Callable[[Any, int], Any]:
    def apply(model, seed: int):
        from interp import realism
        return getattr(realism, name)(model, seed)
    return apply


# Each named after the `raspc compile` flag that makes it (docs/realism.md).
VARIANTS: dict[str, Variant] = {
    "plain": Variant("the compiled model as it is"),
    "rotate": Variant("the residual basis rotated at random", knob=_knob("rotate")),
    "permute-neurons": Variant("each MLP's hidden units shuffled and rescaled",
                               knob=_knob("permute_neurons")),
    "perturb": Variant("seeded noise on every weight (no zero left)", knob=_knob("perturb")),
    "soft-attention": Variant("each head at the smallest logit gap its bounds accept",
                              compile_kwargs={"attention": "soft"}),
    "layer-norm": Variant("pre-LN blocks, as GPT-2", compile_kwargs={"layer_norm": True}),
}
NAMED = re.compile(r"\.named\(('[^']*'|\"[^\"]*\")\)$")  # a line the generator named
RANDOM_MAX_LEN = 6  # random programs' longest input: small models, quick to bench


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo, before compiling (see the module docstring)."""

    id: str
    source: str                    # "library" or "random"
    family: str                    # the example's name, or the random program's output kind
    vocab: tuple
    max_seq_len: int
    causal: bool
    variant: str
    build: Callable[[], Any] = dataclasses.field(compare=False, repr=False)
    origin: dict = dataclasses.field(default_factory=dict, compare=False)
    python_source: str | None = dataclasses.field(default=None, compare=False, repr=False)
    seed: int = 0                  # the zoo's seed: with the id, it seeds the variant's knob

    @property
    def model_source(self) -> dict:
        """What the saved model records as `model.source` (the dataset sampler reads it)."""
        return dict(self.origin)

    @property
    def compile_kwargs(self) -> dict:
        """The variant's keyword arguments for compile_rasp_to_model."""
        return dict(VARIANTS[self.variant].compile_kwargs)

    def apply_knob(self, model):
        """The compiled model in this variant (KnobError where the knob refuses it)."""
        knob = VARIANTS[self.variant].knob
        return model if knob is None else knob(model, knob_seed(self.seed, self.id))


def knob_seed(seed: int, model_id: str) -> int:
    """A variant's knob seed: the first 4 bytes of sha256("{seed}:{model_id}"), so each
    model of a zoo gets its own seed, the same in every build of that zoo seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{model_id}".encode()).digest()[:4], "big")


def check_variants(variants: Sequence[str]) -> tuple[str, ...]:
    """The variants, or InputError naming the ones available."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise InputError(f"unknown variant(s) {', '.join(unknown) or '(none given)'}; "
                         f"available: {', '.join(VARIANTS)}")
    return tuple(dict.fromkeys(variants))


def library_specs(names: Iterable[str] | None, lengths: Sequence[int],
                  variants: Sequence[str] = ("plain",), seed: int = 0) -> list[ModelSpec]:
    """Each library example (all, or `names`) at each length up to its own maximum, in
    each variant (`seed`: the zoo's, for the knobs)."""
    from examples.library import EXAMPLES

    names = list(EXAMPLES) if names is None else list(names)
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        raise InputError(f"unknown example(s) {', '.join(unknown)}; `raspc list` shows them")
    specs = []
    for name in names:
        example = EXAMPLES[name]
        for n in sorted({min(n, example.max_seq_len) for n in lengths}):
            for variant in check_variants(variants):
                specs.append(ModelSpec(
                    f"lib-{name}-n{n}-{variant}", "library", name, tuple(example.vocab), n,
                    example.causal, variant, build=lambda e=example, n=n: e.build(n),
                    origin={"kind": "example", "name": name}, seed=seed))
    return specs


def random_spec(seed: int, index: int, variant: str = "plain",
                max_len: int = RANDOM_MAX_LEN) -> ModelSpec:
    """Random program `index` of `seed` (the generator of examples.random_programs)."""
    from examples.random_programs import generate_case

    case = stably_named(generate_case(random.Random(f"{seed}:{index}"), max_len=max_len))
    return ModelSpec(
        f"rnd-s{seed}-{index:05d}-{variant}", "random", output_kind(case.program),
        case.vocab, case.max_seq_len, case.causal, variant, build=lambda: case.program,
        origin={"kind": "random", "seed": seed, "index": index, "max_len": max_len},
        python_source=case.program_source, seed=seed)


def stably_named(case):
    """The case with every unnamed expression named by its variable (v0, s1, ...), so its
    labels do not carry rasp's global ids: the same program gets the same ground truth
    whichever models were built before it in the process."""
    from examples.random_programs.model import Line, build_case

    lines = [line if line.deps == () and line.code in ("rasp.tokens", "rasp.indices")
             or NAMED.search(line.code) else Line(line.var, f"({line.code}).named({line.var!r})",
                                                  line.deps)
             for line in case.lines]
    return build_case(lines, case.output, case.vocab, case.max_seq_len, case.causal,
                      case.tracked)


def output_kind(program) -> str:
    """A random program's family: the kind of its output expression, e.g. 'Aggregate'."""
    import rasp

    kind = type(program).__name__
    return f"{kind}/{rasp.get_encoding(program).value}"
