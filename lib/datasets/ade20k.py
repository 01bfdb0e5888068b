"""ADE20K (MIT Scene Parsing, ADEChallengeData2016): 150 classes, label mapping, palette, layout.

Layout under ``<DATASET.ROOT>/ade20k/`` (the official ADEChallengeData2016.zip, unpacked)::

    images/training/ADE_train_%08d.jpg        annotations/training/ADE_train_%08d.png
    images/validation/ADE_val_%08d.jpg        annotations/validation/ADE_val_%08d.png

Annotations are 8-bit single-channel PNGs: raw value 0 is "other" (not one of the 150 classes)
and is ignored; raw value k (1..150) is class k - 1; 255 is ignored, and values 151..254 are out
of range.  Images are JPEGs.  Arrays are read-only.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from ..utils.geometry import short_side_size
from .base_dataset import BaseDataset, readonly
from .transforms import TrainTransform

__all__ = ["ADE20K", "CLASS_NAMES", "LABEL_TO_TRAIN_ID", "TRAIN_ID_TO_LABEL", "PALETTE",
           "ShortSideFirst"]

# The 150 classes in training-id order (raw annotation value - 1), short names.
CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug",
    "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop",
    "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning",
    "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole",
    "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van",
    "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
    "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball",
    "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light",
    "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board",
    "shower", "radiator", "glass", "clock", "flag")


# 256-entry lookup table: raw annotation value -> training id; 0 ("other") and anything above
# 150 -> 255 (ignored, where the values above 150 are allowed at all: DATASET.OUT_OF_RANGE_LABELS).
LABEL_TO_TRAIN_ID = np.full(256, 255, dtype=np.uint8)
LABEL_TO_TRAIN_ID[1:len(CLASS_NAMES) + 1] = np.arange(len(CLASS_NAMES), dtype=np.uint8)
LABEL_TO_TRAIN_ID = readonly(LABEL_TO_TRAIN_ID)

# 150-entry table: training id k -> raw annotation value k + 1 (for writing label PNGs).
TRAIN_ID_TO_LABEL = readonly(np.arange(1, len(CLASS_NAMES) + 1, dtype=np.uint8))

# The standard colour of each class, RGB, in training-id order.
PALETTE = readonly(np.array([
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3),
    (120, 120, 80), (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7),
    (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70), (8, 255, 51),
    (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3),
    (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71),
    (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7),
    (255, 122, 8), (0, 255, 20), (255, 8, 41), (255, 5, 153), (6, 51, 255),
    (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140), (250, 10, 15),
    (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0),
    (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112),
    (0, 255, 133), (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0),
    (0, 143, 255), (51, 255, 0), (0, 82, 255), (0, 255, 41), (0, 255, 173),
    (10, 0, 255), (173, 255, 0), (0, 255, 153), (255, 92, 0), (255, 0, 255),
    (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20), (255, 184, 184),
    (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255),
    (0, 122, 255), (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0),
    (143, 255, 0), (82, 0, 255), (163, 255, 0), (255, 235, 0), (8, 184, 170),
    (133, 0, 255), (0, 255, 92), (184, 0, 255), (255, 0, 31), (0, 184, 255),
    (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255), (112, 224, 255),
    (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235),
    (245, 0, 255), (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0),
    (0, 204, 255), (20, 0, 255), (255, 255, 0), (0, 153, 255), (0, 41, 255),
    (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255), (0, 245, 255),
    (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255), (184, 255, 0),
    (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255)],
    dtype=np.uint8))


@dataclass(frozen=True)
class ShortSideFirst:
    """The HRNet-OCR ADE20K training transform: resize so that the short side is
    ``transform.base_size`` (``short_side_size``; image bilinear, label nearest, with
    cv2.resize), then ``transform`` (random scale of the long side, pad, crop, flip).

    Takes and returns what :class:`TrainTransform` does; draws only through ``transform``.
    """

    transform: TrainTransform

    def __call__(self, image, label, rng):
        h, w = label.shape
        new_h, new_w = short_side_size(h, w, self.transform.base_size)
        if (new_h, new_w) != (h, w):
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
            label = cv2.resize(label, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
        return self.transform(image, label, rng)


class ADE20K(BaseDataset):
    """ADE20K scene parsing, 150 classes; items are named by the image stem, e.g.
    ``ADE_val_00000001``.  Evaluated with the HRNet-OCR protocol (``eval_protocol``).

    The training transform is :class:`ShortSideFirst` around the given one.  The reference
    trains without class weights; the class weights are all 1, which is the same loss and lets
    LOSS.CLASS_BALANCE keep its default.  No conditions.  Arguments are those of
    :class:`BaseDataset`.
    """

    folder = "ade20k"
    image_suffix = ".jpg"
    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES
    palette = PALETTE
    label_to_train_id = LABEL_TO_TRAIN_ID
    void_values = (0,)  # "other"
    train_id_to_label = TRAIN_ID_TO_LABEL
    # The loss weights as plain numbers, readable from the class without building a dataset.
    class_weight_table = (1.0,) * len(CLASS_NAMES)
    conditions = ()
    eval_protocol = "ade20k"
    # HRNet-OCR's ADE20K testval items carry no border_padding: the padded score map is resized
    # to the label size padding included.
    eval_crop_padding = False
    before_transform = ShortSideFirst
