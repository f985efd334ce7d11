"""compile_rasp_to_model: the whole pipeline, one stage after another.

program → lower_program (→ infer_domain) → fuse_program → extract_graph → infer_value_sets →
node_spaces → build_blocks → schedule_layers → layout_residual → assemble_params → CompiledModel
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from compiler.assemble import assemble_params, weight_count
from compiler.blocks import build_blocks
from compiler.domain import infer_domain
from compiler.fusion import fuse_alternatives, fuse_digits
from compiler.graph import ProgramGraph, extract_graph
from compiler.layer_norm import NORMED_READ, LayerNormReads, with_layer_norm
from compiler.layout import layout_residual
from compiler.lowering import lower_program
from compiler.record import record_components, record_values
from compiler.schedule import Schedule, schedule_layers
from compiler.spaces import node_spaces
from compiler.values import infer_value_sets, refuse_aliases, sort_values
from craft.bases import MatrixTooLarge, VectorSpace
from rasp import expr as rx
from rasp.errors import CompileError, CompileWarning
from rasp.traverse import topological_order
from rasp_runtime.config import ModelConfig
from rasp_runtime.domain import Domain
from rasp_runtime.model import CompiledModel, hashable
from rasp_runtime.representable import check_vocab


def compile_rasp_to_model(program: rx.SOp | dict[str, rx.SOp], vocab: Iterable[Any], max_seq_len: int,
                          causal: bool = False, compiler_bos: str = "BOS",
                          compiler_pad: str = "PAD", mlp_exactness: float = 100,
                          strict: bool = False, prefer: str = "depth",
                          fuse: bool = True, form: str = "per-position",
                          layer_norm: bool = False, attention: str = "hard") -> CompiledModel:
    """Compile a RASP program into a transformer that agrees with `rasp.evaluate`.

    Args:
      program: the SOp to compute; or a dict {task name: SOp}, compiled into one model
        that reads the task token after BOS (`["BOS", "hist", "a", "b"]`) and writes
        that task's output at the input positions (compiler.multitask). It compiles
        unfused (fusion would copy a shared SOp into each reader that folds it), so an
        SOp the programs share is one component serving every task that reads it.
      vocab: the input tokens the model accepts.
      max_seq_len: the longest input (not counting BOS).
      causal: build a decoder whose positions see only earlier positions.
      compiler_bos, compiler_pad: the BOS and PAD tokens; not in `vocab`.
      mlp_exactness: accepted for Tracr compatibility (any positive number) and
        changes nothing. Tracr uses one slope for every MLP threshold, so its
        exactness is a knob; here each threshold's slope is sized to its own gap
        between consecutive values, so every MLP is exact without one.
      strict: refuse a program whose domain is not total (see below).
      prefer: "depth" (default) takes the layout with the fewest layers, then the fewest
        weights; "params" the fewest weights, so a fused MLP is never chosen where the
        unfused program, a layer deeper, has fewer weights (a long numerical count is
        also tried as two categorical digits, compiler.fusion.fuse_digits).
      form: "per-position" (default) computes the program's value at each input
        position; "completion" builds a causal decoder that reads `x1 … xn SEP` and
        writes the output `y1 … yn` then EOS (`model.generate`; compiler.completion).
      fuse: False compiles one block per SOp (no fusion, no Map read through its
        source), so the ground truth names every SOp of the lowered program.
      layer_norm: build pre-LN blocks (a LayerNorm before each attention and MLP
        sublayer and before the unembedding, as GPT-2), exact within a proved bound
        (compiler.layer_norm); a reader that cannot absorb it is refused by name.
      attention: "hard" (default) scores every head with logit gap 100; "soft" gives
        each head the smallest gap its readers' error bounds still accept, so gradients
        reach W_Q and W_K. The gaps are in `model.attention_gaps` (by SOp label).

    The model's `domain` lists every way an input can make the reference evaluator
    raise (a function raising on some value, a categorical Aggregate that may select
    differing values); on such inputs the model's output means nothing. A program
    whose domain is not total compiles with one `rasp.CompileWarning` listing them;
    one whose domain is empty (no input of length 1..max_seq_len valid) is refused.

    Raises:
      CompileError: naming the expression that cannot be compiled exactly, why,
        and a rewrite where one is known; with `strict`, naming the first expression
        outside whose domain some input falls; "no input of this vocabulary is
        valid" where the domain is empty.
    """
    if isinstance(program, dict):
        from compiler.multitask import check_tasks, compile_multitask  # it calls back here
        check_tasks(program, [])  # the dict's shape first; its names against vocab below
        vocab = _check_arguments(next(iter(program.values())), vocab, max_seq_len,
                                 compiler_bos, compiler_pad)
        if form != "per-position":
            raise CompileError(None, "several tasks compile only in the per-position form",
                               "compile each task's completion model on its own")
        return compile_multitask(program, vocab, max_seq_len, causal, functools.partial(
            compile_rasp_to_model, causal=causal, compiler_bos=compiler_bos,
            compiler_pad=compiler_pad, strict=strict, prefer=prefer, fuse=False,
            layer_norm=layer_norm, attention=attention))
    vocab = _check_arguments(program, vocab, max_seq_len, compiler_bos, compiler_pad)
    _check_mlp_exactness(mlp_exactness)
    _check_choice(prefer, fuse)
    if not isinstance(layer_norm, bool):
        raise CompileError(None, f"layer_norm must be True or False, got {layer_norm!r}")
    if attention not in ("hard", "soft"):
        raise CompileError(None, f'attention must be "hard" or "soft", got {attention!r}')
    if form != "per-position":
        _check_form(form)
        from compiler.completion import compile_completion  # it calls back into this module
        return compile_completion(program, vocab, max_seq_len, causal, strict,
                                  functools.partial(compile_rasp_to_model, causal=True,
                                                    compiler_bos=compiler_bos,
                                                    compiler_pad=compiler_pad, prefer=prefer,
                                                    fuse=fuse, layer_norm=layer_norm,
                                                    attention=attention))
    lowered = lower_program(program, _none_oracle(program, vocab, max_seq_len))
    known: dict = {}  # the lowered program's value sets; fusion keeps most of its nodes
    domain = infer_domain(program, lowered, vocab, max_seq_len, causal, known)
    _enforce(domain, strict)
    def lay_out(program: rx.SOp) -> _LaidOut:
        return _laid_out(program, vocab, max_seq_len, causal, known, fuse, layer_norm,
                         attention == "soft")

    if not fuse:
        laid_out = lay_out(lowered)
    else:
        norm = NORMED_READ if layer_norm else None
        fused, narrower = fuse_alternatives(lowered, max_seq_len, (lambda chain: True)
                                            if prefer == "params" else
                                            _narrowing(lowered, known), norm)
        others = [narrower] + ([fuse_digits(lowered, max_seq_len, norm)]
                               if prefer == "params" else [])
        laid_out = _narrowest(fused, [p for p in others if p is not None], lowered, lay_out,
                              prefer)
    graph, values, spaces = laid_out.graph, laid_out.values, laid_out.spaces
    schedule, residual = laid_out.schedule, laid_out.residual
    output = graph.expr(graph.output)
    try:
        params, layers = assemble_params(graph, spaces, residual, schedule, vocab, max_seq_len)
    except MatrixTooLarge as error:
        widest = sorted(spaces, key=lambda node: -spaces[node].dim)[:3]
        raise CompileError(output, f"the assembled model needs {error}: the residual stream "
                           f"has {residual.dim:,} dimensions",
                           "reduce the number of distinct values of the widest SOps: " +
                           ", ".join(f"{graph.label(n)!r} ({spaces[n].dim:,})"
                                     for n in widest)) from None
    config = ModelConfig(
        vocab=vocab, max_seq_len=max_seq_len, causal=causal, bos=compiler_bos,
        pad=compiler_pad, d_model=residual.dim, layers=layers,
        output_label=graph.label(graph.output), output_numerical=rx.is_numerical(output),
        output_values=() if rx.is_numerical(output) else values[graph.output].values)
    model = CompiledModel(params, config, residual.labels(),
                          record_components(schedule, residual),
                          record_values(graph, spaces, residual, schedule), program,
                          domain=domain)
    if layer_norm:
        model = with_layer_norm(model, graph, values, spaces, laid_out.layer_norm)
    model.attention_gaps = laid_out.soft_gaps
    if not domain.total:
        warnings.warn(CompileWarning(domain.message()), stacklevel=2)
    return model


@dataclasses.dataclass(frozen=True)
class _LaidOut:
    """A fused program through scheduling and layout, with its size."""

    graph: ProgramGraph
    values: dict
    spaces: dict
    schedule: Schedule
    residual: VectorSpace
    size: tuple[int, int]  # (layers, weights): depth first
    layer_norm: LayerNormReads | None = None  # what the blocks were charged per read
    soft_gaps: dict[str, float] | None = None  # soft attention: each head's logit gap


def _laid_out(program: rx.SOp, vocab, max_seq_len: int, causal: bool,
              known: dict | None = None, fold: bool = True,
              layer_norm: bool = False, soft: bool = False) -> _LaidOut:
    graph = extract_graph(program)
    values = infer_value_sets(graph, vocab, max_seq_len, known=known)
    refuse_aliases(graph, values)
    spaces = node_spaces(graph, values)
    reads = LayerNormReads() if layer_norm else None
    gaps = {} if soft else None
    blocks = build_blocks(graph, values, spaces, max_seq_len, causal, fold, reads, gaps)
    schedule = schedule_layers(blocks)
    residual = layout_residual(graph, spaces, blocks)
    weights = weight_count(schedule, residual, spaces[graph.output].dim, len(vocab), max_seq_len)
    return _LaidOut(graph, values, spaces, schedule, residual, (len(schedule.layers), weights),
                    reads, gaps)


def _narrowing(program: rx.SOp, values: dict) -> Callable[[rx.SOp], bool]:
    """Whether keeping a fusable Map chain apart may pay for the second layout it costs.

    Expanded into a SequenceMap reader beside `other`, the chain's input takes its
    place in the reader's table; kept apart, the chain needs its own MLP over its
    input. It may pay when (|input| − |output|)·|other| > 2·|input|: dyck3's `is_open`
    (6 → 2 beside 33 depths) does, detect_pattern's `is_c` (5 → 2 beside 2 values)
    and shuffle_dyck2's (161 → 2 beside 2) do not, and laying them out twice only
    cost compile time."""
    def size(sop) -> int:
        known = values.get(sop.unique_id)
        return len(known.values) if known else 0

    pays: set[int] = set()
    for reader in topological_order(program):
        if isinstance(reader, rx.SequenceMap) and len(reader.children) == 2:
            for chain, other in (reader.children, reader.children[::-1]):
                if isinstance(chain, rx.Map) and \
                        (size(chain.inner) - size(chain)) * size(other) > 2 * size(chain.inner):
                    pays.add(chain.unique_id)
    return lambda chain: chain.unique_id in pays


def _narrowest(fused: rx.SOp, narrower: list[rx.SOp], unfused: rx.SOp,
               lay_out: Callable[[rx.SOp], _LaidOut], prefer: str = "depth") -> _LaidOut:
    """The fused program laid out, or one of the `narrower` alternatives (optional chains
    kept separate, fusion.fuse_alternatives; with prefer="params", widths counted in
    digits too, fusion.fuse_digits) where that takes no more layers and fewer weights;
    with prefer="params", whichever of those and the unfused program has the fewest weights.
    Where the fused program is refused (a fused block's float32 bound uses up what an
    earlier SOp may err by, say), the others are tried, the unfused program last; if
    all are refused, the fused program's refusal is raised."""
    options = [fused] + narrower
    fallback = [unfused] if unfused is not fused else []
    if prefer == "params":
        options, fallback = options + fallback, []
    laid_out, errors = _each_laid_out(options, lay_out)
    if not laid_out:
        laid_out, _ = _each_laid_out(fallback, lay_out)
    if not laid_out:
        raise errors[0]
    if prefer == "params":
        return min(laid_out, key=lambda chosen: (chosen.size[1], chosen.size[0]))
    return min(laid_out, key=lambda chosen: chosen.size)  # a tie keeps the fused one


