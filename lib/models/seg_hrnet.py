"""HRNetV2 segmentation network (MODEL.NAME ``seg_hrnet``)."""
from collections.abc import Sequence

from .hrnet import HRNetTrunk, StageSpec, head, init_weights
from .output import SegOutput


class SegHRNet(HRNetTrunk):
    """HRNetV2: the four branches concatenated at 1/4 resolution, then ``last_layer``.

    Input B x 3 x H x W (normalised RGB); output ``SegOutput(logits)`` with logits
    B x num_classes x H/4 x W/4.  State-dict keys and shapes equal the official model's.
    ``set_grad_checkpointing()`` recomputes the trunk's segments and ``last_layer`` (with the
    concatenation) in the backward.
    """

    # State-dict prefixes of the modules whose output channels equal num_classes.
    CLASSIFIERS = ("last_layer.3",)
    PREDICTIONS = ("logits",)  # the SegOutput fields that hold class maps

    def __init__(self, stages: Sequence[StageSpec], num_classes: int, final_conv_kernel: int = 1,
                 align_corners: bool = False):
        super().__init__(stages, align_corners)
        self.last_layer = head(self.head_channels, num_classes, final_conv_kernel)
        init_weights(self)

    def forward(self, x):
        return SegOutput(self.run_head(self.last_layer, self.forward_features(x)))
