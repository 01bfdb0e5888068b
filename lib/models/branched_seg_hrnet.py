"""Offset-vector HRNetV2 (MODEL.NAME ``branched_seg_hrnet``).

HRNetV2 with the offset path of ``offset_path``: the class logits S_i of ``last_layer`` are
sampled at each pixel's seed p + o(p) to give S_s, and fused with S_i by the confidence:
S_f = (1 - F) S_i + F S_s.  The offset head is ``offset_layer``.
"""
from collections.abc import Sequence

from .hrnet import StageSpec
from .offset_path import DEFAULT_OFFSET, OffsetPath, OffsetSettings
from .output import SegOutput
from .seg_hrnet import SegHRNet


class BranchedSegHRNet(OffsetPath, SegHRNet):
    """HRNetV2 with an offset/confidence head.

    Input B x 3 x H x W; output ``SegOutput`` with every field at H/4 x W/4 (see SegOutput).
    ``set_grad_checkpointing()`` recomputes, in the backward, the segments of both paths
    (``HRNetTrunk``), ``last_layer`` and ``offset_layer``.

    Args:
        stages: STAGE1..STAGE4 of the main path.
        offset_stages: the offset path's copies, keyed by stage number (those >= offset_branch).
        offset: how the offset path is built and used.
    """

    PREDICTIONS = ("logits", "seed_logits", "fused_logits")

    def __init__(self, stages: Sequence[StageSpec], offset_stages: dict[int, StageSpec],
                 num_classes: int, final_conv_kernel: int = 1, align_corners: bool = False,
                 offset: OffsetSettings = DEFAULT_OFFSET):
        super().__init__(stages, num_classes, final_conv_kernel, align_corners)
        self.add_offset_path(offset_stages, offset, init_head=True)

    def forward(self, x):
        main, side = self.path_features(x)
        logits = self.run_head(self.last_layer, main)
        offsets, confidence, [(seeds, fused)] = self.gather(self.offset_head(side), [logits])
        return SegOutput(logits, offsets, seeds, fused, confidence)
