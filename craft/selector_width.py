"""SelectorWidth: an attention head plus a discretising MLP.

The head attends to BOS and the w selected keys with equal logits and copies
BOS's `bos` component, so it writes exactly 1/(w+1) to a scratch direction.
The MLP decodes w from 1/(w+1) with one threshold per gap: the gap between
1/(w+1) and 1/(w+2) is 1/((w+1)(w+2)), and each threshold's slope is sized to
its own gap (craft.numerical), so it is exact for every w in 0..N, N ≤ 256, in
float32 — a single global slope is what fails from N ≈ 10.
At BOS the scratch holds 1 and `one` is 0, so every MLP unit is off there.
"""

from __future__ import annotations

from collections.abc import Callable

from craft.attention import HARDNESS, selector_width_head
from craft.bases import BasisDirection, VectorSpace
from craft.blocks import BlockInfo, Series
from craft.categorical import Output
from craft.maps import BilinearForm
from craft.numerical import discretising_mlp, gated_discretising_mlp


def selector_width(selection: BilinearForm, selected_level: int, max_seq_len: int,
                   output_space: VectorSpace, output_of: Callable[..., Output],
                   scratch: BasisDirection, hidden_name: str, info: BlockInfo,
                   hardness: float = HARDNESS,
                   side_space: VectorSpace = VectorSpace(())) -> Series:
    """Head + MLP writing `output_of(w)` for every width w in 0..max_seq_len.

    With a categorical `side_space` (exact one-hots, e.g. tokens or indices) the
    MLP writes `output_of(w, side_value)` instead, gating one discretiser per value.
    """
    head = selector_width_head(selection, selected_level, scratch, info, hardness)
    inverse = {1.0 / (w + 1): w for w in range(max_seq_len + 1)}
    if side_space.dim:
        mlp = gated_discretising_mlp(scratch, list(inverse), side_space, output_space,
                                     lambda x, side: output_of(inverse[x], side),
                                     hidden_name, info)
    else:
        mlp = discretising_mlp(scratch, list(inverse), output_space,
                               lambda x: output_of(inverse[x]), hidden_name, info)
    return Series((head, mlp))
