"""Greedy decoding with a completion-form model (config.form == "completion").

The model reads `BOS x1 … xn SEP` and writes `y1 … yn` then EOS, one token per forward
pass. `generate` re-runs the one forward on the whole growing prefix at each step: no
key/value cache (the model is exact on any prefix, and n ≤ max_seq_len steps of a
compiled model are cheap), so every step is the same function `apply` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rasp.errors import DomainError, EvaluationError, InputError, ModelMismatchError
from rasp.evaluate import evaluate
from rasp_runtime.representable import type_hint, unmatched_kind


def generate(model, tokens: Sequence[Any], check: bool = False) -> list[Any]:
    """The output tokens `y1 … yn` the model writes after the prompt `tokens`.

    `tokens` are the prompt's tokens (a leading BOS is allowed and dropped). Decoding
    is greedy and stops at EOS or after n outputs. Where the program has no value, the
    model writes its NONE token (config.none), returned as None; nothing reads it. With
    `check=True`, the outputs are compared with the reference evaluator, as in `apply`.
    """
    config = model.config
    prompt = _prompt(config, tokens)
    sequence = [config.bos, *prompt, config.sep]
    outputs: list[Any] = []
    ended = False  # EOS before n outputs: wrong, and `check` must see it
    for _ in prompt:
        out = model._run([model._encode(sequence)])
        token = model.output_encoder.decode(out["output"][0][len(sequence) - 1])
        if _is_token(token, config.eos):
            ended = True
            break
        outputs.append(written_value(config, token))
        sequence.append(token if _in_vocab(token, config.vocab) else config.eos)
    if check:
        check_completion(model, prompt, outputs + [config.eos] if ended else outputs)
    return outputs


def check_completion(model, prompt: list[Any], written: list[Any]) -> None:
    """Raise DomainError if the prompt is outside the program's domain, and
    ModelMismatchError if `written` (the model's tokens after SEP, EOS included where
    reached) differs from the evaluator's output followed by EOS."""
    from rasp_runtime.verify import outputs_agree  # verify imports the model module
    if model.completion_of is None:
        raise ModelMismatchError("check=True needs the program; this model was loaded "
                                 "without one")
    try:
        expected = evaluate(model.completion_of, prompt, causal=model.config.completion_causal
                            ) + [model.config.eos]
    except EvaluationError as error:
        raise DomainError(f"input {prompt!r} is outside the program's domain "
                          f"({model.domain.reason_of(error)}): {error}; the model's "
                          f"output {written!r} is not an answer") from None
    written = [written_value(model.config, t) for t in written][:len(expected)]
    if not outputs_agree(expected[:len(written)], written):
        raise ModelMismatchError(f"model and evaluator disagree on {prompt!r}: "
                                 f"evaluator {expected!r}, model {written!r}")


def teacher_forced(config, prompt: list[Any], output: list[Any]) -> list[Any]:
    """The raw sequence `BOS prompt SEP output` (a None output as EOS, as `generate` feeds
    it back): run at once, the tokens decoded from SEP on are what `generate` would write
    if each equals the next output (the model is causal, so each step sees only its prefix)."""
    fed = [config.none if y is None and config.none is not None
           else y if _in_vocab(y, config.vocab) else config.eos for y in output]
    return [config.bos, *prompt, config.sep, *fed]


def split_completion(config, tokens: Sequence[Any]) -> tuple[list[Any], int] | None:
    """The prompt of a raw sequence `BOS x… SEP y…` and SEP's index, or None before SEP."""
    for index, token in enumerate(tokens):
        if index and _is_token(token, config.sep):
            return list(tokens[1:index]), index
    return None


def _prompt(config, tokens) -> list[Any]:
    if config.form != "completion":
        raise InputError("generate needs a model compiled with form='completion'; this one "
                         "computes a value per position: use apply")
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
        raise InputError(f"the prompt must be a list of tokens, got {tokens!r}")
    prompt = list(tokens)
    if prompt and _is_token(prompt[0], config.bos):
        prompt = prompt[1:]
    limit = config.prompt_len
    if not 1 <= len(prompt) <= limit:
        raise InputError(f"the prompt has {len(prompt)} tokens; this model takes 1 to "
                         f"{limit}")
    vocab = config.prompt_vocab
    for position, token in enumerate(prompt, start=1):
        if not _in_vocab(token, vocab):
            raise InputError(f"prompt token {token!r} at position {position} is not in the "
                             f"vocabulary {{{', '.join(map(repr, vocab))}}}"
                             + type_hint(token, vocab))
    return prompt


def written_value(config, token) -> Any:
    """The output value a completion model's written `token` stands for: None for the
    NONE token (compiler.completion), else the token itself."""
    return None if config.none is not None and _is_token(token, config.none) else token


def _is_token(value, token) -> bool:
    """`value` is `token` (equal and of the same kind: True is not 1)."""
    try:
        return value == token and not unmatched_kind(value, token)
    except TypeError:
        return False


def _in_vocab(value, vocab) -> bool:
    return any(_is_token(value, token) for token in vocab)
