"""Run one auto-circuit prune algorithm on a legacy export, as an outside user would.

Runs in auto-circuit's own venv (tests/auto_circuit/constraints.txt), never in ours:
    python run_auto_circuit.py EXPORT_DIR eap|acdc SCORES_JSON
It reads only the export's files (ll_model.pth, ll_model_cfg.pkl, dataset.json) and
writes auto-circuit's scores under auto-circuit's own edge names, with no mapping.
"""

import json
import pickle
import sys
from collections import Counter
from pathlib import Path

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from auto_circuit.data import PromptDataLoader, PromptDataset
from auto_circuit.prune_algos.ACDC import acdc_prune_scores
from auto_circuit.prune_algos.edge_attribution_patching import (
    edge_attribution_patching_prune_scores)
from auto_circuit.utils.graph_utils import patchable_model

directory, method, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
with open(directory / "ll_model_cfg.pkl", "rb") as f:
    model = HookedTransformer(HookedTransformerConfig(**pickle.load(f)))
model.load_state_dict(torch.load(directory / "ll_model.pth"), strict=True)
model.set_use_attn_result(True)
model.set_use_split_qkv_input(True)
model.set_use_hook_mlp_in(True)
model.eval()

# auto-circuit batches prompts of one length: take the pairs of the commonest length.
pairs = json.loads((directory / "dataset.json").read_text())["pairs"]
length = Counter(len(p["clean_ids"]) for p in pairs).most_common(1)[0][0]
pairs = [p for p in pairs if len(p["clean_ids"]) == length]
clean = torch.tensor([p["clean_ids"] for p in pairs])
corrupt = torch.tensor([p["corrupted_ids"] for p in pairs])
with torch.no_grad():  # the task: the clean output at the last position
    answers = model(clean)[:, -1].argmax(-1)
    wrong = model(corrupt)[:, -1].argmax(-1)
dataset = PromptDataset(clean, corrupt, [a.view(1) for a in answers],
                        [w.view(1) for w in wrong])
loader = PromptDataLoader(dataset, seq_len=None, diverge_idx=0, batch_size=len(pairs))

model = patchable_model(model, factorized=True, slice_output="last_seq", separate_qkv=True)
if method == "eap":
    scores = edge_attribution_patching_prune_scores(model, loader, None, answer_diff=False)
else:
    scores = acdc_prune_scores(model, loader, None, tao_exps=[-3], tao_bases=[1])
out.write_text(json.dumps({edge.name: edge.prune_score(scores).item() for edge in model.edges},
                          indent=1))
print(f"{method}: {len(model.edges)} edges scored")
