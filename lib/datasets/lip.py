"""LIP (Look Into Person) human parsing: 20 classes as stored, left/right parts, palette, layout.

Layout under ``<DATASET.ROOT>/lip/`` (the release's two folders, as the reference reads them)::

    TrainVal_images/train_images/<id>.jpg          (30,462 images)
    TrainVal_images/val_images/<id>.jpg            (10,000 images)
    TrainVal_parsing_annotations/train_segmentations/<id>.png
    TrainVal_parsing_annotations/val_segmentations/<id>.png

List lines give the image relative to ``TrainVal_images/`` and the annotation relative to
``TrainVal_parsing_annotations/``, e.g. ``val_images/100034_483681.jpg
val_segmentations/100034_483681.png`` (the reference's ``valList.txt``); further fields, which
the reference's training lists carry, are not read.  Annotations are 8-bit PNGs whose value k is
class k (0 is the background, a class of its own); 255 is ignored and values 20..254 are out of
range (DATASET.OUT_OF_RANGE_LABELS).

Training, as the reference: a horizontal flip of the image as read, which swaps the left and
right parts (``FLIP_PAIRS``), then a resize to the crop (TRAIN.IMAGE_SIZE, ignoring the aspect
ratio), then the random scale and crop.  Evaluated with the ``lip`` protocol (resize to
TEST.IMAGE_SIZE, flip testing swaps the same channels).
"""
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .base_dataset import readonly
from .stored_labels import StoredLabelDataset, stored_value_tables
from .transforms import TrainTransform, mirror

__all__ = ["LIP", "CLASS_NAMES", "FLIP_PAIRS", "PALETTE", "CropSizeFirst"]

CLASS_NAMES = ("background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress",
               "coat", "socks", "pants", "jumpsuits", "scarf", "skirt", "face", "left-arm",
               "right-arm", "left-leg", "right-leg", "left-shoe", "right-shoe")

# Left/right classes that trade places in a mirrored image: arms, legs, shoes.
FLIP_PAIRS = ((14, 15), (16, 17), (18, 19))

# The LIP colour of each class, RGB.
PALETTE = readonly(np.array([
    (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0), (0, 0, 85),
    (0, 119, 221), (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0),
    (0, 0, 255), (51, 170, 221), (0, 255, 255), (85, 255, 170), (170, 255, 85), (255, 255, 0),
    (255, 170, 0)], dtype=np.uint8))


@dataclass(frozen=True)
class CropSizeFirst:
    """The LIP training transform of the reference (HRNet-OCR's ``lib/datasets/lip.py``): a
    random horizontal flip of the image as read (``transform.flip``, swapping
    ``transform.flip_pairs``), then the image (bilinear) and the label (nearest) resized to
    ``transform.crop_size`` with cv2.resize, aspect ratio not kept, then ``transform`` without
    its flip (random scale, pad at the bottom/right, crop).

    Flipping first matters at scales below 1: the scaled image is padded at the bottom/right of
    the unflipped or flipped sample alike, as in the reference; a flip after the padding would
    put it on the left.  Takes and returns what :class:`TrainTransform` does; draws from ``rng``
    the flip, then what ``transform`` draws (scale, crop x, crop y), the reference's order.
    """

    transform: TrainTransform

    def __call__(self, image, label, rng):
        inner = self.transform
        if inner.flip and rng.integers(0, 2):
            image, label = mirror(image, label, inner.flip_pairs)
        crop_h, crop_w = inner.crop_size
        if label.shape != (crop_h, crop_w):
            image = cv2.resize(image, (crop_w, crop_h), interpolation=cv2.INTER_LINEAR)
            label = cv2.resize(label, (crop_w, crop_h), interpolation=cv2.INTER_NEAREST)
        return replace(inner, flip=False)(image, label, rng)


class LIP(StoredLabelDataset):
    """LIP single-person parsing, 20 classes; items are named by the image id, e.g.
    ``100034_483681``.  Arguments are those of :class:`BaseDataset`.
    """

    folder = "lip"
    image_folder = "TrainVal_images"
    label_folder = "TrainVal_parsing_annotations"
    list_fields = 4
    image_suffix = ".jpg"
    class_names = CLASS_NAMES
    label_to_train_id, train_id_to_label = stored_value_tables(range(20))
    palette = PALETTE
    flip_pairs = FLIP_PAIRS
    eval_protocol = "lip"
    before_transform = CropSizeFirst
