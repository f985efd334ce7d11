"""The Hugging Face export's token table: one id per input token, special token and output value.

Ids 0..V+1 are our own input ids (BOS, the vocabulary in order, PAD), so the HF
embedding table is ours row for row. Then come SEP and EOS (when the model's
vocabulary lacks them) and the output values that are not input tokens. An output
value shares its input token's id only when it is that very token (equal, same type):
then the id means the same thing on both sides, which is what a completion model
needs when it reads back what it generated. An output value that is a different value
with the same spelling (the int 1 and the string "1") is spelt `out:1` instead.
Pure Python: no torch, no transformers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rasp.errors import ModelFileError

OUTPUT_PREFIX = "out:"   # spelling of an output value whose plain spelling an input token has
SEP, EOS = "SEP", "EOS"  # the separator and end tokens' default names


@dataclasses.dataclass(frozen=True)
class TokenTable:
    """The HF vocabulary: `tokens[i]` is id i's string; `output_ids[c]` the id of
    unembedding column c; the special tokens' ids."""

    tokens: tuple[str, ...]
    output_ids: tuple[int, ...]
    bos_id: int
    pad_id: int
    sep_id: int
    eos_id: int

    @property
    def vocab(self) -> dict[str, int]:
        """token string -> id, as the tokenizer's WordLevel model takes it."""
        return {token: i for i, token in enumerate(self.tokens)}


def token_table(config) -> TokenTable:
    """The token table of a model with `config` (categorical output; see the module doc).

    SEP and EOS are the config's `sep`/`eos` tokens when it has them (the completion
    layout), else new tokens named SEP and EOS (or `<SEP>`, ... if taken)."""
    inputs = [config.bos, *config.vocab, config.pad]
    tokens = [_spelling(t) for t in inputs]
    duplicate = _first_duplicate(tokens)
    if duplicate is not None:
        raise ModelFileError(f"two input tokens are both spelt {duplicate!r}; the Hugging "
                             "Face tokenizer needs one spelling per token: recompile with "
                             "tokens whose str() differ")
    ids = {token: i for i, token in enumerate(tokens)}
    special = {}
    for name, default in (("sep", SEP), ("eos", EOS)):
        token = getattr(config, name, None)
        if token is not None and _spelling(token) in ids:
            special[name] = ids[_spelling(token)]
        else:
            special[name] = _add(tokens, ids, _free_spelling(default, ids))
    output_ids = []
    for value in config.output_values:
        spelt = _spelling(value)
        if spelt not in ids:
            output_ids.append(_add(tokens, ids, spelt))
        elif ids[spelt] < len(inputs) and _same_value(inputs[ids[spelt]], value):
            output_ids.append(ids[spelt])
        else:  # another token's spelling
            output_ids.append(_add(tokens, ids, _free_spelling(OUTPUT_PREFIX + spelt, ids)))
    return TokenTable(tuple(tokens), tuple(output_ids), 0, len(inputs) - 1,
                      special["sep"], special["eos"])


def _spelling(token: Any) -> str:
    """A token's string in the tokenizer: str(token), which must be one word."""
    spelt = str(token)
    if not spelt or any(c.isspace() for c in spelt):
        raise ModelFileError(f"token {token!r} is empty or contains whitespace; the Hugging "
                             "Face tokenizer splits on spaces: recompile with one-word tokens")
    return spelt


def _same_value(token: Any, value: Any) -> bool:
    return type(token) is type(value) and token == value


def _free_spelling(name: str, taken: dict[str, int]) -> str:
    while name in taken:
        name = f"<{name}>"
    return name


def _add(tokens: list[str], ids: dict[str, int], spelt: str) -> int:
    ids[spelt] = len(tokens)
    tokens.append(spelt)
    return ids[spelt]


def _first_duplicate(items: list[str]) -> str | None:
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def hf_tokenizer(table: TokenTable, max_length: int):
    """A `transformers.PreTrainedTokenizerFast` over `table`: word level, split on
    whitespace, no unknown token (an unknown word is an error), no added BOS."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(table.vocab, unk_token=None))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t = table.tokens
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=t[table.bos_id], eos_token=t[table.eos_id],
        sep_token=t[table.sep_id], pad_token=t[table.pad_id], model_max_length=max_length,
        clean_up_tokenization_spaces=False)
