"""dataset.json: the clean/corrupted pairs that travel with an export, and reading them back.

`dataset_json(model)` draws seeded pairs with the sampler `make_dataset` uses
(the library example's when the model was compiled from one, else uniform over
the vocabulary, kept only where the evaluator gives a value) and writes them as
tokens and as input ids (BOS first, no PAD), with the length and vocabulary they
came from. `dataset_from_json(text, model)` reads that file, or an outside
tool's own pairs, as a `Dataset`, so the scorer's inert edges are those of the
pairs the method saw.
"""

from __future__ import annotations

import json

from interp.circuits.data import Dataset, is_valid_input, sample_pairs

EXPORT_PAIRS = 64
EXPORT_SEED = 0
FORMAT = ('{"pairs": [{"clean": [tokens], "corrupted": [tokens]}, ...]}, ids instead as '
          '"clean_ids"/"corrupted_ids" (BOS id first), or parallel lists '
          '{"clean_ids": [[ids], ...], "corrupted_ids": [[ids], ...]}')


def export_sampler(model):
    """The sampler `make_dataset` would use for this model, and a few words naming it."""
    from examples.library import EXAMPLES, uniform

    source = model.source or {}
    if source.get("kind") == "example" and source.get("name") in EXAMPLES:
        return EXAMPLES[source["name"]].sampler, f"the {source['name']} example's sampler"
    return uniform, "uniform over the vocabulary, kept where the evaluator gives a value"


def dataset_json(model, pairs: int = EXPORT_PAIRS, seed: int = EXPORT_SEED) -> dict:
    """dataset.json's content for `model` (see the module docstring)."""
    from interp.tl_export import _plain

    sampler, how = export_sampler(model)
    clean, corrupt = sample_pairs(sampler, model, pairs, seed)
    ids = model.input_encoder.encoding_map
    bos = ids[model.config.bos]
    return {
        "about": "clean/corrupted input pairs of equal length, valid for the evaluator; "
                 "ids are the model's input ids with BOS first",
        "sampler": how, "seed": seed, "max_seq_len": model.config.max_seq_len,
        "vocab": [_plain(t) for t in model.config.vocab], "bos_id": bos,
        "pad_id": ids[model.config.pad],
        "pairs": [{"clean": [_plain(t) for t in xs], "corrupted": [_plain(t) for t in ys],
                   "clean_ids": [bos] + [ids[t] for t in xs],
                   "corrupted_ids": [bos] + [ids[t] for t in ys]}
                  for xs, ys in zip(clean, corrupt)],
    }


def dataset_from_json(text: str, model, hooked=None) -> Dataset:
    """A Dataset from dataset.json or an outside tool's pairs; ValueError says what is wrong."""
    from interp.circuits.hooked import HookedModel

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the dataset file is not JSON: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("pairs"), list):
        entries = data["pairs"]
    elif isinstance(data, dict) and isinstance(data.get("clean_ids"), list) and \
            isinstance(data.get("corrupted_ids"), list):
        entries = [{"clean_ids": c, "corrupted_ids": k}
                   for c, k in zip(data["clean_ids"], data["corrupted_ids"])]
    else:
        raise ValueError(f"the dataset file needs {FORMAT}")
    tokens_of = {i: t for t, i in model.input_encoder.encoding_map.items()}
    clean, corrupt = [], []
    for n, entry in enumerate(entries):
        pair = [_tokens(entry, side, tokens_of, model, n) for side in ("clean", "corrupted")]
        if len(pair[0]) != len(pair[1]):
            raise ValueError(f"pair {n}: clean and corrupted inputs differ in length "
                             f"({len(pair[0])} and {len(pair[1])})")
        for side, xs in zip(("clean", "corrupted"), pair):
            if not xs or len(xs) > model.config.max_seq_len or not is_valid_input(model, xs):
                raise ValueError(f"pair {n}: the {side} input {xs!r} is not a valid input of "
                                 f"length 1..{model.config.max_seq_len} over the vocabulary "
                                 f"{list(model.config.vocab)} (or the evaluator refuses it)")
        clean.append(tuple(pair[0]))
        corrupt.append(tuple(pair[1]))
    if not clean:
        raise ValueError("the dataset file has no pairs")
    return Dataset(hooked or HookedModel(model), tuple(clean), tuple(corrupt))


def _tokens(entry, side: str, tokens_of: dict, model, n: int) -> list:
    """One side of a pair as tokens: given as tokens, or as ids with BOS first (PAD dropped)."""
    if not isinstance(entry, dict) or not (side in entry or f"{side}_ids" in entry):
        raise ValueError(f"pair {n} needs {side!r} tokens or {side + '_ids'!r}; the file "
                         f"needs {FORMAT}")
    if side in entry:
        vocab = {str(t): t for t in model.config.vocab}  # JSON turns tuples into lists
        return [t if t in model.config.vocab else vocab.get(str(t), t) for t in entry[side]]
    ids = entry[f"{side}_ids"]
    bos, pad = (model.input_encoder.encoding_map[t] for t in (model.config.bos,
                                                                model.config.pad))
    if not isinstance(ids, list) or not ids or ids[0] != bos:
        raise ValueError(f"pair {n}: {side}_ids must be a list of input ids starting with the "
                         f"BOS id {bos}")
    ids = [i for i in ids[1:] if i != pad]
    unknown = [i for i in ids if not isinstance(i, int) or i not in tokens_of or i == bos]
    if unknown:
        raise ValueError(f"pair {n}: {side}_ids has ids {unknown[:3]} that are no input token")
    return [tokens_of[i] for i in ids]
