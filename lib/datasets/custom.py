"""A dataset of your own, described by its class tables: names, label map, palette, class weights.

Layout under ``<DATASET.ROOT>/<name>/``: any folders.  The lists ``<DATASET.ROOT>/list/<name>/*.lst``
pair each image (any format OpenCV reads: .jpg, .png, .tif, ...) with a single-channel 8-bit
label PNG whose pixels hold raw values 0..255; the label map turns raw values into class indices.
Without a label map, a raw value from NUM_CLASSES up other than 255 and the ignore label is out
of range: reading it stops the run (``BaseDataset``, DATASET.OUT_OF_RANGE_LABELS).
``tools/make_lists.py --dataset <name> --images <glob> --labels <glob>`` writes the lists.
Items are named by the image file name without its extension.

The tables are checked when they are built; every error names the config key that sets the
argument at fault (DATASET.CLASS_NAMES, LABEL_MAP, PALETTE, CLASS_WEIGHTS), since that is where
a user writes them.
"""
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .base_dataset import BaseDataset, readonly
from .files import DatasetError

__all__ = ["CustomDataset", "ClassTables", "class_tables", "distinct_palette"]

# Entry of label_to_train_id for raw values that belong to no class (the dataset replaces it by
# its ignore_label, as for the built-in tables).
_VOID = 255


