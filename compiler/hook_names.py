"""TransformerLens hook names: the legacy (HookedTransformer) name and the TL 4 bridge name.

The ground truth names hooks as HookedTransformer did (`blocks.1.attn.hook_result[0]`).
A TransformerLens 4 `TransformerBridge` keeps those names as aliases but files each
hook under a canonical name of its own (`blocks.1.attn.o.hook_in` for `hook_z`).
`bridge_hook` maps the first to the second, and `hf_module` gives the Hugging Face
GPT-2 export's module for it. Pure strings: no torch here.
"""

from __future__ import annotations

import re

# Legacy hook -> the bridge hook it aliases (same HookPoint object on the bridge),
# by the part after the "blocks.L." prefix; top-level hooks are listed whole.
_TOP_LEVEL = {
    "hook_embed": "embed.hook_out",
    "hook_pos_embed": "pos_embed.hook_out",
}
_IN_BLOCK = {
    "attn.hook_q": "attn.q.hook_out",
    "attn.hook_k": "attn.k.hook_out",
    "attn.hook_v": "attn.v.hook_out",
    "attn.hook_z": "attn.o.hook_in",
    "hook_attn_out": "attn.hook_out",
    "hook_mlp_out": "mlp.hook_out",
    "mlp.hook_post": "mlp.out.hook_in",
    "hook_resid_pre": "hook_in",
    "hook_resid_post": "hook_out",
}
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_INDEX = re.compile(r"^(.*?)(\[\d+\])?$")


def bridge_hook(legacy: str) -> str:
    """The TransformerBridge's canonical name for a legacy hook name.

    A trailing head index is kept: "blocks.0.attn.hook_z[1]" ->
    "blocks.0.attn.o.hook_in[1]". Names the bridge spells the same way
    (hook_pattern, hook_result) and names that are not hooks ("output") are
    returned unchanged.
    """
    name, index = _INDEX.match(legacy).groups()
    index = index or ""
    if name in _TOP_LEVEL:
        return _TOP_LEVEL[name] + index
    block = _BLOCK.match(name)
    if block and block.group(2) in _IN_BLOCK:
        return f"blocks.{block.group(1)}.{_IN_BLOCK[block.group(2)]}{index}"
    return legacy


def split_index(hook: str) -> tuple[str, int | None]:
    """(name, head index) of "blocks.0.attn.hook_result[1]"; (hook, None) if unindexed."""
    name, index = _INDEX.match(hook).groups()
    return name, None if index is None else int(index[1:-1])


# Hook (after "blocks.L.") -> (GPT-2 module under transformer.h.L, what to read there).
_HF_IN_BLOCK = {
    "hook_resid_pre": ("", "input"), "hook_resid_mid": ("ln_2", "input"),
    "hook_resid_post": ("", "output"),
    # hook_normalized is before the gain and offset: inside the LayerNorm, not its output.
    "ln1.hook_scale": ("ln_1", "internal"), "ln1.hook_normalized": ("ln_1", "internal"),
    "ln2.hook_scale": ("ln_2", "internal"), "ln2.hook_normalized": ("ln_2", "internal"),
    "hook_q_input": ("attn", "input"), "hook_k_input": ("attn", "input"),
    "hook_v_input": ("attn", "input"),
    "attn.hook_q": ("attn.c_attn", "output[..., :n_embd]"),
    "attn.hook_k": ("attn.c_attn", "output[..., n_embd:2*n_embd]"),
    "attn.hook_v": ("attn.c_attn", "output[..., 2*n_embd:]"),
    "attn.hook_attn_scores": ("attn", "internal"), "attn.hook_pattern": ("attn", "output[1]"),
    "attn.hook_z": ("attn.c_proj", "input"), "attn.hook_result": ("attn.c_proj", "input"),
    "hook_attn_out": ("attn", "output[0]"),
    "hook_mlp_in": ("mlp", "input"), "mlp.hook_pre": ("mlp.c_fc", "output"),
    "mlp.hook_post": ("mlp.c_proj", "input"), "hook_mlp_out": ("mlp", "output"),
}
_HF_TOP_LEVEL = {
    "hook_embed": ("transformer.wte", "output"), "hook_pos_embed": ("transformer.wpe", "output"),
    "ln_final.hook_scale": ("transformer.ln_f", "internal"),
    "ln_final.hook_normalized": ("transformer.ln_f", "internal"),
    "unembed.hook_out": ("lm_head", "output"),
}


def hf_module(legacy: str) -> dict[str, str] | None:
    """Where a hook's activation is in the Hugging Face GPT-2 export: {"module": its path
    in GPT2LMHeadModel, "read": "input", "output", a slice or index of it, or "internal"
    (computed inside the module, not one of its inputs or outputs)}; None for a name that
    is not a hook. A head index is kept on the hook, not the module: "blocks.0.attn.hook_z[1]"
    -> transformer.h.0.attn.c_proj's input, heads at head_dim-wide slices of n_embd."""
    name, _ = _INDEX.match(legacy).groups()
    if name in _HF_TOP_LEVEL:
        module, read = _HF_TOP_LEVEL[name]
        return {"module": module, "read": read}
    block = _BLOCK.match(name)
    if not (block and block.group(2) in _HF_IN_BLOCK):
        return None
    module, read = _HF_IN_BLOCK[block.group(2)]
    path = f"transformer.h.{block.group(1)}" + (f".{module}" if module else "")
    return {"module": path, "read": read}