def _each_laid_out(programs, lay_out) -> tuple[list[_LaidOut], list[CompileError]]:
    """Each program laid out where it compiles, and the refusals of the others."""
    laid_out, errors = [], []
    for program in programs:
        try:
            laid_out.append(lay_out(program))
        except CompileError as error:
            errors.append(error)
    return laid_out, errors


def _enforce(domain: Domain, strict: bool) -> None:
    if domain.empty:  # a model that is wrong on every input is no use, strict or not
        label = domain.conditions[0].label if domain.conditions else None
        raise CompileError(label, "no input of this vocabulary is valid: "
                           + "; ".join(domain.empty),
                           "make each function named accept some value its input takes "
                           "(guard it, or map the bad values to a value of their own), or "
                           "choose a vocabulary and max_seq_len under which some input is valid")
    if strict and not domain.total:
        label = domain.conditions[0].label if domain.conditions else None
        raise CompileError(label, "strict=True, and the program is partial: "
                           + "; ".join(domain.lines()), domain.hint())


def _none_oracle(program: rx.SOp, vocab, max_seq_len: int) -> Callable[[rx.SOp], bool]:
    """Whether an SOp of `program` can be None, from the value sets of the program as
    written (computed only if asked; True where they cannot be inferred)."""
    @functools.cache
    def value_sets():
        try:
            return infer_value_sets(extract_graph(program), vocab, max_seq_len)
        except CompileError:
            return {}

    def may_be_none(sop: rx.SOp) -> bool:
        values = value_sets().get(sop.unique_id)
        return values is None or values.may_be_none

    return may_be_none


