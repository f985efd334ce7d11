"""TransformerLens hook names: the legacy (HookedTransformer) name and the TL 4 bridge name.

The ground truth names hooks as HookedTransformer did (`blocks.1.attn.hook_result[0]`).
A TransformerLens 4 `TransformerBridge` keeps those names as aliases but files each
hook under a canonical name of its own (`blocks.1.attn.o.hook_in` for `hook_z`).
`bridge_hook` maps the first to the second. Pure strings: no torch here.
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
