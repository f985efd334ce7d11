"""Tokens to input ids and unembedding columns to output values: the model's encoders.

BOS is id 0, the vocabulary follows in order, PAD is last; a categorical output
decodes to the value of its largest column when that clears DECODE_THRESHOLD.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from rasp.errors import InputError
from rasp_runtime.representable import unmatched_kind

# A categorical output direction must exceed this to decode as its value;
# below it, on every direction, the value is None (the zero vector).
DECODE_THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class InputEncoder:
    """Tokens ↔ input ids: BOS = 0, the vocabulary in order, PAD last."""

    vocab: tuple[Any, ...]
    bos: str
    pad: str

    @property
    def encoding_map(self) -> dict[Any, int]:
        return {self.bos: 0, **{t: i for i, t in enumerate(self.vocab, 1)},
                self.pad: len(self.vocab) + 1}

    def encode(self, tokens: Sequence[Any]) -> list[int]:
        """One token list (BOS first) → its ids; KeyError names a token that is not in
        the vocabulary, or is of another kind than the token it equals (True for 1)."""
        ids = self.encoding_map
        out = [ids[t] for t in tokens]
        for token, i in zip(tokens, out):
            if 0 < i <= len(self.vocab) and unmatched_kind(token, self.vocab[i - 1]):
                raise KeyError(token)
        return out

    def encode_batch(self, batch: Sequence[Sequence[Any]], width: int | None = None) -> np.ndarray:
        """Token lists → an int32 id array (batch, width), padded with the PAD id; `width`
        defaults to the longest list. `CompiledModel.apply_batch` takes this array."""
        width = max(map(len, batch), default=1) if width is None else width
        out = np.full((len(batch), width), len(self.vocab) + 1, np.int32)
        for row, tokens in enumerate(batch):
            try:
                out[row, :len(tokens)] = self.encode(tokens)
            except (KeyError, TypeError, ValueError):
                raise InputError(f"row {row} has a token outside the vocabulary or is longer "
                                 f"than {width}: {list(tokens)[:8]!r}") from None
        return out


@dataclasses.dataclass(frozen=True)
class OutputEncoder:
    """Unembedding columns ↔ output values (numerical outputs have no table)."""

    values: tuple[Any, ...]
    numerical: bool

    @property
    def decoding_map(self) -> dict[int, Any]:
        return dict(enumerate(self.values))

    @property
    def encoding_map(self) -> dict[Any, int]:
        """Value -> unembedding column (categorical only, as Tracr's output encoder has)."""
        if self.numerical:
            raise AttributeError("a numerical output has no encoding_map")
        return {v: i for i, v in enumerate(self.values)}

    def decode(self, row: np.ndarray) -> Any:
        if self.numerical:
            return float(row[0])
        if not len(row):  # no value is possible: always None
            return None
        best = int(np.argmax(row))
        return self.values[best] if row[best] > DECODE_THRESHOLD else None
