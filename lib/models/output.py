"""The output type shared by both networks."""
from typing import NamedTuple

import torch


class SegOutput(NamedTuple):
    """What a segmentation network returns; every map is at 1/4 of the input resolution.

    logits:       S_i, B x K x h x w class logits.
    offsets:      o, B x 2 x h x w (x, y), normalised align_corners=True units (offset network only).
    seed_logits:  S_s, S_i sampled at p + o(p) (offset network only).
    fused_logits: S_f = (1 - F) * S_i + F * S_s (offset network only).
    confidence:   F, B x 1 x h x w in [0, 1] (offset network only).

    With MODEL.EXTRA.LOGITS false, seed_logits and fused_logits are log-probabilities, which are
    valid logits: softmax and cross-entropy treat them correctly.
    """

    logits: torch.Tensor
    offsets: torch.Tensor | None = None
    seed_logits: torch.Tensor | None = None
    fused_logits: torch.Tensor | None = None
    confidence: torch.Tensor | None = None

    @property
    def final(self) -> torch.Tensor:
        """The prediction to evaluate: S_f when the network has it, else S_i."""
        return self.logits if self.fused_logits is None else self.fused_logits
