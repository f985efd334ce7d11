"""A compressed model exported to TransformerLens computes the same outputs.

`CompressedModel.to_transformer_lens()` delegates to
`interp.transformer_lens.to_transformer_lens` (issue 13). Until that module
exists this file fails at import, loudly, on purpose: it is not skipped.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import interp.transformer_lens  # noqa: F401  the exporter under test; no skip if missing
from compiler import compile_rasp_to_model
from examples.library import EXAMPLES
from interp.compress import CompressedModel, sampler_for
from interp.compress_train import encode_batch


def squeezed(name: str, dim: int) -> CompressedModel:
    example = EXAMPLES[name]
    model = compile_rasp_to_model(example.build(example.max_seq_len), example.vocab,
                                  example.max_seq_len, example.causal)
    q, _ = np.linalg.qr(np.random.default_rng(dim).normal(size=(model.config.d_model,) * 2))
    return CompressedModel(model, q[:, :dim].T.astype(np.float32))


@pytest.mark.parametrize("name,dim", [("sort_unique", 24), ("frac_prevs", 10), ("hist", 9)])
def test_transformer_lens_export_of_a_compressed_model_gives_the_same_outputs(name, dim):
    compressed = squeezed(name, dim)
    bridge = compressed.to_transformer_lens()
    sample = sampler_for(compressed, name)
    rng = random.Random(3)
    for _ in range(10):
        xs = sample(rng)
        ids, valid = encode_batch(compressed, [xs])
        n = len(xs) + 1
        ours = np.asarray(compressed.forward.apply(compressed.params, ids, valid)["output"])
        with torch.no_grad():
            theirs = bridge(torch.tensor(ids[:, :n], dtype=torch.long)).detach().numpy()
        scale = max(1.0, float(np.abs(ours[0, :n]).max()))
        assert np.abs(theirs[0] - ours[0, :n]).max() <= 1e-5 * scale
        decoded = [compressed.output_encoder.decode(row) for row in theirs[0][1:]]
        assert decoded == compressed.apply([compressed.config.bos, *xs]).decoded[1:]
