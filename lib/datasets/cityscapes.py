"""Cityscapes: class names, label-id -> trainId table, palette, class weights and file naming.

These tables are the single definition for every dataset that uses Cityscapes label ids (ACDC
imports them).  Arrays are read-only so that no caller can change them for everybody.

Layout under ``<DATASET.ROOT>/cityscapes/``::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
"""
import numpy as np

from .base_dataset import BaseDataset, readonly

__all__ = ["Cityscapes", "CLASS_NAMES", "TRAIN_LABEL_IDS", "VOID_LABEL_IDS", "LABEL_TO_TRAIN_ID",
           "TRAIN_ID_TO_LABEL", "PALETTE", "CLASS_WEIGHTS"]

# The 19 evaluated classes, in trainId order.
CLASS_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
               "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
               "bus", "train", "motorcycle", "bicycle")

# Cityscapes label id of each trainId 0..18; the other ids (0-6, 9, 10, 14-16, 18, 29, 30) and
# 255 (license plate, id -1 in 8 bits) are void and map to 255.  Ids above 33 are no Cityscapes
# label: out of range.
TRAIN_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
# The void label ids below 34 (ignored in training and evaluation).
VOID_LABEL_IDS = tuple(i for i in range(34) if i not in TRAIN_LABEL_IDS)


# 256-entry lookup table: label id -> trainId (255 = ignored).
LABEL_TO_TRAIN_ID = np.full(256, 255, dtype=np.uint8)
LABEL_TO_TRAIN_ID[list(TRAIN_LABEL_IDS)] = np.arange(len(TRAIN_LABEL_IDS), dtype=np.uint8)
LABEL_TO_TRAIN_ID = readonly(LABEL_TO_TRAIN_ID)

# 19-entry table: trainId -> Cityscapes label id (the ids the benchmark servers expect).
TRAIN_ID_TO_LABEL = readonly(np.array(TRAIN_LABEL_IDS, dtype=np.uint8))

# Colour of each trainId, RGB.
PALETTE = readonly(np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32)], dtype=np.uint8))

# Loss weight of each trainId (the reference HRNet weights, also used for ACDC).
CLASS_WEIGHTS = (0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023,
                 0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507)


class CityscapesTables:
    """Class tables shared by the datasets that use Cityscapes label ids (mixed into them)."""

    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES
    palette = PALETTE
    label_to_train_id = LABEL_TO_TRAIN_ID
    void_values = VOID_LABEL_IDS
    train_id_to_label = TRAIN_ID_TO_LABEL
    # The loss weights as plain numbers, readable from the class without building a dataset.
    class_weight_table = CLASS_WEIGHTS


class Cityscapes(CityscapesTables, BaseDataset):
    """Cityscapes fine annotations; items are named by the image stem, e.g.
    ``frankfurt_000000_000294`` for ``frankfurt_000000_000294_leftImg8bit.png``.

    Arguments are those of :class:`BaseDataset`.
    """

    folder = "cityscapes"
    image_suffix = "_leftImg8bit.png"
    conditions = ()  # no weather conditions (ACDC has four)
    same_size_images = True  # 2048 x 1024
