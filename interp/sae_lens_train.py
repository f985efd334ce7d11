"""Train SAELens SAEs on cached activations; run inside the sae-lens venv.

    .venvs/sae-lens/bin/python -P interp/sae_lens_train.py ACTIVATIONS.npz SPEC.json OUT.npz

(-P: this folder's transformer_lens.py must not shadow the venv's TransformerLens.)

It imports only sae_lens, torch and numpy (SAELens 6 needs TransformerLens < 4, so it
cannot share our venv). ACTIVATIONS.npz holds `activations` (n × d_in, float32);
SPEC.json is a list of runs, each saying `latents`, `architecture` ("standard": ReLU +
L1 with `l1`, or "topk" with `k`), `steps`, `batch_size`, `learning_rate` and `seed`
(one process for many runs: torch's import is paid once). SAELens's own SAETrainer
runs over batches drawn from the array (no model, no hub download); OUT.npz gets,
for run i, "i/W_dec" (latents × d_in), "i/b_dec", "i/W_enc" and "i/b_enc".
"""

import json
import sys

import numpy as np
import torch
from sae_lens import (StandardTrainingSAE, StandardTrainingSAEConfig, TopKTrainingSAE,
                      TopKTrainingSAEConfig)
from sae_lens.config import LoggingConfig, SAETrainerConfig
from sae_lens.training.sae_trainer import SAETrainer


def batches(activations: torch.Tensor, batch_size: int, generator: torch.Generator):
    """Endless minibatches drawn with replacement from the cached activations."""
    while True:
        yield activations[torch.randint(len(activations), (batch_size,), generator=generator)]


def training_sae(spec: dict, d_in: int):
    """The SAELens training SAE the spec names."""
    if spec["architecture"] == "topk":
        return TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=spec["latents"],
                                                     k=spec["k"], device="cpu"))
    return StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d_in, d_sae=spec["latents"],
                                                         l1_coefficient=spec["l1"],
                                                         device="cpu"))


def train(activations: torch.Tensor, spec: dict) -> dict:
    """One SAE trained by SAELens's SAETrainer; its weights as float32 arrays."""
    torch.manual_seed(spec["seed"])
    sae = training_sae(spec, activations.shape[1])
    steps, batch_size = spec["steps"], spec["batch_size"]
    trainer_cfg = SAETrainerConfig(
        n_checkpoints=0, checkpoint_path=None, save_final_checkpoint=False,
        total_training_samples=steps * batch_size, device="cpu", autocast=False,
        lr=spec["learning_rate"], lr_end=spec["learning_rate"], lr_scheduler_name="constant",
        lr_warm_up_steps=0, adam_beta1=0.9, adam_beta2=0.999, lr_decay_steps=0,
        n_restart_cycles=1, train_batch_size_samples=batch_size,
        dead_feature_window=1000, feature_sampling_window=2000,
        logger=LoggingConfig(log_to_wandb=False))
    generator = torch.Generator().manual_seed(spec["seed"])
    trainer = SAETrainer(cfg=trainer_cfg, sae=sae,
                         data_provider=batches(activations, batch_size, generator))
    sae = trainer.fit()
    with torch.no_grad():
        weights = {name: getattr(sae, name).detach().cpu().numpy().astype(np.float32)
                   for name in ("W_dec", "b_dec", "W_enc", "b_enc")}
    return weights


def main(activations_path: str, spec_path: str, out_path: str) -> None:
    with open(spec_path) as f:
        specs = json.load(f)
    with np.load(activations_path, allow_pickle=False) as data:
        activations = torch.from_numpy(np.ascontiguousarray(data["activations"], np.float32))
    torch.set_num_threads(1)  # small matrices: threads cost more than they save
    out = {}
    for i, spec in enumerate(specs):
        out.update({f"{i}/{name}": array for name, array in train(activations, spec).items()})
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
