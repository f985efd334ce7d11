"""NodeBlock: the craft block that computes one SOp of the graph, and the SOps it reads."""

from __future__ import annotations

import dataclasses

from craft.blocks import MLP, AttentionHead, Series


@dataclasses.dataclass(frozen=True)
class NodeBlock:
    """The block computing one SOp, and the SOps it reads."""

    node: int
    block: MLP | AttentionHead | Series
    inputs: tuple[int, ...]

    @property
    def sublayers(self) -> tuple[str, ...]:
        """The sublayer kinds it occupies, in order: ("mlp",), ("attn",) or both."""
        if isinstance(self.block, Series):
            return tuple("mlp" if isinstance(b, MLP) else "attn" for b in self.block.blocks)
        return ("mlp",) if isinstance(self.block, MLP) else ("attn",)

    def parts(self) -> tuple[MLP | AttentionHead, ...]:
        return self.block.blocks if isinstance(self.block, Series) else (self.block,)
