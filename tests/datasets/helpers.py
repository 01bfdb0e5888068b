"""What the dataset tests share: a dataset config, files written or touched in a dataset's layout,
the synthetic sets' sizes, and re-derivations independent of lib.datasets (the reference's
COCO-Stuff table, a COCO RLE encoder)."""
import os

import numpy as np

from lib.config import get_cfg

# The ImageNet statistics of DESIGN.md section 6, RGB.
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])

SYNTHETIC_COUNTS = {"cityscapes": {"train": 4, "val": 2, "test": 2},
                    "acdc": {"train": 8, "val": 4, "test": 4}}
SYNTHETIC_SIZE = (64, 128)

# The HRNet-OCR COCO-Stuff loader's table (lib/datasets/cocostuff.py there), written out: stored
# value mapping[i] is encoded as i, and then i - 1 is the class (value 0 -> ignored).
REFERENCE_COCOSTUFF_MAPPING = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27,
    28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54,
    55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82,
    84, 85, 86, 87, 88, 89, 90, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106,
    107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125,
    126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144,
    145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163,
    164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182]


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


def touch(root, *relative):
    """Empty files at the ``relative`` paths under ``root`` (a layout, not images)."""
    for rel in relative:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def mask_runs(mask):
    """Run lengths of a mask read down the columns, the first run being 0s (maybe empty)."""
    runs, current, length = [], 0, 0
    for value in mask.T.ravel():
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    runs.append(length)
    return runs


def encode_counts(counts):
    """The compressed string: from the fourth count on, the difference to the count two before;
    5-bit groups, lowest first, as chr(48 + group), + 32 while more groups follow; a number ends
    when the rest is 0 (or -1 with the group's sign bit set)."""
    text = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        while True:
            group = x & 0x1F
            x >>= 5
            more = x != -1 if group & 0x10 else x != 0
            text.append(chr(48 + group + (0x20 if more else 0)))
            if not more:
                break
    return "".join(text)
