"""Fixtures of the dataset tests: real PNG files written into temporary folders."""
import os

import cv2
import numpy as np
import pytest

from lib.config import get_cfg
from tools.make_synthetic_dataset import make_synthetic_dataset

# Label id -> trainId, written out from DESIGN.md section 6 (independent of lib.datasets).
DESIGN_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])

SYNTHETIC_COUNTS = {"cityscapes": {"train": 4, "val": 2, "test": 2},
                    "acdc": {"train": 8, "val": 4, "test": 4}}
SYNTHETIC_SIZE = (64, 128)


def write_png(path, array):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), array)


def unnormalize(image):
    """(H, W, 3) RGB in 0..255 from a normalised (3, H, W) tensor."""
    return (image.numpy().transpose(1, 2, 0) * STD + MEAN) * 255


def dataset_cfg(root, dataset="cityscapes", **overrides):
    """A mutable config for ``root``; overrides as {"TRAIN.BASE_SIZE": 64, ...}."""
    cfg = get_cfg()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.DATASET = dataset
    cfg.DATASET.TRAIN_SET = f"list/{dataset}/train.lst"
    cfg.DATASET.TEST_SET = f"list/{dataset}/val.lst"
    for key, value in overrides.items():
        node = cfg
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    return cfg


def make_cityscapes_tree(root, samples, list_name="train.lst", split="train"):
    """Write Cityscapes-named (image BGR, label ids) pairs and their list; returns the list path.

    ``samples`` is a list of (stem, image, label); a label of None writes an image-only line.
    """
    lines = []
    for stem, image, label in samples:
        image_rel = f"leftImg8bit/{split}/city/{stem}_leftImg8bit.png"
        write_png(os.path.join(root, "cityscapes", image_rel), image)
        if label is None:
            lines.append(image_rel)
        else:
            label_rel = f"gtFine/{split}/city/{stem}_gtFine_labelIds.png"
            write_png(os.path.join(root, "cityscapes", label_rel), label)
            lines.append(f"{image_rel}\t{label_rel}")
    list_path = os.path.join(root, "list", "cityscapes", list_name)
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    with open(list_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return list_path


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """DATASET.ROOT holding small synthetic Cityscapes and ACDC sets with their lists."""
    root = tmp_path_factory.mktemp("synthetic")
    for dataset, counts in SYNTHETIC_COUNTS.items():
        make_synthetic_dataset(str(root), dataset, counts, SYNTHETIC_SIZE, seed=0)
    return root
