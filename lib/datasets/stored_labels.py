"""What the reference benchmarks' datasets share: label files that store one raw value per class.

PASCAL-Context, COCO-Stuff, LIP and PASCAL VOC store each class as one 8-bit value in their
label PNGs; a class table is the list of those values in class-index order.  Of the other
values, 255 and the dataset's ``void_values`` are ignored and the rest are out of range
(``BaseDataset``).  The reference trains them without class weights: their weights are all 1
(the same loss; LOSS.CLASS_BALANCE keeps its default), and they have no conditions.
"""

import numpy as np

from .base_dataset import BaseDataset, readonly
from .custom import distinct_palette

__all__ = ["StoredLabelDataset", "stored_value_tables", "voc_colours"]


def stored_value_tables(raw_values):
    """``(label_to_train_id, train_id_to_label)`` for classes stored as ``raw_values[k]``.

    ``label_to_train_id``: (256,) uint8, raw value -> class index, 255 for every value that is
    no class's (void or out of range: the dataset's ``void_values`` say which);
    ``train_id_to_label``: (K,) uint8, the raw values (what label PNGs are written with).  Both
    read-only.
    """
    raw = np.asarray(raw_values, dtype=np.int64)
    if len(set(raw.tolist())) != len(raw) or raw.min() < 0 or raw.max() > 254:
        raise ValueError(f"raw values must be distinct and in 0..254, got {raw.tolist()}")
    lut = np.full(256, 255, dtype=np.uint8)
    lut[raw] = np.arange(len(raw), dtype=np.uint8)
    return readonly(lut), readonly(raw.astype(np.uint8))


def voc_colours(raw_values):
    """(K, 3) uint8 RGB: the PASCAL VOC colour map at each raw value (0 is black), read-only.

    The reference codes colour PASCAL-Context, COCO-Stuff and VOC predictions with this map.
    """
    colour_map = np.vstack([np.zeros((1, 3), np.uint8), distinct_palette(255)])
    return readonly(colour_map[np.asarray(raw_values, dtype=np.int64)])


class StoredLabelDataset(BaseDataset):
    """A built-in dataset of raw stored values: class weights all 1, no conditions.

    Subclasses set ``class_names``, ``label_to_train_id``, ``train_id_to_label``, ``palette``,
    ``void_values`` when they have void values besides 255, and the layout (``folder``,
    ``image_suffix``, ...); arguments are those of :class:`BaseDataset`, which swaps the
    ``flip_pairs`` classes of flipped labels and puts ``before_transform`` before the training
    transform.
    """

    conditions = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "class_names" in vars(cls):
            cls.num_classes = len(cls.class_names)
            # The loss weights as plain numbers, readable from the class without a dataset.
            cls.class_weight_table = (1.0,) * cls.num_classes

    def condition(self, name):
        """No conditions: always None."""
        return None