def distinct_palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 RGB colours, the same for every call (the PASCAL VOC scheme).

    Colour k spreads the eight bits of k + 1 over the channels (bit b to channel b % 3, at bit
    position 7 - b // 3).  The map is one-to-one on 1..255, so the colours are distinct, and
    none is black, the colour of pixels without a class in the pictures.
    """
    if not 0 < num_classes <= 255:
        raise DatasetError(f"a palette has 1..255 colours, not {num_classes}")
    ids = np.arange(1, num_classes + 1)
    rgb = np.zeros((num_classes, 3), dtype=np.uint8)
    for bit in range(8):
        rgb[:, bit % 3] |= (((ids >> bit) & 1) << (7 - bit // 3)).astype(np.uint8)
    return rgb


@dataclass(frozen=True, eq=False)
class ClassTables:
    """The class tables every dataset exposes, for a dataset of your own.

    Attributes:
        class_names: K names in class-index order.
        label_to_train_id: (256,) uint8 lookup table, raw label value -> class index, 255 for
            raw values of no class.
        train_id_to_label: (K,) uint8, class index -> the raw value written into label PNGs
            (the first raw value of the class in the label map).
        void_values: the raw values of no class that are ignored: with a label map every raw
            value it does not list, without one none (255 and the ignore label always are).
        palette: (K, 3) uint8 RGB colours.
        class_weight_table: K loss weights, or None.
    """

    class_names: tuple[str, ...]
    label_to_train_id: np.ndarray
    train_id_to_label: np.ndarray
    void_values: tuple[int, ...]
    palette: np.ndarray
    class_weight_table: tuple[float, ...] | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def class_tables(class_names: Sequence[str], label_map: Sequence[Sequence[int]] = (),
                 palette: Sequence[Sequence[int]] = (),
                 class_weights: Sequence[float] = ()) -> ClassTables:
    """The checked tables of a dataset with ``class_names`` (K of them).

    Args:
        class_names: K distinct, non-empty names (DATASET.CLASS_NAMES).
        label_map: ``[raw value, class index]`` pairs, raw values 0..255, each listed once,
            indices 0..K-1, every class given at least one raw value; unlisted raw values are
            ignored (void).  Empty: the raw value is the class index; values >= K other than
            255 and the ignore label are out of range.
        palette: K ``[R, G, B]`` triples of 0..255; empty: :func:`distinct_palette`.
        class_weights: K finite, non-negative loss weights; empty: none.

    Raises DatasetError naming the DATASET.* key and the entry at fault.
    """
    names = _check_names(class_names)
    lut, to_label = _label_tables(label_map, names)
    void = tuple(np.flatnonzero(lut == _VOID).tolist()) if len(label_map) else ()
    weights = _check_weights(class_weights, len(names)) if len(class_weights) else None
    colours = _check_palette(palette, len(names)) if len(palette) else distinct_palette(len(names))
    return ClassTables(names, readonly(lut), readonly(to_label), void, readonly(colours), weights)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_names(class_names):
    if not class_names:
        raise DatasetError("DATASET.CLASS_NAMES is empty: a dataset that is not built in needs "
                           "one name per class")
    names = tuple(class_names)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f"DATASET.CLASS_NAMES entry {i} must be a non-empty name, got "
                               f"{name!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"DATASET.CLASS_NAMES names a class twice: {repeated}")
    if len(names) > 255:
        raise DatasetError(f"DATASET.CLASS_NAMES has {len(names)} names; labels are 8-bit with "
                           f"255 for ignored pixels, so at most 255 classes")
    return names


def _label_tables(label_map, names):
    """(256,) uint8 raw value -> class index (255 = ignored) and (K,) uint8 class index -> its
    first raw value, from the checked pairs."""
    k = len(names)
    lut = np.full(256, _VOID, dtype=np.uint8)
    if not len(label_map):
        lut[:k] = np.arange(k, dtype=np.uint8)
        return lut, np.arange(k, dtype=np.uint8)
    first = {}
    for i, pair in enumerate(label_map):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(map(_is_int, pair)):
            raise DatasetError(f"DATASET.LABEL_MAP entry {i} must be [raw value, class index] "
                               f"(two integers), got {pair!r}")
        raw, c = int(pair[0]), int(pair[1])
        if not 0 <= raw <= 255:
            raise DatasetError(f"DATASET.LABEL_MAP entry {i} {[raw, c]}: raw value {raw} is "
                               f"outside 0..255 (label PNGs are 8-bit)")
        if lut[raw] != _VOID:
            raise DatasetError(f"DATASET.LABEL_MAP entry {i} {[raw, c]}: raw value {raw} is "
                               f"listed twice")
        if not 0 <= c < k:
            raise DatasetError(f"DATASET.LABEL_MAP entry {i} {[raw, c]}: class index {c} is "
                               f"outside 0..{k - 1} ({k} classes in DATASET.CLASS_NAMES)")
        lut[raw] = c
        first.setdefault(c, raw)
    unmapped = [f"{c} ({name!r})" for c, name in enumerate(names) if c not in first]
    if unmapped:
        raise DatasetError(f"DATASET.LABEL_MAP gives no raw value to class(es) "
                           f"{', '.join(unmapped)}")
    return lut, np.array([first[c] for c in range(k)], dtype=np.uint8)


def _check_palette(palette, k):
    if len(palette) != k:
        raise DatasetError(f"DATASET.PALETTE has {len(palette)} colours for {k} classes")
    for i, colour in enumerate(palette):
        if (not isinstance(colour, (list, tuple)) or len(colour) != 3
                or not all(_is_int(v) and 0 <= v <= 255 for v in colour)):
            raise DatasetError(f"DATASET.PALETTE entry {i} must be [R, G, B] with integers "
                               f"0..255, got {colour!r}")
    return np.array(palette, dtype=np.uint8).reshape(k, 3)


def _check_weights(class_weights, k):
    if len(class_weights) != k:
        raise DatasetError(f"DATASET.CLASS_WEIGHTS has {len(class_weights)} weights for {k} "
                           f"classes")
    for i, w in enumerate(class_weights):
        if (not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w)
                or w < 0):
            raise DatasetError(f"DATASET.CLASS_WEIGHTS entry {i} must be a finite number >= 0, "
                               f"got {w!r}")
    return tuple(float(w) for w in class_weights)


class CustomDataset(BaseDataset):
    """A dataset of your own under ``<root>/<name>/``, its class tables from the arguments.

    Args:
        name: the dataset's folder under ``root`` (DATASET.DATASET).
        class_names, label_map, palette, class_weights: as :func:`class_tables`
            (DATASET.CLASS_NAMES, LABEL_MAP, PALETTE, CLASS_WEIGHTS).
        Other arguments: as :class:`lib.datasets.base_dataset.BaseDataset`.

    Exposes the tables as the built-in datasets do (``class_names``, ``num_classes``,
    ``label_to_train_id``, ``train_id_to_label``, ``palette``, ``class_weight_table`` and
    ``class_weights``, both None without weights) and has no conditions.
    """

    conditions = ()

    def __init__(self, root: str, list_path: str, split: str, *, name: str,
                 class_names: Sequence[str], label_map: Sequence[Sequence[int]] = (),
                 palette: Sequence[Sequence[int]] = (), class_weights: Sequence[float] = (),
                 **kwargs):
        self.tables = class_tables(class_names, label_map, palette, class_weights)
        self.folder = name
        self.num_classes = self.tables.num_classes
        self.class_names = self.tables.class_names
        self.label_to_train_id = self.tables.label_to_train_id
        self.void_values = self.tables.void_values
        self.train_id_to_label = self.tables.train_id_to_label
        self.palette = self.tables.palette
        self.class_weight_table = self.tables.class_weight_table
        super().__init__(root, list_path, split, **kwargs)
