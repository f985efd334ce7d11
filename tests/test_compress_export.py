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
from interp.compress import CompressedModel, compress, sampler_for
from interp.compress_train import encode_batch, outputs_match


def compiled(name: str):
    example = EXAMPLES[name]
    return compile_rasp_to_model(example.build(example.max_seq_len), example.vocab,
                                 example.max_seq_len, example.causal)


def random_orthonormal(model, dim: int) -> CompressedModel:
    q, _ = np.linalg.qr(np.random.default_rng(dim).normal(size=(model.config.d_model,) * 2))
    return CompressedModel(model, q[:, :dim].T.astype(np.float32))


def outputs(compressed: CompressedModel, bridge, xs):
    """(our raw output rows, the bridge's logits) on one input, BOS included."""
    ids, valid = encode_batch(compressed, [xs])
    n = len(xs) + 1
    ours = np.asarray(compressed.forward.apply(compressed.params, ids, valid)["output"])[0, :n]
    with torch.no_grad():
        theirs = bridge(torch.tensor(ids[:, :n], dtype=torch.long)).detach().numpy()[0]
    return ours, theirs


# (example, read rank: where the PCA start is exact, a narrower random width)
CASES = [("sort_unique", 33, 24), ("frac_prevs", 11, 9), ("hist", 12, 8)]


@pytest.mark.parametrize("name,exact_dim,random_dim", CASES)
def test_transformer_lens_export_of_a_compressed_model_gives_the_same_outputs(
        name, exact_dim, random_dim):
    model = compiled(name)
    sample = sampler_for(model, name)
    exact = compress(model, exact_dim, steps=1, example=name, progress=False)
    assert exact.training["steps_run"] == 0  # the PCA start already agrees
    rng = random.Random(3)
    # a random narrow W makes the sharp compiled blocks amplify float32 rounding (we
    # measured 1e-4 on sort_unique); a wrong weight mapping would be off by O(1)
    for compressed, tolerance in ((exact, 1e-5), (random_orthonormal(model, random_dim), 1e-3)):
        bridge = compressed.to_transformer_lens()
        for _ in range(10):
            xs = sample(rng)
            ours, theirs = outputs(compressed, bridge, xs)
            scale = max(1.0, float(np.abs(ours).max()))
            assert np.abs(theirs - ours).max() <= tolerance * scale
            if compressed is exact:
                decoded = [compressed.output_encoder.decode(row) for row in theirs[1:]]
                assert outputs_match(compressed.apply([compressed.config.bos, *xs])
                                     .decoded[1:], decoded, 1e-4)
