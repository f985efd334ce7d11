"""Circuit discovery against exact ground truth: datasets, metrics, methods, scoring.

`make_dataset` draws clean/corrupted pairs; `path_patching`, `activation_patching`,
`acdc`, `eap`, `eap_ig` score edges (or nodes) on the hooked jax forward;
`score_edges` turns any method's scores into TPR/FPR, ROC and pessimistic AUROC.
"""

from interp.circuits.attribution import eap, eap_ig
from interp.circuits.data import (Dataset, example_model, kl_divergence, make_dataset, mse,
                                  output_metric)
from interp.circuits.hooked import HookedModel
from interp.circuits.patching import acdc, activation_patching, path_patching
from interp.circuits.scoring import (CircuitScore, pessimistic_auroc, score_edges,
                                     scores_from_json, scores_to_json)

METHODS = {"activation_patching": activation_patching, "eap": eap, "eap_ig": eap_ig,
           "acdc": acdc}

__all__ = ["CircuitScore", "Dataset", "HookedModel", "METHODS", "acdc", "activation_patching",
           "eap", "eap_ig", "example_model", "kl_divergence", "make_dataset", "mse", "output_metric",
           "path_patching", "pessimistic_auroc", "score_edges", "scores_from_json",
           "scores_to_json"]
