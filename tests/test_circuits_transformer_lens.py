"""An outside tool's scores are accepted: activation patching through TransformerLens.

Activation patching runs on the TransformerLens export (`run_with_hooks` on
`hook_embed`, `hook_pos_embed`, `blocks.L.attn.hook_z` per head, which
patches that head's result exactly as W_O is linear, and `blocks.L.hook_mlp_out`), writes the JSON format of docs/circuits.md, and
`raspc score` must give the same AUROC as the jax activation patching, whose
scores it matches within 1e-4. Needs the export (interp.transformer_lens): if it
is missing this file fails at import, on purpose.
"""

from __future__ import annotations

import json
from collections import defaultdict

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from examples.library import EXAMPLES
from interp.circuits import (activation_patching, example_model, kl_divergence, make_dataset,
                             mse, score_edges, scores_to_json)
from interp.transformer_lens import to_tokens, to_transformer_lens
from raspc.cli import main

PAIRS = 16
TOLERANCE = 1e-4


def writer_hooks(truth):
    """Component-granularity node -> (TransformerLens hook, head index or None)."""
    hooks = {"embed": ("hook_embed", None), "pos_embed": ("hook_pos_embed", None)}
    for c in truth.components:
        if c.kind == "attn":
            hooks[f"blocks.{c.layer}.attn[{c.head}]"] = (f"blocks.{c.layer}.attn.hook_z", c.head)
        else:
            hooks[f"blocks.{c.layer}.mlp"] = (f"blocks.{c.layer}.hook_mlp_out", None)
    return hooks


def tl_activation_patching(model, dataset) -> dict[str, float]:
    """Mean metric over pairs when one writer's output is its corrupted value (torch side)."""
    bridge = to_transformer_lens(model)
    hooks = writer_hooks(model.ground_truth)
    width = 1 if model.config.output_numerical else len(model.config.output_values)
    metric = mse if model.config.output_numerical else kl_divergence
    by_length = defaultdict(list)
    for i, xs in enumerate(dataset.clean):
        by_length[len(xs)].append(i)
    totals = dict.fromkeys(hooks, 0.0)
    for rows in by_length.values():
        clean, _ = to_tokens(model, [[model.config.bos, *dataset.clean[i]] for i in rows])
        corrupt, _ = to_tokens(model, [[model.config.bos, *dataset.corrupt[i]] for i in rows])
        saved = {}

        def keep(tensor, hook):
            saved[hook.name] = tensor.detach().clone()

        names = sorted({name for name, _ in hooks.values()})
        with torch.no_grad():
            bridge.run_with_hooks(corrupt, fwd_hooks=[(n, keep) for n in names])
            base = bridge(clean)[..., :width].numpy()
            scored = np.ones(base.shape[:2], bool)
            scored[:, 0] = False  # BOS is not scored
            for node, (name, head) in hooks.items():
                def patch(tensor, hook, head=head):
                    stored = saved[hook.name]
                    if head is None:
                        return stored
                    # z is [batch, pos, heads, d_head], or flattened over the last two
                    heads = model.config.layers[int(hook.name.split(".")[1])].num_heads
                    split = tensor.reshape(*tensor.shape[:2], heads, -1).clone()
                    split[:, :, head] = stored.reshape(split.shape)[:, :, head]
                    return split.reshape(tensor.shape)

                logits = bridge.run_with_hooks(clean, fwd_hooks=[(name, patch)])[..., :width]
                values = metric(jnp.asarray(base), jnp.asarray(logits.numpy()), scored)
                totals[node] += float(np.sum(np.asarray(values)))
    return {node: total / len(dataset) for node, total in totals.items()}


@pytest.mark.parametrize("name", ["reverse", "sort", "count"])
def test_transformer_lens_activation_patching_scores_the_same(name, tmp_path, capsys):
    model = example_model(name)
    dataset = make_dataset(EXAMPLES[name], model, PAIRS, seed=4)
    ours = activation_patching(dataset, "component")
    theirs = tl_activation_patching(model, dataset)
    assert theirs.keys() == ours.keys()
    for node in ours:
        assert abs(theirs[node] - ours[node]) <= TOLERANCE, (node, theirs[node], ours[node])

    path = tmp_path / "scores.json"
    path.write_text(scores_to_json(theirs, "component", "transformer-lens activation patching"))
    assert json.loads(path.read_text())["nodes"][0].keys() == {"node", "score"}
    assert main(["score", name, str(path), "--max-seq-len", str(model.config.max_seq_len),
                 "--pairs", str(PAIRS), "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    expected = score_edges(model.ground_truth, ours, "component", dataset=dataset)
    assert f"edges: {expected.edges.summary()}" in printed
    assert f"nodes: {expected.nodes.summary()}" in printed
