"""The output types of the networks: ``SegOutput`` (one head) and ``OCROutput`` (two heads)."""
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


class OCROutput(NamedTuple):
    """What the HRNet-OCR networks return: two heads, every map at 1/4 of the input resolution.

    The first five fields mean what they mean in ``SegOutput`` and belong to the OCR head (its
    logits are the official ``cls_head`` output); the ``region_*`` fields are the soft object
    regions (``aux_head``) and what the same offsets and confidence make of them.  The offset
    fields are None for plain HRNet-OCR.  ``regions()`` and ``ocr()`` give each head as a
    ``SegOutput``.
    """

    logits: torch.Tensor
    offsets: torch.Tensor | None = None
    seed_logits: torch.Tensor | None = None
    fused_logits: torch.Tensor | None = None
    confidence: torch.Tensor | None = None
    region_logits: torch.Tensor | None = None
    region_seed_logits: torch.Tensor | None = None
    region_fused_logits: torch.Tensor | None = None

    @property
    def final(self) -> torch.Tensor:
        """The prediction to evaluate: the OCR head's S_f when present, else its S_i."""
        return self.logits if self.fused_logits is None else self.fused_logits

    def ocr(self) -> SegOutput:
        return SegOutput(self.logits, self.offsets, self.seed_logits, self.fused_logits,
                         self.confidence)

    def regions(self) -> SegOutput:
        return SegOutput(self.region_logits, self.offsets, self.region_seed_logits,
                         self.region_fused_logits, self.confidence)
