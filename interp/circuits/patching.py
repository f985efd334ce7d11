"""Patching methods on the hooked forward: path patching, activation patching, ACDC.

Each takes a `Dataset` and a granularity and gives a plain dict of scores:
`{(upstream, downstream): float}` for edges, `{node: float}` for activation
patching (which patches whole components). A score is the mean over pairs of
the metric (`Dataset.metric`, KL or MSE against the clean output) after the
intervention; higher means more important.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from compiler.granularity import output_hook
from rasp_runtime.model import DECODE_THRESHOLD
from rasp_runtime.verify import NUMERIC_TOLERANCE

CHUNK = 64  # interventions per vmapped forward call (bounds memory)
ACDC_THRESHOLD = 1e-3  # metric increase below which ACDC drops an edge


def scorable_edges(truth, granularity: str) -> list[tuple[str, str, dict]]:
    """Every writer -> reader edge a method scores at `granularity` (true or not)."""
    return [(u, v, a) for u, v, a in truth.full_graph(granularity).edges(data=True)
            if not a["internal"]]


def patched_logits(dataset, masks: np.ndarray) -> np.ndarray:
    """Output logits [E, P, S, out]: for each [W, R] mask, those edges corrupted."""
    hooked = dataset.hooked
    if not hasattr(hooked, "_vmapped"):
        def one(weights, ids, valid, corrupt, mask):
            alpha = jnp.broadcast_to(mask, (ids.shape[0],) + mask.shape)
            return hooked._run(weights, ids, valid, corrupt=corrupt, alpha=alpha)["output"]
        hooked._vmapped = jax.jit(jax.vmap(one, in_axes=(None, None, None, None, 0)))
    a = dataset.arrays
    corrupt = dataset.corrupt_run["contributions"]
    out, size = [], CHUNK if len(masks) > 1 else 1  # two shapes: two traces
    for start in range(0, len(masks), size):
        chunk = np.asarray(masks[start:start + size], np.float32)
        padded = np.zeros((size,) + chunk.shape[1:], np.float32)
        padded[:len(chunk)] = chunk
        logits = hooked._vmapped(hooked.weights, a["clean"], a["valid"], corrupt, padded)
        out.append(np.asarray(logits)[:len(chunk)])
    return np.concatenate(out) if out else np.zeros((0,))


def decode_indices(model, logits: np.ndarray) -> np.ndarray:
    """Decoded outputs as numbers: the value index (−1 for None), or the numerical value."""
    if model.config.output_numerical:
        return logits[..., 0]
    if logits.shape[-1] == 0:
        return np.full(logits.shape[:-1], -1)
    best = np.argmax(logits, axis=-1)
    top = np.take_along_axis(logits, best[..., None], axis=-1)[..., 0]
    return np.where(top > DECODE_THRESHOLD, best, -1)


def changed_pairs(dataset, logits: np.ndarray) -> np.ndarray:
    """[E, P] bool: the decoded output of that pair differs from the clean one somewhere."""
    model = dataset.hooked.model
    clean = decode_indices(model, np.asarray(dataset.clean_run["output"]))
    patched = decode_indices(model, logits)
    scored = dataset.arrays["scored"]
    if model.config.output_numerical:
        differs = np.abs(patched - clean) > NUMERIC_TOLERANCE
    else:
        differs = patched != clean
    return np.any(differs & scored, axis=-1)


def metric_of(dataset, logits: np.ndarray) -> np.ndarray:
    """[E] mean metric over pairs of each intervention's logits."""
    metric = jax.vmap(dataset.metric)(jnp.asarray(logits))
    return np.asarray(jnp.mean(metric, axis=-1))


def path_patching(dataset, granularity: str = "component") -> dict[tuple[str, str], float]:
    """Each edge alone corrupted (its contribution to its reader), everything else clean."""
    edges = scorable_edges(dataset.hooked.model.ground_truth, granularity)
    wiring = dataset.hooked.wiring
    masks = np.stack([wiring.mask([a]) for _, _, a in edges]) if edges else np.zeros((0,))
    scores = metric_of(dataset, patched_logits(dataset, masks)) if edges else []
    return {(u, v): float(s) for (u, v, _), s in zip(edges, scores)}


def activation_patching(dataset, granularity: str = "component") -> dict[str, float]:
    """Each writer's whole output corrupted (in every reader): a score per node.

    Nodes are named at `granularity` (`embed`, `blocks.0.attn[0]`, ... for
    "component"; the writer hooks otherwise). The output node is not scored.
    """
    wiring = dataset.hooked.wiring
    masks = np.zeros((len(wiring.writers), len(wiring.writers), len(wiring.slots)), np.float32)
    for i in range(len(wiring.writers)):
        masks[i, i] = wiring.upstream[i]
    scores = metric_of(dataset, patched_logits(dataset, masks))
    name = (lambda w: w.component) if granularity == "component" else (lambda w: w.name)
    return {name(w): float(s) for w, s in zip(wiring.writers, scores)}


def acdc(dataset, granularity: str = "component",
         threshold: float = ACDC_THRESHOLD) -> dict[tuple[str, str], float]:
    """ACDC: greedy edge pruning by path patching against `threshold`.

    Readers are visited from the output backwards, each one's incoming edges
    from the latest writer to the earliest. An edge is corrupted for good when
    that raises the metric (given the edges already corrupted) by less than
    `threshold`. Each edge's score is the raise measured when it was tried, so
    the edges with score ≥ threshold are exactly ACDC's circuit.
    """
    truth = dataset.hooked.model.ground_truth
    wiring = dataset.hooked.wiring
    graph = truth.full_graph(granularity)
    order = {w.component if granularity == "component" else w.name: i
             for i, w in enumerate(wiring.writers)}
    readers = [v for v in reversed(list(_reader_order(graph, truth)))]
    removed = np.zeros((len(wiring.writers), len(wiring.slots)), np.float32)
    current = float(metric_of(dataset, patched_logits(dataset, removed[None]))[0])
    scores = {}
    for reader in readers:
        incoming = sorted(((u, a) for u, _, a in graph.in_edges(reader, data=True)
                           if not a["internal"]), key=lambda e: -order[e[0]])
        for u, attrs in incoming:
            trial = np.maximum(removed, wiring.mask([attrs]))
            value = float(metric_of(dataset, patched_logits(dataset, trial[None]))[0])
            scores[(u, reader)] = value - current
            if value - current < threshold:
                removed, current = trial, value
    return scores


def _reader_order(graph, truth):
    """Reader nodes (anything with incoming writer edges) in forward order, output last."""
    nodes = [n for n in graph if any(not a["internal"] for *_, a in graph.in_edges(n, data=True))]
    sublayer = {}
    for n in nodes:
        sublayer[n] = 10 ** 6 if n == output_hook(truth.n_layers) else _layer_key(n)
    return sorted(nodes, key=lambda n: sublayer[n])


def _layer_key(node: str) -> float:
    """Sort key of a reader: its layer, attention before MLP."""
    layer = int(node.split(".")[1])
    return 2 * layer + ("mlp" in node)
