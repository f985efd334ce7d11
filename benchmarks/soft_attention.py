"""Soft attention against hard: each head's logit gap, the gradient reaching its W_Q and
W_K, and the true q/k edges EAP scores exactly 0 hard but not soft.

For every library example (or those named) at max_seq_len N (default 5), compiles the
hard and the soft model, draws the circuit dataset (interp.circuits.data.make_dataset,
seeded) and measures, per head, ‖∂objective/∂W_Q‖ and ‖∂objective/∂W_K‖ (Frobenius,
over that head's columns; the objective is EAP's, interp.circuits.attribution) on the
clean inputs; and EAP's scores (acdc_hooks granularity) on the true edges into a
head's q or k input, and how many of those edges no corrupted input changes (what the
input reads is the same in both runs, so EAP scores them 0 at any gap). Prints one table
row per head and writes JSON.

    nice -n 10 python -m benchmarks.soft_attention --max-seq-len 5 --json soft.json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np

PAIRS = 16


def head_gradients(model, dataset) -> dict[tuple[int, int], tuple[float, float]]:
    """(‖∂objective/∂W_Q‖, ‖∂objective/∂W_K‖) per (layer, head) on the clean inputs."""
    from interp.circuits.attribution import objective

    hooked, arrays = dataset.hooked, dataset.arrays
    clean_logits = dataset.clean_run["output"]

    def total(weights):
        out = hooked._run(weights, arrays["clean"], arrays["valid"])["output"]
        return jnp.sum(objective(model, clean_logits, out, arrays["scored"]))

    grads = jax.grad(total)(hooked.weights)
    norms = {}
    for layer, config in enumerate(model.config.layers):
        for head in range(config.num_heads):
            columns = slice(head * config.key_size, (head + 1) * config.key_size)
            norms[(layer, head)] = tuple(
                float(np.linalg.norm(np.asarray(
                    grads[f"transformer/layer_{layer}/attn/{side}"]["w"])[:, columns]))
                for side in ("query", "key"))
    return norms


def qk_edges(model) -> set[tuple[str, str]]:
    """The true edges into a head's q or k input (acdc_hooks granularity)."""
    return {(up, down) for up, down in model.ground_truth.circuit_graph("acdc_hooks").edges()
            if "hook_q_input" in down or "hook_k_input" in down}


def qk_scores(model, dataset) -> dict[tuple[str, str], float]:
    """EAP's scores on the true edges into a head's q or k input."""
    from interp.circuits.attribution import eap

    edges = qk_edges(model)
    return {edge: score for edge, score in eap(dataset, "acdc_hooks").items() if edge in edges}


def unchanged_qk_edges(dataset, edges) -> list[str]:
    """Of `edges` (true edges into a q or k input), those along which no corrupted input
    changes anything that input reads: their writer's corrupt − clean contribution is
    exactly 0 on every residual direction the input reads, at every position of every
    pair. EAP scores (corrupt − clean)·gradient, so these score 0 at any logit gap."""
    wiring = dataset.hooked.wiring
    difference = np.asarray(dataset.corrupt_run["contributions"]
                            - dataset.clean_run["contributions"])  # [W, P, S, d]
    unchanged = []
    for up, down in edges:
        reads = sorted(wiring.slots[wiring.slot_index[down]].reads)
        if not np.any(difference[wiring.writer_index[up]][..., reads]):
            unchanged.append(f"{up} -> {down}")
    return sorted(unchanged)


def measure(name: str, max_len: int) -> dict:
    """Hard and soft figures for one example at max_seq_len min(max_len, its own)."""
    from compiler import compile_rasp_to_model
    from examples.library import EXAMPLES
    from interp.circuits.data import make_dataset

    example = EXAMPLES[name]
    n = min(max_len, example.max_seq_len)
    runs = {}
    for kind in ("hard", "soft"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = compile_rasp_to_model(example.build(n), set(example.vocab), n,
                                          causal=example.causal, attention=kind)
        dataset = make_dataset(example, model, pairs=PAIRS, seed=0)
        runs[kind] = (model, head_gradients(model, dataset), qk_scores(model, dataset))
    unchanged = unchanged_qk_edges(dataset, runs["soft"][2])  # the soft run's scored edges
    soft_model = runs["soft"][0]
    heads = []
    for c in soft_model.components:
        if c.kind != "attn":
            continue
        label = ", ".join(c.info.exprs)
        hard_q, hard_k = runs["hard"][1][(c.layer, c.head)]
        soft_q, soft_k = runs["soft"][1][(c.layer, c.head)]
        heads.append({"layer": c.layer, "head": c.head, "computes": label, "op": c.info.op,
                      "gap": soft_model.attention_gaps.get(label),
                      "hard_grad_q": hard_q, "hard_grad_k": hard_k,
                      "soft_grad_q": soft_q, "soft_grad_k": soft_k})
    hard_scores, soft_scores = runs["hard"][2], runs["soft"][2]
    woken = sorted(f"{u} -> {v}" for (u, v), s in hard_scores.items()
                   if s == 0.0 and soft_scores.get((u, v), 0.0) > 0.0)
    return {"example": name, "max_seq_len": n, "heads": heads,
            "true_qk_edges": len(hard_scores),
            "zero_hard": sum(s == 0.0 for s in hard_scores.values()),
            "woken": woken, "unchanged": unchanged}


def table(results: list[dict]) -> str:
    """A markdown table: one row per head."""
    rows = ["| example | head | computes | gap | ‖∇W_Q‖ hard → soft | ‖∇W_K‖ hard → soft "
            "| true q/k edges: 0 hard / woken soft | unchanged by the corruption |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        edges = f"{r['zero_hard']}/{r['true_qk_edges']} → {len(r['woken'])}"
        unchanged = f"{len(r['unchanged'])}/{r['true_qk_edges']}"
        for i, h in enumerate(r["heads"]):
            rows.append(f"| {r['example'] if i == 0 else ''} | L{h['layer']}H{h['head']} "
                        f"| {h['computes']} | {h['gap']:g} "
                        f"| {h['hard_grad_q']:.2g} → {h['soft_grad_q']:.2g} "
                        f"| {h['hard_grad_k']:.2g} → {h['soft_grad_k']:.2g} "
                        f"| {edges if i == 0 else ''} | {unchanged if i == 0 else ''} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    from examples.library import EXAMPLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", help="library examples (default: all)")
    parser.add_argument("--max-seq-len", type=int, default=5)
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    args = parser.parse_args(argv)
    results = []
    for name in args.examples or list(EXAMPLES):  # rows and JSON as each example ends
        results.append(measure(name, args.max_seq_len))
        print(table(results[-1:]).split("\n", 2 if len(results) > 1 else 0)[-1], flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
