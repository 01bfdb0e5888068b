"""HRNetV2 + OCR (MODEL.NAME ``seg_hrnet_ocr``) and its offset-vector version
(MODEL.NAME ``branched_seg_hrnet_ocr``, OVeNet's main network).

State-dict keys and shapes equal those of the official HRNet-OCR model (trunk, ``conv3x3_ocr``,
``ocr_gather_head``, ``ocr_distri_head``, ``cls_head``, ``aux_head``) and, for the offset network,
of the OVeNet-OCR model (plus ``transition3_2``, ``stage4_2``, ``aux_head_offset``) without its
coordinate-grid parameter.  As in both originals, only the trunk and the duplicated stages get the
N(0, 0.001^2) initialisation; the heads keep PyTorch's default.
"""
from collections.abc import Sequence

from .hrnet import HRNetTrunk, StageSpec, concat_branches, init_weights
from .ocr import DEFAULT_OCR, OCRSettings, ocr_modules
from .offset_path import DEFAULT_OFFSET, OffsetPath, OffsetSettings
from .output import OCROutput


class SegHRNetOCR(HRNetTrunk):
    """HRNet-OCR: soft object regions (``aux_head``) pool the features into one representation
    per class, every pixel attends to them, and ``cls_head`` classifies the result.

    Input B x 3 x H x W; output ``OCROutput(logits=OCR logits, region_logits=soft regions)``,
    both B x num_classes x H/4 x W/4 (the official forward returns [regions, OCR]).
    ``set_grad_checkpointing()`` recomputes the trunk's segments and the OCR head's (see
    ``regions_and_ocr_logits``) in the backward.
    """

    CLASSIFIERS = ("cls_head", "aux_head.3")
    PREDICTIONS = ("logits", "region_logits")  # the OCROutput fields that hold class maps

    def __init__(self, stages: Sequence[StageSpec], num_classes: int, align_corners: bool = False,
                 ocr: OCRSettings = DEFAULT_OCR):
        super().__init__(stages, align_corners)
        init_weights(self)  # the trunk only: the heads below keep PyTorch's initialisation
        for name, module in ocr_modules(self.head_channels, num_classes, ocr).items():
            self.add_module(name, module)

    def forward(self, x):
        feats = concat_branches(self.forward_features(x), self.align_corners)
        regions, logits = self.regions_and_ocr_logits(feats)
        return OCROutput(logits, region_logits=regions)

    def regions_and_ocr_logits(self, feats):
        """The OCR head (the modules of ``ocr_modules``) on the trunk features B x C x h x w:
        the soft object regions and the OCR logits, two B x K x h x w maps.

        Checkpointed segments: ``aux_head``, and gather + ``ocr_distri_head`` + ``cls_head``.
        ``conv3x3_ocr`` is not one: it holds most of the head's FLOPs and keeps little (its
        output is the next segment's input anyway).
        """
        regions = self.checkpointed(self.aux_head, feats)
        mid = self.conv3x3_ocr(feats)
        logits = self.checkpointed(self.ocr_distri_head, mid, regions, fn=self._ocr_logits)
        return regions, logits

    def _ocr_logits(self, mid, regions):
        objects = self.ocr_gather_head(mid, regions)
        return self.cls_head(self.ocr_distri_head(mid, objects))


class BranchedSegHRNetOCR(OffsetPath, SegHRNetOCR):
    """OVeNet on HRNet-OCR: one offset field and one confidence map gather seeds from both the
    soft-region logits and the OCR logits, and fuse both.

    Input B x 3 x H x W; output ``OCROutput`` with every field set, all at H/4 x W/4;
    ``.final`` is the fused OCR prediction.  With MODEL.EXTRA.LOGITS false both heads gather and
    fuse probabilities (the OVeNet code converted the OCR head only).  With
    ``set_grad_checkpointing()`` the offset path's upper branches and its head are recomputed
    in the backward too.

    Args:
        stages: STAGE1..STAGE4 of the main path.
        offset_stages: the offset path's copies, keyed by stage number (those >= offset_branch).
        ocr: widths of the OCR head.
        offset: how the offset path is built and used.
    """

    OFFSET_HEAD = "aux_head_offset"
    PREDICTIONS = ("logits", "seed_logits", "fused_logits", "region_logits", "region_seed_logits",
                   "region_fused_logits")

    def __init__(self, stages: Sequence[StageSpec], offset_stages: dict[int, StageSpec],
                 num_classes: int, align_corners: bool = False, ocr: OCRSettings = DEFAULT_OCR,
                 offset: OffsetSettings = DEFAULT_OFFSET):
        super().__init__(stages, num_classes, align_corners, ocr)
        self.add_offset_path(offset_stages, offset, init_head=False)

    def forward(self, x):
        main, side = self.path_features(x)
        regions, logits = self.regions_and_ocr_logits(concat_branches(main, self.align_corners))
        offsets, confidence, pairs = self.gather(self.offset_head(side), [regions, logits])
        (region_seeds, region_fused), (seeds, fused) = pairs
        return OCROutput(logits, offsets, seeds, fused, confidence, regions, region_seeds,
                         region_fused)
