"""Measurements the benchmark tables share: model FLOPs, the machine's matmul rate,
throughput of the public batched path, and growth exponents in N."""

from __future__ import annotations

import functools
import json
import math
import os
import random
import statistics
import time

MATMUL_SIZE = 1024  # square float32 matmul: near the peak of XLA's CPU kernels here


def forward_flops(config) -> int:
    """Multiply-adds ×2 of one sequence of max_seq_len + 1 positions (matmuls and
    attention products; embeddings are lookups and cost none)."""
    seq, d = config.max_seq_len + 1, config.d_model
    total = 0
    for layer in config.layers:
        h, k, v, m = layer.num_heads, layer.key_size, layer.value_size, layer.mlp_hidden
        total += 2 * seq * d * h * (2 * k + v) + 2 * seq * h * v * d  # q, k, v; output
        total += 2 * h * seq * seq * (k + v)                         # logits; mixing
        total += 4 * seq * d * m                                     # linear_1, linear_2
    width = 1 if config.output_numerical else len(config.output_values)
    return total + 2 * seq * d * width


@functools.cache
def _square_product():
    import jax
    import jax.numpy as jnp

    a = jnp.asarray(random.Random(0).random() + jnp.zeros((MATMUL_SIZE, MATMUL_SIZE)),
                    jnp.float32)
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    return lambda: product(a).block_until_ready()


def matmul_gflops(repeats: int = 7) -> float:
    """GFLOP/s of a jitted square float32 matmul (median), measured now."""
    product = _square_product()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        product()
        times.append(time.perf_counter() - started)
    return 2 * MATMUL_SIZE ** 3 / statistics.median(times) / 1e9


def batch_throughput(model, example, max_len: int, vocab, batch_size: int,
                     repeats: int) -> tuple[float, float]:
    """Sequences per second of `apply_batch` on token lists, and the matmul rate measured
    before, between and after its repeats (medians of each): on a shared machine, both
    then see the same load, so their ratio holds up better than either number."""
    rng = random.Random(1)
    batch = [[model.config.bos, *example.sample(rng, max_len, vocab)]
             for _ in range(batch_size)]
    model.apply_batch(batch)  # jit once
    times, matmuls = [], [matmul_gflops()]
    for _ in range(repeats):
        started = time.perf_counter()
        model.apply_batch(batch)
        times.append(time.perf_counter() - started)
        matmuls.append(matmul_gflops())
    return batch_size / statistics.median(times), statistics.median(matmuls)


def fast_path_matches(model, example, max_len: int, vocab, count: int) -> bool:
    """Whether `apply_batch` decodes `count` random inputs exactly as the per-position
    path does (the full forward pass, each position decoded by `output_encoder.decode`)."""
    rng = random.Random(2)
    batch = [[model.config.bos, *example.sample(rng, max_len, vocab)] for _ in range(count)]
    return model.apply_batch(batch) == model.apply_batch(batch, return_residuals=True).decoded


def growth_exponent(sizes, values) -> float | None:
    """The least-squares slope of log(value) against log(N): value ∝ N^slope."""
    points = [(math.log(n), math.log(v)) for n, v in zip(sizes, values) if v and v > 0]
    if len(points) < 2:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else None


def write_table(out: str, stem: str, table: str, rows) -> None:
    """Write a benchmark's markdown `table` and its `rows` as OUT/STEM.md and OUT/STEM.json,
    and print the table."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write(table)
    with open(os.path.join(out, f"{stem}.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(table)
