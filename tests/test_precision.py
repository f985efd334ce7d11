"""The compiled forward pass pins every matmul to full float32 precision.

The CPU backend ignores precision flags, so comparing outputs here would prove
nothing; instead the lowered StableHLO of the jitted forward pass is inspected:
every dot_general (hk.Linear and einsum alike) must say HIGHEST, also when it is
traced under a lower default precision.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compiler.compiling import compile_rasp_to_model
from examples.library import EXAMPLES

HIGHEST = "precision = [HIGHEST, HIGHEST]"


@pytest.fixture(scope="module")
def model():
    example = EXAMPLES["sort"]  # attention (two einsums per layer) and MLPs
    return compile_rasp_to_model(example.build(5), example.vocab, 5, compiler_bos="BOS")


def lowered_dots(fn, *args, default_precision=None) -> list[str]:
    """The dot_general lines of `fn` lowered with jit, traced under `default_precision`."""
    if default_precision is None:
        text = jax.jit(fn).lower(*args).as_text()
    else:
        with jax.default_matmul_precision(default_precision):
            text = jax.jit(fn).lower(*args).as_text()
    return [line for line in text.splitlines() if re.search(r"\bdot_general\b|\beinsum\b", line)]


def forward_args(model):
    width = model.config.max_seq_len + 1
    ids = np.zeros((2, width), np.int32)
    return model.params, ids, np.ones((2, width), bool)


@pytest.mark.parametrize("default_precision", [None, "bfloat16", "tensorfloat32", "default"])
def test_every_dot_in_the_forward_pass_is_highest_precision(model, default_precision):
    dots = lowered_dots(model.forward.apply, *forward_args(model),
                        default_precision=default_precision)
    layers = model.config.layers
    linears = sum(4 * bool(layer.num_heads) + 2 * bool(layer.mlp_hidden) for layer in layers) + 1
    einsums = 2 * sum(bool(layer.num_heads) for layer in layers)
    assert len(dots) == linears + einsums
    assert sum("batching_dims" in line for line in dots) == einsums
    unpinned = [line.strip() for line in dots if HIGHEST not in line]
    assert not unpinned, unpinned[:3]


def test_the_inspection_sees_an_unpinned_dot():
    """Control: a dot without a pinned precision does not print HIGHEST under bfloat16."""
    x = jnp.ones((3, 4), jnp.float32)
    dots = lowered_dots(lambda a: a @ a.T, x, default_precision="bfloat16")
    assert len(dots) == 1 and HIGHEST not in dots[0]
