"""CompiledModel: the haiku parameters plus everything needed to use them.

`apply` runs one sequence and returns decoded outputs with residuals and
attention logits; `apply_batch` runs many (token lists or an id array) through
rasp_runtime.batch: chunked, jitted once per batch-size bucket, decoded on the device.
Both run the one hooked forward of rasp_runtime.forward.

Conveniences that reach above the runtime are thin lazy delegations, importing their
package only when called: `ground_truth` (compiler.ground_truth, which derives the truth
from the program or the saved records), `save(format=...)` other than npz,
`to_transformer_lens`, `transformer_lens_state_dict` and `to_hf` (interp). Nothing else here
imports compiler/ or interp/ (tests/test_layering.py checks it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from craft.blocks import BlockInfo
from rasp.errors import DomainError, EvaluationError, InputError, ModelMismatchError
from rasp.evaluate import evaluate
from rasp_runtime.config import ModelConfig, Params
from rasp_runtime.domain import Domain
from rasp_runtime.encoders import DECODE_THRESHOLD, InputEncoder, OutputEncoder
from rasp_runtime.fork_safety import check_can_run
from rasp_runtime.representable import type_hint, unmatched_kind


def relu(x):
    """max(x, 0), by jax (imported on first call: compiling never needs jax)."""
    import jax
    return jax.nn.relu(x)


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """The model's shape under the names of Tracr's `TransformerConfig`.

    Tracr pads every layer to the same number of heads, key size and MLP width;
    here layers differ (`config.layers`), and these are the maxima over layers
    (0 when no layer has heads, or none has MLP units). No dropout, ReLU MLPs,
    pre-LN LayerNorm where the config says so.
    """

    num_heads: int
    num_layers: int
    key_size: int
    mlp_hidden_size: int
    dropout_rate: float = 0.0
    activation_function: Callable[[Any], Any] = relu
    layer_norm: bool = False
    causal: bool = False


@dataclasses.dataclass(frozen=True)
class TransformerOutput:
    """One forward pass in the shapes of Tracr's `TransformerOutput` (batch of 1).

    layer_outputs, residuals: per sublayer (attention, MLP, attention, ...), each
    [1, seq, d_model]; residuals[i] is the residual after sublayer i.
    attn_logits: per layer, [1, heads, seq, seq] (heads = 0 for a layer without).
    output: the final residual; input_embeddings: token + position embeddings.
    Tracr's `AssembledTransformerModel.apply` names the final residual itself
    `transformer_output`, so this object also acts as that array.
    """

    layer_outputs: list[np.ndarray]
    residuals: list[np.ndarray]
    attn_logits: list[np.ndarray]
    output: np.ndarray
    input_embeddings: np.ndarray

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.output, dtype=dtype)

    def __getitem__(self, index):
        return self.output[index]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.output.shape


@dataclasses.dataclass(frozen=True)
class ModelOutput:
    """One sequence's forward pass.

    decoded: BOS at index 0, then the program's value at each position.
    residuals: the residual (seq, d_model) after the embedding and every sublayer.
    layer_outputs: what each sublayer added (attention, MLP, attention, ...).
    attn_logits: per layer, (heads, seq, seq) logits, or None if it has no heads.
    input_embeddings, transformer_output: Tracr's names and shapes (batch
    dimension first, see TransformerOutput).
    """

    decoded: list[Any]
    residuals: list[np.ndarray]
    layer_outputs: list[np.ndarray]
    attn_logits: list[np.ndarray | None]
    input_embeddings: np.ndarray | None = None
    transformer_output: TransformerOutput | None = None


@dataclasses.dataclass(frozen=True)
class Component:
    """One attention head or MLP block of the compiled model, and what it implements."""

    layer: int
    kind: str            # "attn" or "mlp"
    head: int | None     # head index within the layer, for attention
    info: BlockInfo
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    hidden: tuple[int, int] | None = None  # for an MLP: its [start, stop) units in linear_1


@dataclasses.dataclass(frozen=True)
class ValueRecord:
    """Where one RASP expression's value lives in the residual stream.

    dims: residual indices; for a categorical SOp one per value (aligned with
    `values`), for a numerical SOp a single index. sublayer: the sublayer that
    writes it (-1: the embeddings), so it is readable in residuals[sublayer + 1].
    """

    label: str
    numerical: bool
    values: tuple[Any, ...]
    dims: tuple[int, ...]
    sublayer: int

    def decode(self, residual_row: np.ndarray) -> Any:
        """The value at one position, from that position's residual vector."""
        components = residual_row[list(self.dims)]
        if self.numerical:
            return float(components[0])
        best = int(np.argmax(components)) if len(components) else 0
        return self.values[best] if len(components) and components[best] > DECODE_THRESHOLD \
            else None


