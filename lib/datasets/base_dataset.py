"""List-file segmentation dataset: the items of a list, their labels mapped and transformed.

A list file holds one sample per line, ``image label`` (tab or spaces) or only ``image``, with
paths relative to the dataset folder ``<root>/<folder>/`` (read by :mod:`.files`).  Items:

- ``"train"`` and ``"val"`` splits, and ``"test"`` with a labelled list:
  ``(image, label, size, name)``;
- ``"test"`` with an image-only list: ``(image, size, name)``;

where ``image`` is a float32 tensor (3, H, W), RGB, normalised as the network wants it
(``normalization``, the network's: ``(x / 255 - mean) / std``); ``label`` an int64
tensor (H, W) of trainIds with ``ignore_label`` (255) for void pixels; ``size`` an int64 tensor
``[H, W]`` holding the size of the image file (the default collate stacks it to (B, 2));
``name`` the image file name without the dataset's image suffix.  Items are fetched by an
``(index, epoch)`` key, whose random training transform depends on the key only, or by a plain
index, which stands for epoch :data:`PLAIN_INDEX_EPOCH`.

Every problem with the data raises :class:`DatasetError` naming the file and, for files from a list,
the list file and line.  Nothing is skipped silently: a label value that is neither a class nor
void (see ``void_values``) stops the run unless ``out_of_range_labels`` is ``"ignore"``.
"""
import dataclasses
import functools
import os

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..config.choices import OUT_OF_RANGE_MODES
from ..utils.normalization import IMAGENET, ImageNormalization
from .files import DatasetError, check_listed_files, image_size, read_image, read_label, read_list
from .transforms import TrainTransform

__all__ = ["BaseDataset", "SPLITS", "PLAIN_INDEX_EPOCH", "OUT_OF_RANGE_MODES", "readonly"]

SPLITS = ("train", "val", "test")
# The stored value of void pixels in every dataset's files, unless it is a class's.
_VOID_VALUE = 255
# Out-of-range label values named in an error; the rest are counted.
_MAX_VALUES_LISTED = 10
# The epoch of an item fetched by a plain index: ``dataset[i]`` is ``dataset[(i, 0)]``.
PLAIN_INDEX_EPOCH = 0


def readonly(array: np.ndarray) -> np.ndarray:
    """``array`` made read-only, for the class tables that every dataset of a kind shares (no
    caller can change them for everybody)."""
    array.flags.writeable = False
    return array


