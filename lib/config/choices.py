"""The values allowed for every config key that names a choice, in one place.

``load_cfg`` checks every key of :data:`CHOICES` whatever the caller imported: this module
imports nothing above the config, so the check is complete in every tool and every library
caller.  The name tables of the builders (``lib.models.MODELS``, ``lib.models.hrnet.BLOCKS``,
``lib.evaluation.protocols.PROTOCOLS``) hold exactly the names below, and the code that reads
the plain lists (optimisers, loss and evaluation modes) imports them from here;
``tests/config/test_choices.py`` compares each table with its entry.
"""
from ..utils.precision import AMP_DTYPES

__all__ = ["CHOICES", "STAGES", "MODEL_NAMES", "BLOCK_NAMES", "OFFSET_BRANCHES",
           "CONFIDENCE_MODES", "REGION_MEANS", "OUT_OF_RANGE_MODES", "OPTIMIZERS",
           "PROTOCOL_NAMES", "ACCUMULATE_MODES", "FIRST_RESIZE_MODES"]

# The stage groups of MODEL.EXTRA: the main path's, then the offset path's copies.
STAGES = ("STAGE1", "STAGE2", "STAGE3", "STAGE4", "STAGE2_2", "STAGE3_2", "STAGE4_2")
# MODEL.NAME: the networks of lib.models.MODELS.
MODEL_NAMES = ("seg_hrnet", "branched_seg_hrnet", "seg_hrnet_ocr", "branched_seg_hrnet_ocr")
# MODEL.EXTRA.<stage>.BLOCK: the residual blocks of lib.models.hrnet.BLOCKS.
BLOCK_NAMES = ("BASIC", "BOTTLENECK")
# MODEL.EXTRA.OFFSET_BRANCH: the first stage that the offset path duplicates.
OFFSET_BRANCHES = (2, 3, 4)
# LOSS.CONFIDENCE_MODE and LOSS.REGION_MEAN (lib.models.losses).
CONFIDENCE_MODES = ("reference", "masked")
REGION_MEANS = ("all_pixels", "labelled")
# DATASET.OUT_OF_RANGE_LABELS (lib.datasets.base_dataset).
OUT_OF_RANGE_MODES = ("error", "ignore")
# TRAIN.OPTIMIZER: the optimisers lib.engine.schedule.build_optimizer makes.
OPTIMIZERS = ("sgd", "adamw")
# TEST.PROTOCOL: the protocols of lib.evaluation.protocols.PROTOCOLS ("" = the dataset's own).
PROTOCOL_NAMES = ("cityscapes", "ade20k", "lip")
# TEST.ACCUMULATE: how windows and scales add up.
ACCUMULATE_MODES = ("exp_logits", "softmax")
# TEST.FIRST_RESIZE: how the ade20k and lip protocols resize the image first.
FIRST_RESIZE_MODES = ("opencv", "device")

# Every key that names a choice -> the values it may take.
CHOICES = {
    "MODEL.NAME": MODEL_NAMES,
    **{f"MODEL.EXTRA.{stage}.BLOCK": BLOCK_NAMES for stage in STAGES},
    "MODEL.EXTRA.OFFSET_BRANCH": OFFSET_BRANCHES,
    "LOSS.CONFIDENCE_MODE": CONFIDENCE_MODES,
    "LOSS.REGION_MEAN": REGION_MEANS,
    "DATASET.OUT_OF_RANGE_LABELS": OUT_OF_RANGE_MODES,
    "TRAIN.OPTIMIZER": OPTIMIZERS,
    "TRAIN.AMP_DTYPE": tuple(AMP_DTYPES),
    "TEST.PROTOCOL": ("", *PROTOCOL_NAMES),
    "TEST.ACCUMULATE": ACCUMULATE_MODES,
    "TEST.FIRST_RESIZE": FIRST_RESIZE_MODES,
}
