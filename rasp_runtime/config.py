"""The compiled model's shape: its config, per-layer sizes and parameter layout.

`ModelConfig` is everything the forward (rasp_runtime.forward) needs besides the
parameters, including the architecture it runs (normalisation, MLP activation);
`Params` is the haiku-style parameter dict the compiler assembles.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

Params = dict[str, dict[str, np.ndarray]]
# The normalisations the forward runs: none, or pre-LN LayerNorm (as GPT-2).
NORMALIZATIONS = ("none", "layernorm")


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """One layer's sizes: heads (0: no attention), key/value width, MLP hidden units."""

    num_heads: int
    key_size: int
    value_size: int
    mlp_hidden: int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the forward function from the parameters."""

    vocab: tuple[Any, ...]
    max_seq_len: int
    causal: bool
    bos: str
    pad: str
    d_model: int
    layers: tuple[LayerConfig, ...]
    output_label: str
    output_numerical: bool
    output_values: tuple[Any, ...]  # decoded values of the unembedding columns
    # The architecture the forward runs (rasp_runtime.forward reads these; none guesses).
    normalization: str = "none"   # or "layernorm": pre-LN before attention, MLP, unembedding
    activation: str = "relu"      # the MLPs' activation
    layer_norm_eps: float = 0.0   # LayerNorm's epsilon (read only with "layernorm")
    # "per-position": the program's value at each position; "completion": the input is
    # `x… sep y…` over `vocab` (prompt tokens from `prompt_vocab`), the output the next token,
    # and `completion_causal` says whether the program's own semantics are causal.
    form: str = "per-position"
    sep: Any = None
    eos: Any = None
    none: Any = None  # the token written where the program's output is None (if it can be)
    prompt_vocab: tuple[Any, ...] = ()
    completion_causal: bool = False
    # A several-task model (compiler.multitask): the task names, read as the token after BOS.
    tasks: tuple[str, ...] = ()

    @property
    def prompt_len(self) -> int:
        """The longest input the program reads: max_seq_len, or for a completion model
        the longest prompt (the model holds the prompt, SEP and the output: 2n + 1)."""
        return self.max_seq_len if self.form != "completion" else (self.max_seq_len - 1) // 2

    @property
    def vocab_size(self) -> int:
        """Input ids: BOS = 0, the vocabulary in order, then PAD."""
        return len(self.vocab) + 2