class BaseDataset(Dataset):
    """Samples of a list file under ``<root>/<folder>/``, read with OpenCV and transformed.

    Subclasses set ``folder`` (sub-folder of ``root``), ``image_suffix`` (removed from image file
    names to give item names) and the class tables (``label_to_train_id`` and the rest).

    Args:
        root: the folder holding ``<folder>/`` and the lists (DATASET.ROOT).
        list_path: list file, relative to ``root`` (or absolute).
        split: ``"train"`` (``transform``, labels required), ``"val"`` (full normalised image,
            labels required) or ``"test"`` (full normalised image, labels when the list has them).
        ignore_label: label of void pixels (every id outside the class table); the transform
            pads with the same label.
        transform: the random training transform (train split only; default: the reference
            transform with its default settings), with the class's ``flip_pairs`` swapped in
            flipped labels and its ``before_transform`` around it; held as
            ``self.train_transform``.
        normalization: how the images are normalised: the network's
            (``lib.models.input_normalization``; every network here takes ``IMAGENET``).
        num_samples: keep only the first ``num_samples`` items (0 = all).
        out_of_range_labels: ``"error"``: a stored label value that is no class and not void
            (``void_values``, 255 or ``ignore_label``) raises DatasetError naming the file, its
            list line and the values, when the item is read; ``"ignore"``: such values are
            ignored like void ones.
        seed: seed of the random training transform (None = fresh OS entropy).  The item at key
            ``(index, epoch)`` draws from a numpy Generator seeded with ``(seed, epoch, index)``,
            the same in any worker, any number of workers and after a resume.
    """

    folder = ""
    # Sub-folders of ``folder`` that the list's image and label paths are relative to ("" =
    # ``folder`` itself; LIP keeps images and annotations in two release folders).
    image_folder = ""
    label_folder = ""
    # Fields a list line may hold; those after ``image label`` are not read.
    list_fields = 2
    image_suffix = ""
    num_classes = 0
    label_to_train_id = None
    # Stored values that the dataset defines as void (no class, ignored), besides 255 and the
    # ignore label, which are void in every dataset; any other value that is no class's is out of
    # range (a wrong NUM_CLASSES, label map or label file).
    void_values = ()
    # The lib.evaluation.protocols protocol of the dataset's benchmark (TEST.PROTOCOL "").
    eval_protocol = "cityscapes"
    # Whether the ade20k protocol cuts its multiple-of-8 padding off the scores before the
    # resize to the label size (TEST.CROP_PADDING empty): the reference does so for the datasets
    # whose test items carry their padding (HRNet-OCR's PASCAL-Context and COCO-Stuff).
    eval_crop_padding = False
    # Whether every image of the dataset is known to have one size (Cityscapes and ACDC), so
    # that evaluation batches whole images without reading a file; otherwise the image files'
    # headers say it (``image_size_mismatch``).
    same_size_images = False
    # (a, b) class pairs that trade places when an image is mirrored (LIP's left and right
    # body parts): the training flip and flip testing swap them.
    flip_pairs = ()
    # A step before the training transform (ADE20K's and PASCAL-Context's short side first,
    # LIP's crop size first): a wrapper class built around the transform, ``wrapper(transform)``.
    before_transform = None
    # The loss weight of each class as plain numbers, readable from the class without building a
    # dataset (LOSS.CLASS_BALANCE); None: the dataset has none.
    class_weight_table = None

    @property
    def class_weights(self) -> torch.Tensor | None:
        """float32 tensor of ``class_weight_table`` (a new tensor on each access), or None."""
        table = self.class_weight_table
        return None if table is None else torch.tensor(table, dtype=torch.float32)

    def __init__(self, root: str, list_path: str, split: str, *, ignore_label: int = 255,
                 transform: TrainTransform | None = None,
                 normalization: ImageNormalization = IMAGENET, num_samples: int = 0,
                 seed: int | None = None, out_of_range_labels: str = "error"):
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
        if not self.num_classes <= ignore_label <= 255:
            raise DatasetError(f"ignore_label must lie in [{self.num_classes}, 255] (labels are "
                               f"8-bit), got {ignore_label}")
        transform = transform or TrainTransform(ignore_label=ignore_label)
        if transform.ignore_label != ignore_label:
            raise DatasetError(f"the transform pads with label {transform.ignore_label} but "
                               f"ignore_label is {ignore_label}")
        if num_samples < 0:
            raise DatasetError(f"num_samples must be >= 0, got {num_samples}")
        if out_of_range_labels not in OUT_OF_RANGE_MODES:
            raise DatasetError(f"out_of_range_labels (DATASET.OUT_OF_RANGE_LABELS) must be one of "
                               f"{list(OUT_OF_RANGE_MODES)}, got {out_of_range_labels!r}")
        if self.flip_pairs:
            transform = dataclasses.replace(transform, flip_pairs=tuple(self.flip_pairs))
        if self.before_transform is not None:
            transform = self.before_transform(transform)
        self.split = split
        self.ignore_label = ignore_label
        self.train_transform = transform
        self.normalization = normalization
        self._seed = seed if seed is not None else int(np.random.SeedSequence().entropy)
        # Void ids are 255 in the class table and ignore_label in the labels read.
        self._lut = self.label_to_train_id.copy()
        self._lut[self._lut == 255] = ignore_label
        self._out_of_range = None if out_of_range_labels == "ignore" else \
            self._out_of_range_table(ignore_label)

        self.entries = self._read_entries(root, list_path, num_samples)
        self.has_labels = self.entries[0].label is not None
        if split != "test" and not self.has_labels:
            raise DatasetError(f"{self.list_file}: the {split} split needs labels, but the list "
                               f"holds only images")
        self.names = [self._name(entry.image) for entry in self.entries]

    def _read_entries(self, root, list_path, num_samples):
        if not os.path.isdir(root):
            raise DatasetError(f"dataset root (DATASET.ROOT) not found: {root}")
        self.data_dir = os.path.join(root, self.folder)
        if not os.path.isdir(self.data_dir):
            raise DatasetError(f"dataset folder not found: {self.data_dir}")
        self.list_file = os.path.join(root, list_path)
        entries = self._select(read_list(self.list_file, self.list_fields))
        if num_samples:
            entries = entries[:num_samples]
        check_listed_files(entries, os.path.join(self.data_dir, self.image_folder),
                           self.list_file, os.path.join(self.data_dir, self.label_folder))
        return entries

    def _out_of_range_table(self, ignore_label):
        """(256,) uint8: 1 at the stored values that are no class and not void."""
        table = (self.label_to_train_id == 255).astype(np.uint8)
        table[[*self.void_values, _VOID_VALUE, ignore_label]] = 0
        return table

    def _check_label_values(self, raw, label_path, where):
        """Raise DatasetError naming the out-of-range values of ``raw`` (H, W) uint8 stored
        values, if any (one table lookup and a count when there are none)."""
        found = cv2.LUT(raw, self._out_of_range)
        if not cv2.countNonZero(found):
            return
        values = np.unique(raw[found.astype(bool)]).tolist()
        listed = values if len(values) <= _MAX_VALUES_LISTED else \
            f"{values[:_MAX_VALUES_LISTED]} ... {values[-1]} ({len(values)} values)"
        raise DatasetError(
            f"{where}label values {listed} ({cv2.countNonZero(found)} of {raw.size} pixels) in "
            f"{label_path} are neither one of the {self.num_classes} classes of "
            f"{type(self).__name__} nor void; check DATASET.NUM_CLASSES, the label map "
            f"(DATASET.LABEL_MAP of a dataset of your own) and the label file, or set "
            f"DATASET.OUT_OF_RANGE_LABELS ignore to train with these pixels ignored")

    @functools.cached_property
    def image_size_mismatch(self) -> str | None:
        """None when every image of the list has one size, so that evaluation may batch whole
        images: declared by ``same_size_images``, else read from every image file's header
        (``files.image_size``; the pixels are not decoded), once.  Otherwise a sentence naming
        the first image whose size differs from the first image's, or cannot be read from its
        header."""
        if self.same_size_images:
            return None
        folder = os.path.join(self.data_dir, self.image_folder)
        first = None
        for entry in self.entries:
            path = os.path.join(folder, entry.image)
            size = image_size(path)
            if size is None:
                return f"the size of {path} cannot be read from its header"
            if first is None:
                first = path, size
            elif size != first[1]:
                return (f"{path} is {size[0]}x{size[1]} (height x width), {first[0]} "
                        f"{first[1][0]}x{first[1][1]}")
        return None

    def _select(self, entries):
        """Hook for subclasses that keep only some entries of a list (ACDC conditions)."""
        return entries

    def _name(self, image_path):
        base = os.path.basename(image_path)
        if self.image_suffix and base.endswith(self.image_suffix):
            return base[:-len(self.image_suffix)]
        return os.path.splitext(base)[0]

    def condition(self, name):
        """The group an item's metrics are also reported in (ACDC's weather condition), or None:
        datasets without conditions have none."""
        return None

    def __len__(self):
        return len(self.entries)

    def __repr__(self):
        return (f"{type(self).__name__}(split={self.split!r}, {len(self)} items, "
                f"list={self.list_file!r})")

    def __getitem__(self, key):
        """The item at ``key``: an ``(index, epoch)`` pair or an index (see ``seed``)."""
        index, epoch = key if isinstance(key, tuple) else (key, PLAIN_INDEX_EPOCH)
        entry = self.entries[index]
        where = f"{self.list_file}:{entry.line}: "
        image_path = os.path.join(self.data_dir, self.image_folder, entry.image)
        image = read_image(image_path, where)
        size = torch.tensor(image.shape[:2], dtype=torch.int64)
        name = self.names[index]
        if entry.label is None:
            return torch.from_numpy(self.normalization.normalize(image)), size, name
        label_path = os.path.join(self.data_dir, self.label_folder, entry.label)
        raw = read_label(label_path, where)
        if self._out_of_range is not None:
            self._check_label_values(raw, label_path, where)
        label = cv2.LUT(raw, self._lut)
        if label.shape != image.shape[:2]:
            raise DatasetError(f"{where}image and label sizes differ: {image_path} is "
                               f"{image.shape[0]}x{image.shape[1]}, {label_path} is "
                               f"{label.shape[0]}x{label.shape[1]}")
        if self.split == "train":
            rng = np.random.default_rng([self._seed, epoch, index])
            image, label = self.train_transform(image, label, rng)
        image = self.normalization.normalize(image)
        return torch.from_numpy(image), torch.from_numpy(label.astype(np.int64)), size, name