def _check_arguments(program, vocab, max_seq_len, bos, pad) -> tuple[Any, ...]:
    if not isinstance(program, rx.RASPExpr):
        raise CompileError(repr(program), "the program must be a RASP SOp",
                           "pass an expression built from rasp.tokens, rasp.indices, ...")
    if isinstance(vocab, (str, bytes)) or not isinstance(vocab, Iterable):
        raise CompileError(None, f"vocab must be a set or list of tokens, got {vocab!r}")
    vocab = list(vocab)
    unhashable = [t for t in vocab if not hashable(t)]
    if unhashable:
        raise CompileError(None, f"vocab tokens must be hashable, but {unhashable[0]!r} is a "
                           f"{type(unhashable[0]).__name__}",
                           "use tuples instead of lists (or str, int, float tokens)")
    check_vocab(vocab)
    vocab = sort_values(vocab)
    if not vocab:
        raise CompileError(None, "the vocabulary is empty")
    for special, name in ((bos, "compiler_bos"), (pad, "compiler_pad")):
        if special in vocab:
            raise CompileError(None, f"{name} {special!r} is also in the vocabulary",
                               f"choose a {name} that is not a token")
    if bos == pad:
        raise CompileError(None, "compiler_bos and compiler_pad must differ")
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise CompileError(None, f"max_seq_len must be a positive int, got {max_seq_len!r}")
    return vocab


def _check_choice(prefer, fuse) -> None:
    if prefer not in ("depth", "params"):
        raise CompileError(None, f"prefer must be 'depth' or 'params', got {prefer!r}",
                           "prefer='depth' (the default) for the fewest layers, "
                           "prefer='params' for the fewest weights")
    if not isinstance(fuse, bool):
        raise CompileError(None, f"fuse must be True or False, got {fuse!r}")


def _check_form(form) -> None:
    if form != "completion":
        raise CompileError(None, f"form must be 'per-position' or 'completion', got {form!r}",
                           "form='completion' for a decoder that generates the output "
                           "after the prompt")


def _check_mlp_exactness(mlp_exactness) -> None:
    if isinstance(mlp_exactness, bool) or not isinstance(mlp_exactness, (int, float)) \
            or not mlp_exactness > 0:
        raise CompileError(None, f"mlp_exactness must be a positive number, got "
                           f"{mlp_exactness!r}", "leave it out: every MLP is exact here; "
                           "the argument exists only so that Tracr calls run unchanged")