class CompiledModel:
    """A compiled RASP program: parameters, config, encoders and ground truth."""

    def __init__(self, params: Params, config: ModelConfig, residual_labels: Sequence[str],
                 components: Sequence[Component] = (), value_records: Sequence[ValueRecord] = (),
                 program=None, saved_alignment=None, domain: Domain | None = None):
        self.params = params
        self.config = config
        self.residual_labels = list(residual_labels)
        self.components = list(components)
        self.value_records = {r.label: r for r in value_records}
        self.program = program
        # A loaded model has no program to find its fused/query/key sites in,
        # so the ground-truth alignment is saved and given back here.
        self.saved_alignment = saved_alignment
        # Where the program came from, e.g. {"kind": "example", "name": "reverse",
        # "args": [8]}; set by raspc and saved, as information: loading never imports it
        # (raspc verify rebuilds an example by name, a file only with --trust-program-source).
        self.source: dict[str, Any] | None = None
        # A completion-form model compiled here: the program as written; `program` is then
        # the rewritten program the weights compute (compiler.completion).
        self.completion_of = None
        # A several-task model compiled here: {task: program as written} (compiler.multitask).
        self.tasks: dict = {}
        # Where the program has a value; unknown (not total) for models saved without it.
        self.domain = domain if domain is not None else Domain(unknown="not recorded")
        # Realism knobs applied after compiling (interp.realism), e.g. {"knob": "rotate",
        # "seed": 1}, and the ground truth they carried along, as GroundTruth JSON; saved.
        self.knobs: list[dict[str, Any]] = []
        self.saved_truth: str | None = None
        # Soft attention (compile_rasp_to_model(attention="soft")): each head's logit gap
        # by the SOp label it computes; None for hard attention (every gap 100). Saved.
        self.attention_gaps: dict[str, float] | None = None
        self.input_encoder = InputEncoder(config.vocab, config.bos, config.pad)
        self.output_encoder = OutputEncoder(config.output_values, config.output_numerical)

    # Built on first use, so that compiling (e.g. a sweep that only counts parameters)
    # does not pay for haiku's transform and two jit wrappers.
    @functools.cached_property
    def forward(self):
        """The one haiku forward (`hk.Transformed`): `forward.apply(params, ids, valid, hooks=None)`;
        hooks map rasp_runtime.forward.hook_names to functions (see there)."""
        import haiku as hk  # jax is imported when a model first runs, not when it compiles
        from rasp_runtime.forward import make_forward
        return hk.without_apply_rng(hk.transform(make_forward(self.config)))

    @functools.cached_property
    def _jitted(self):
        import jax
        return jax.jit(self.forward.apply)

    @functools.cached_property
    def _jitted_outputs(self):
        from rasp_runtime.batch import make_decoder_outputs, sub_chunk_rows
        return make_decoder_outputs(self.forward.apply, self.config.output_numerical,
                                    DECODE_THRESHOLD, sub_chunk_rows(self.config))

    @property
    def attention_description(self) -> str:
        """Which attention the model carries, for summaries: "hard (logit gap 100)", or
        "soft" with the range of its heads' logit gaps."""
        if self.attention_gaps is None:
            return "hard (logit gap 100)"
        gaps = sorted(self.attention_gaps.values())
        if not gaps:
            return "soft (no heads)"
        span = f"{gaps[0]:g}" if gaps[0] == gaps[-1] else f"{gaps[0]:g}–{gaps[-1]:g}"
        return f"soft (logit gaps {span} over {len(gaps)} heads)"

    @property
    def parameter_count(self) -> int:
        """The number of weights in the haiku parameters."""
        return sum(int(a.size) for weights in self.params.values() for a in weights.values())

    # ------------------------------------------------------------------ running
    def apply(self, tokens: Sequence[Any], check: bool = False) -> ModelOutput:
        """Run one sequence, which must start with BOS.

        With `check=True`, also evaluate the program with the reference evaluator:
        raise DomainError (naming the expression) if the input is outside the
        program's domain, and ModelMismatchError if the decoded output differs.
        Without it, nothing is checked: on an input outside `self.domain` the decoded
        output is whatever the weights compute (often None, or one of several
        selected values), so check inputs whenever `self.domain.total` is False.

        A completion-form model (`config.form == "completion"`) runs the sequence
        `BOS x1 … xn SEP y1 …`; the value decoded at SEP and after is the next token
        (before SEP it means nothing), and `check` compares those with the program's
        output then EOS. `generate` writes the whole completion.
        """
        check_can_run()
        ids = self._encode(tokens)
        out = self._run([ids])
        n = len(ids)  # drop the padding the jitted function runs with
        residuals = [r[:, :n] for r in out["residuals"]]
        layer_outputs = [r[:, :n] for r in out["layer_outputs"]]
        logits = [x if x is None else x[:, :, :n, :n] for x in out["attn_logits"]]
        tracr = TransformerOutput(
            layer_outputs, residuals[1:],
            [np.zeros((1, 0, n, n), np.float32) if x is None else x for x in logits],
            residuals[-1], residuals[0])
        result = ModelOutput(self._decode(out["output"][0], n), [r[0] for r in residuals],
                             [r[0] for r in layer_outputs],
                             [x if x is None else x[0] for x in logits], residuals[0], tracr)
        if check:
            self._check(list(tokens[1:]), result.decoded[1:])
        return result

    def _check(self, xs: list[Any], decoded: list[Any]):
        from rasp_runtime.verify import outputs_agree  # verify imports this module
        if self.config.form == "completion":
            from rasp_runtime.generation import check_completion, split_completion
            split = split_completion(self.config, [self.config.bos, *xs])
            if split is not None:
                check_completion(self, split[0], decoded[split[1] - 1:])
            return
        if self.program is None:
            raise ModelMismatchError("check=True needs the program; this model was loaded "
                                     "without one")
        try:
            expected = evaluate(self.program, xs, causal=self.config.causal)
        except EvaluationError as error:
            raise DomainError(f"input {xs!r} is outside the program's domain "
                              f"({self.domain.reason_of(error)}): {error}; the model's "
                              f"output {decoded!r} is not an answer") from None
        if not outputs_agree(expected, decoded):
            raise ModelMismatchError(f"model and evaluator disagree on {xs!r}: "
                                     f"evaluator {expected!r}, model {decoded!r}")

    def generate(self, tokens: Sequence[Any], check: bool = False) -> list[Any]:
        """The output tokens a completion-form model writes after the prompt `tokens`:
        greedy, one forward pass per token over the whole prefix (no key/value cache),
        stopping at EOS or after len(tokens) outputs (rasp_runtime.generation)."""
        check_can_run()
        from rasp_runtime.generation import generate
        return generate(self, tokens, check)

    def apply_batch(self, batch, return_residuals: bool = False):
        """Decoded outputs of many sequences, each a list starting with BOS.

        `batch` is a list of token lists, or an int array of ids (batch, length ≤
        max_seq_len + 1) as `input_encoder.encode_batch` gives: BOS id first, PAD ids
        only at the end. Large batches run in chunks of bounded memory. With
        `return_residuals=True`, returns a `BatchOutput` with the residuals as well.
        """
        from rasp_runtime.batch import run_batch
        return run_batch(self, batch, return_residuals)

    def _run(self, encoded: list[list[int]]):
        width = self.config.max_seq_len + 1  # one shape per batch size: jit traces once
        pad = self.input_encoder.encoding_map[self.config.pad]
        ids = np.full((len(encoded), width), pad, np.int32)
        for row, seq in enumerate(encoded):
            ids[row, :len(seq)] = seq
        out = self._jitted(self.params, ids, ids != pad)
        import jax
        return jax.tree_util.tree_map(np.asarray, out)

    def _decode(self, rows: np.ndarray, length: int) -> list[Any]:
        return [self.config.bos] + [self.output_encoder.decode(r) for r in rows[1:length]]

    def _encode(self, tokens: Sequence[Any]) -> list[int]:
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
            raise InputError(f"tokens must be a list starting with {self.config.bos!r}, "
                             f"got {tokens!r}")
        tokens = list(tokens)
        if not tokens or tokens[0] != self.config.bos:
            raise InputError(f"the input must start with the BOS token {self.config.bos!r}, "
                             f"e.g. [{self.config.bos!r}, ...]; got {tokens[:3]!r}...")
        if len(tokens) - 1 > self.config.max_seq_len:
            raise InputError(f"the input has {len(tokens) - 1} tokens after BOS, more than "
                             f"max_seq_len = {self.config.max_seq_len} this model was "
                             f"compiled for")
        ids = self.input_encoder.encoding_map
        vocab = self.config.vocab
        for position, token in enumerate(tokens[1:], start=1):
            known = ids.get(token, 0) if hashable(token) else 0
            why = unmatched_kind(token, vocab[known - 1]) if 0 < known <= len(vocab) else ""
            if not 0 < known <= len(vocab) or why:
                raise InputError(f"token {token!r} at position {position} is not in the "
                                 f"vocabulary {{{', '.join(map(repr, vocab))}}}"
                                 + (why or type_hint(token, vocab)))
        return [ids[t] for t in tokens]

    @property
    def model_config(self) -> TransformerConfig:
        """The model's shape under Tracr's `TransformerConfig` names."""
        layers = self.config.layers
        return TransformerConfig(
            num_heads=max((l.num_heads for l in layers), default=0), num_layers=len(layers),
            key_size=max((l.key_size for l in layers if l.num_heads), default=0),
            mlp_hidden_size=max((l.mlp_hidden for l in layers), default=0),
            layer_norm=self.config.normalization == "layernorm", causal=self.config.causal)

    # ------------------------------------------------------------------ files
    def save(self, path, description: str | None = None, format: str = "npz"):
        """Save to `path` (.npz parameters) and a .json beside it; see rasp_runtime.serialize.

        format="safetensors" (or "transformer-lens", "interpbench") writes a
        directory TransformerLens loads instead; see interp.tl_export. format="hf"
        writes a Hugging Face GPT-2 directory (causal LayerNorm models); see
        interp.hf_export.
        """
        if format == "hf":
            from interp.hf_export import save_hf  # needs the hf extra
            return save_hf(self, path, description)
        if format != "npz":
            from interp.tl_export import export_model  # torch-free, but interp stays optional
            return export_model(self, path, format, description)
        from rasp_runtime.serialize import save_model
        return save_model(self, path, description)

    @classmethod
    def load(cls, path, verify: bool = True) -> CompiledModel:
        """A model saved with `save` (.npz, .json or export directory), without recompiling;
        its checksum is checked unless `verify=False` (see rasp_runtime.serialize.load_model)."""
        from rasp_runtime.serialize import load_model
        return load_model(path, verify)

    # ------------------------------------------------------------ TransformerLens
    def to_transformer_lens(self):
        """This model as a TransformerLens 4 TransformerBridge (the transformer-lens extra)."""
        from interp.transformer_lens import to_transformer_lens
        return to_transformer_lens(self)

    def transformer_lens_state_dict(self, legacy: bool = False):
        """TransformerLens weights (legacy=True: HookedTransformer state dict and config)."""
        from interp.transformer_lens import transformer_lens_state_dict
        return transformer_lens_state_dict(self, legacy)

    # ------------------------------------------------------------ Hugging Face
    def to_hf(self):
        """This model as a `transformers.GPT2LMHeadModel` (the hf extra; causal LayerNorm
        models only): see interp.hf_export."""
        from interp.hf_export import to_hf
        return to_hf(self)

    # ------------------------------------------------------------ ground truth
    @property
    def ground_truth(self):
        """Which head/MLP computes what, and the true circuit (compiler.ground_truth);
        a knobbed model gives the truth its knobs carried along (`saved_truth`)."""
        from compiler.ground_truth import GroundTruth
        if self.saved_truth is not None:  # parsed once per text (it holds d² floats)
            cached = self.__dict__.get("_parsed_truth")
            if cached is None or cached[0] is not self.saved_truth:
                cached = self._parsed_truth = (self.saved_truth,
                                               GroundTruth.from_json(self.saved_truth))
            return cached[1]
        return GroundTruth.from_model(self)

    def decode_intermediates(self, tokens: Sequence[Any]) -> dict[str, list[Any]]:
        """Each recorded RASP expression's values at positions 1..n, read from the residuals."""
        from rasp_runtime.interventions import decode_intermediates
        return decode_intermediates(self, tokens)


def hashable(value) -> bool:
    """Whether `value` can be a dict key (a token or a vocabulary entry must be)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True
