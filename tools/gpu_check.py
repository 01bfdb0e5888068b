"""One command that checks a CUDA machine: the CUDA tests, then the speed and memory table.

    python tools/gpu_check.py --out DIR [--budget SECONDS] [--dry-run]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataclasses import dataclass

from tools.benchmark import CITYSCAPES_RECIPES

# The W48 networks the CUDA tests train, by name: their Cityscapes recipes.
NETWORKS = dict(zip(("hrnet", "hrnet_ocr", "offset", "ovenet_ocr"), CITYSCAPES_RECIPES,
                    strict=True))


@dataclass(frozen=True)
class Sizes:
    """Training crop (H, W) and images per step; evaluation image (H, W)."""

    crop: tuple[int, int]
    batch: int
    image: tuple[int, int]


REAL = Sizes(crop=(512, 1024), batch=2, image=(1024, 2048))
TINY = Sizes(crop=(32, 64), batch=2, image=(64, 128))
# The dry run's networks: the recipes with one block per branch, widths 8-64 and a narrow OCR
# head (every module of the W48 network is still there).
TINY_OPTS = ["MODEL.EXTRA.STAGE1.NUM_BLOCKS", "[1]", "MODEL.EXTRA.STAGE1.NUM_CHANNELS", "[8]",
             "MODEL.OCR.MID_CHANNELS", "16", "MODEL.OCR.KEY_CHANNELS", "8"]
for _k in (2, 3, 4):
    for _stage in (f"STAGE{_k}", f"STAGE{_k}_2"):
        TINY_OPTS += [f"MODEL.EXTRA.{_stage}.NUM_MODULES", "1",
                      f"MODEL.EXTRA.{_stage}.NUM_BLOCKS", str([1] * _k),
                      f"MODEL.EXTRA.{_stage}.NUM_CHANNELS", str([8, 16, 32, 64][:_k])]
