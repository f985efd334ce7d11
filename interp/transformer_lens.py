"""A CompiledModel as a TransformerLens 4 `TransformerBridge` that computes the same function.

`to_transformer_lens(model)` boots a native bridge (no layer norm, ReLU MLPs,
learned positions, causal or bidirectional attention) and loads the weights of
`interp.tl_weights`. `to_tokens` encodes inputs with our input encoder (padded
batches get an attention mask: PAD keys are masked as in our model), and
`decode_logits` reads the bridge's logits back with our output encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from interp import tl_weights
from interp.extras import import_extra
from rasp_runtime.batch import encode_batch

torch = import_extra("torch")
import_extra("transformer_lens")

_RESULT_HOOKED = "_rasp_compiler_result_hooks"


def transformer_lens_state_dict(model, legacy: bool = False):
    """The model's weights for TransformerLens, as torch float32 tensors.

    legacy=False: the TransformerBridge state dict (`blocks.0.attn.q.weight`, ...),
    which a bridge booted from `TransformerBridgeConfig.from_dict(tl_weights.bridge_config(...))`
    loads. legacy=True: `(state_dict, config_dict)` in HookedTransformer's layout
    (`blocks.0.attn.W_Q` as [n_heads, d_model, d_head], ...), which InterpBench and
    TransformerLens < 4 load, and TransformerLens 4 converts with
    `convert_tl_checkpoint`.
    """
    if legacy:
        arrays = tl_weights.legacy_arrays(model.params, model.config)
        return _tensors(arrays), tl_weights.legacy_config(model.config)
    return _tensors(tl_weights.native_arrays(model.params, model.config))


def to_transformer_lens(model):
    """A `TransformerBridge` computing what `model` computes, with working hook_result.

    Every ground-truth hook name (legacy or bridge spelling) is a hook point of
    it; `blocks.L.attn.hook_result` fires per head (see `add_result_hooks`).
    """
    return bridge_from_state_dict(tl_weights.bridge_config(model.config),
                                  transformer_lens_state_dict(model))


def bridge_from_state_dict(config: dict, state_dict: dict[str, torch.Tensor]):
    """Boot a native bridge from `config` (TransformerBridgeConfig fields) and load weights."""
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    import transformer_lens.model_bridge.sources.native  # noqa: F401  registers boot_native

    bridge = TransformerBridge.boot_native(TransformerBridgeConfig.from_dict(dict(config)))
    bridge.load_state_dict(state_dict, strict=True)
    bridge.eval()
    return add_result_hooks(bridge)


def bridge_from_legacy(state_dict: dict[str, torch.Tensor], config: dict):
    """A bridge from a legacy (HookedTransformer) state dict and config dict.

    This is TransformerLens 4's own legacy-checkpoint path, the one
    `boot_tl_legacy` takes after downloading: `convert_tl_checkpoint`, then a
    strict load into a `boot_native` bridge.
    """
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    fields = {k: v for k, v in config.items() if k != "original_architecture"}
    converted = convert_tl_checkpoint(state_dict, TransformerBridgeConfig.from_dict(fields))
    return bridge_from_state_dict(fields, converted)


def add_result_hooks(bridge):
    """Make `blocks.L.attn.hook_result` fire on a native bridge; returns the bridge.

    TransformerLens 4's native attention has the hook point but never calls it
    (`set_use_attn_result` is refused for it). This computes each head's output
    z_h · W_O[h] from what enters the output projection, passes the
    [batch, pos, n_heads, d_model] tensor through hook_result (so caching and
    patching it work) and returns their sum plus b_O as the attention output.
    It also turns on `cfg.use_attn_result`, without which `run_with_hooks`
    refuses hook_result.
    """
    if getattr(bridge, _RESULT_HOOKED, False):
        return bridge
    n_heads, d_head = bridge.cfg.n_heads, bridge.cfg.d_head
    for block in bridge.blocks:
        attn = block.attn
        projection = attn.o.original_component

        def per_head(module, inputs, output, attn=attn):
            z = inputs[0]
            w_o = module.weight.T.reshape(n_heads, d_head, -1)
            heads = torch.einsum("bshd,hdm->bshm", z.reshape(*z.shape[:2], n_heads, d_head), w_o)
            heads = attn.hook_result(heads)
            summed = heads.sum(dim=-2)
            return summed if module.bias is None else summed + module.bias

        projection.register_forward_hook(per_head)
    # The bridge refuses hooks on hook_result while cfg.use_attn_result is off, and its
    # public setter refuses native attention; set the flag the way that setter does.
    bridge.cfg._set_bridge_managed_hook_flag("use_attn_result", True)
    setattr(bridge, _RESULT_HOOKED, True)
    return bridge


def to_tokens(model, batch: Sequence[Sequence[Any]]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(input ids [batch, seq], attention mask or None) for inputs that start with BOS.

    Inputs of one length need no mask: the bridge sees exactly the tokens. Shorter
    inputs are padded on the right with PAD and masked with a 1/0 attention mask,
    which the bridge applies to keys as our model masks PAD keys.
    """
    width = max(map(len, batch), default=1)
    ids = encode_batch(model, batch)[:, :width].astype(np.int64)  # validates each input
    if all(len(tokens) == width for tokens in batch):
        return torch.from_numpy(ids), None
    pad = model.input_encoder.encoding_map[model.config.pad]
    return torch.from_numpy(ids), torch.from_numpy((ids != pad).astype(np.int64))


def decode_logits(model, logits, lengths: Sequence[int] | None = None) -> list[list[Any]]:
    """Decoded outputs (BOS first, as `apply(...).decoded`) of logits [batch, seq, d_vocab_out].

    `lengths` (with BOS) drops the padded positions of each row.
    """
    array = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else \
        np.asarray(logits)
    if array.ndim == 2:
        array = array[None]
    width = 1 if model.output_encoder.numerical else len(model.output_encoder.values)
    lengths = lengths or [array.shape[1]] * array.shape[0]
    return [[model.config.bos] + [model.output_encoder.decode(row[:width]) for row in rows[1:n]]
            for rows, n in zip(array, lengths)]


def _tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
