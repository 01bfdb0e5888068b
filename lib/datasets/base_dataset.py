"""List-file segmentation dataset: reading, label mapping and the training / evaluation transforms.

A list file holds one sample per line, ``image label`` (tab or spaces) or only ``image``, with
paths relative to the dataset folder ``<root>/<folder>/``.  Items:

- ``"train"`` and ``"val"`` splits, and ``"test"`` with a labelled list:
  ``(image, label, size, name)``;
- ``"test"`` with an image-only list: ``(image, size, name)``;

where ``image`` is a float32 tensor (3, H, W), RGB, ``(x / 255 - mean) / std``; ``label`` an int64
tensor (H, W) of trainIds with ``ignore_label`` (255) for void pixels; ``size`` an int64 tensor
``[H, W]`` holding the size of the image file (the default collate stacks it to (B, 2));
``name`` the image file name without the dataset's image suffix.  Items are fetched by index or
by an ``(index, epoch)`` key, whose random training transform depends on the key only.

Every problem with the data raises :class:`DatasetError` naming the file and, for files from a list,
the list file and line.  Nothing is skipped silently.
"""
import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["BaseDataset", "DatasetError", "ListEntry", "SPLITS", "MEAN", "STD", "read_list",
           "read_image", "read_label", "scaled_size", "random_scaled_crop", "normalize"]

SPLITS = ("train", "val", "test")
# ImageNet statistics of RGB values in [0, 1].
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every complete PNG ends with an empty IEND chunk: length 0, type, CRC.  OpenCV can decode a cut
# file partially, so its end is checked before decoding.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_MAX_LISTED = 10


class DatasetError(ValueError):
    """A dataset file, list or argument that cannot be used; the message names the culprit."""


@dataclass(frozen=True)
class ListEntry:
    """One line of a list file: paths relative to the dataset folder, 1-based line number."""

    image: str
    label: str | None
    line: int


def read_list(list_file):
    """The entries of ``list_file``; blank lines are ignored, every other line is a sample.

    Raises DatasetError for a missing or empty file, a line with more than two fields, and a list
    that mixes ``image label`` lines with ``image`` lines (naming the first odd line).
    """
    if not os.path.isfile(list_file):
        raise DatasetError(f"list file not found: {list_file}")
    entries = []
    with open(list_file) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) > 2:
                raise DatasetError(f"{list_file}:{number}: expected 'image label' or 'image', "
                                   f"got {len(fields)} fields: {line.strip()!r}")
            entries.append(ListEntry(fields[0], fields[1] if len(fields) == 2 else None, number))
    if not entries:
        raise DatasetError(f"list file is empty: {list_file}")
    first = entries[0]
    for entry in entries:
        if (entry.label is None) != (first.label is None):
            raise DatasetError(
                f"{list_file}:{entry.line}: {_columns(entry)} but line {first.line} has "
                f"{_columns(first)}; a list holds 'image label' on every line or only 'image'")
    return entries


def _columns(entry):
    return "1 column (image)" if entry.label is None else "2 columns (image label)"


def _check_file(path, what, where):
    if not os.path.isfile(path):
        raise DatasetError(f"{where}{what} not found: {path}")
    if not path.lower().endswith(".png"):
        return
    with open(path, "rb") as f:
        head = f.read(len(_PNG_SIGNATURE))
        f.seek(max(os.fstat(f.fileno()).st_size - len(_PNG_END), 0))
        tail = f.read()
    if head != _PNG_SIGNATURE:
        raise DatasetError(f"{where}{what} is not a PNG file (bad signature): {path}")
    if tail != _PNG_END:
        raise DatasetError(f"{where}{what} is truncated or damaged (no IEND chunk at the end of "
                           f"the PNG): {path}")


def read_image(path, where=""):
    """BGR uint8 (H, W, 3) image, read with ``cv2.imread(path, cv2.IMREAD_COLOR)``.

    ``where`` prefixes error messages (``"<list>:<line>: "``).
    """
    _check_file(path, "image", where)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{where}cannot decode image: {path}")
    return image


def read_label(path, label_to_train_id, where=""):
    """uint8 (H, W) trainIds: a single-channel 8-bit label-id PNG mapped by the 256-entry LUT."""
    _check_file(path, "label", where)
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DatasetError(f"{where}cannot decode label: {path}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DatasetError(f"{where}label must be a single-channel 8-bit image of label ids, got "
                           f"shape {label.shape} and dtype {label.dtype}: {path}")
    return cv2.LUT(label, label_to_train_id)


def scaled_size(h, w, long_size):
    """(new_h, new_w) with the long side ``long_size``, the short one ``int(short * long / long_side
    + 0.5)`` (the reference rule)."""
    if h > w:
        return long_size, int(w * long_size / h + 0.5)
    return int(h * long_size / w + 0.5), long_size


def random_scaled_crop(image, label, long_size, crop_size, ignore_label, rng):
    """Resize to ``scaled_size(h, w, long_size)``, pad to the crop and take a random crop.

    The same sample as the reference, which resizes the whole image (cv2.resize, bilinear image,
    nearest label), pads the bottom/right to at least ``crop_size`` (h, w) with 0 / ``ignore_label``
    and crops at offsets drawn uniformly from [0, padded - crop] (x first, then y, from the numpy
    Generator ``rng``).  Only the crop window is interpolated: the label with cv2.resize's
    nearest-neighbour rule (bit-identical), the image with cv2.warpAffine on cv2.resize's
    pixel-centre mapping, which differs from resizing the whole image by at most one grey level
    (the two functions round bilinear weights differently) and costs a fraction of it.
    """
    crop_h, crop_w = crop_size
    h, w = label.shape
    new_h, new_w = scaled_size(h, w, long_size)
    x = int(rng.integers(0, max(new_w - crop_w, 0) + 1))
    y = int(rng.integers(0, max(new_h - crop_h, 0) + 1))
    win_h, win_w = min(crop_h, new_h - y), min(crop_w, new_w - x)
    if (new_h, new_w) == (h, w):
        image = image[y:y + win_h, x:x + win_w]
        label = label[y:y + win_h, x:x + win_w]
    else:
        sx, sy = w / new_w, h / new_h
        # dst (i, j) of the window samples src ((x + j + 0.5) * sx - 0.5, (y + i + 0.5) * sy - 0.5)
        m = np.array([[sx, 0.0, (x + 0.5) * sx - 0.5], [0.0, sy, (y + 0.5) * sy - 0.5]])
        image = cv2.warpAffine(image, m, (win_w, win_h),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        # cv2.resize INTER_NEAREST: src = min(floor(dst * (1 / (new / old))), old - 1)
        rows = np.minimum(np.floor(np.arange(y, y + win_h) * (1.0 / (new_h / h))), h - 1)
        cols = np.minimum(np.floor(np.arange(x, x + win_w) * (1.0 / (new_w / w))), w - 1)
        label = label.take(rows.astype(np.intp), axis=0).take(cols.astype(np.intp), axis=1)
    pad_h, pad_w = crop_h - win_h, crop_w - win_w
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        label = cv2.copyMakeBorder(label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                   value=(ignore_label,))
    return image, label


def normalize(image, mean=MEAN, std=STD):
    """float32 (3, H, W) RGB ``(x / 255 - mean) / std`` from a BGR uint8 (H, W, 3) image."""
    h, w = image.shape[:2]
    out = np.empty((3, h, w), dtype=np.float32)
    for c in range(3):  # RGB channel c is BGR channel 2 - c
        np.multiply(image[:, :, 2 - c], np.float32(1.0 / (255.0 * std[c])), out=out[c])
        out[c] -= np.float32(mean[c] / std[c])
    return out


class BaseDataset(Dataset):
    """Samples of a list file under ``<root>/<folder>/``, read with OpenCV and transformed.

    Subclasses set ``folder`` (sub-folder of ``root``), ``image_suffix`` (removed from image file
    names to give item names) and the class tables (``label_to_train_id`` and the rest).

    Args:
        root: the folder holding ``<folder>/`` and the lists (DATASET.ROOT).
        list_path: list file, relative to ``root`` (or absolute).
        split: ``"train"`` (random training transform, labels required), ``"val"`` (full
            normalised image, labels required) or ``"test"`` (full normalised image, labels when
            the list has them).
        ignore_label: label of void pixels (every id outside the class table), also written into
            padding.
        base_size: long side of an image at scale 1 (training).
        crop_size: training crop (h, w).
        scale_factor: training scales are ``0.5 + k / 10`` for k = 0..scale_factor.
        flip: random horizontal flip with probability 0.5 (training).
        multi_scale: random scaling and cropping (training).  As in the reference, without it a
            training sample is the whole image, neither resized nor cropped.
        downsample_rate: the training label is resized by ``1 / downsample_rate`` (nearest).
        mean, std: RGB normalisation statistics of values in [0, 1].
        num_samples: keep only the first ``num_samples`` items (0 = all).
        seed: seed of the random training transform (None = fresh OS entropy).  Items fetched
            by index draw from the dataset's Generator, which DataLoader workers reseed through
            :func:`lib.datasets.seed_worker`; items fetched by an ``(index, epoch)`` key draw from
            a Generator seeded with ``(seed, epoch, index)``, the same in any worker, any number
            of workers and after a resume.
    """

    folder = ""
    image_suffix = ""
    num_classes = 0
    label_to_train_id = None

    def __init__(self, root: str, list_path: str, split: str, *, ignore_label: int = 255,
                 base_size: int = 2048, crop_size: tuple[int, int] = (512, 1024),
                 scale_factor: int = 16, flip: bool = True, multi_scale: bool = True,
                 downsample_rate: float = 1, mean: tuple[float, float, float] = MEAN,
                 std: tuple[float, float, float] = STD, num_samples: int = 0,
                 seed: int | None = None):
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
        if not self.num_classes <= ignore_label <= 255:
            raise DatasetError(f"ignore_label must lie in [{self.num_classes}, 255] (labels are "
                               f"8-bit), got {ignore_label}")
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise DatasetError(f"crop_size must be (h, w) with positive sizes, got {crop_size}")
        if downsample_rate <= 0 or scale_factor < 0 or num_samples < 0 or base_size <= 0:
            raise DatasetError(f"invalid transform settings: base_size {base_size}, scale_factor "
                               f"{scale_factor}, downsample_rate {downsample_rate}, "
                               f"num_samples {num_samples}")
        self.split = split
        self.ignore_label = ignore_label
        self.base_size = base_size
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.scale_factor = scale_factor
        self.flip = flip
        self.multi_scale = multi_scale
        self.downsample_rate = downsample_rate
        self.mean = tuple(mean)
        self.std = tuple(std)
        self._seed = seed if seed is not None else int(np.random.SeedSequence().entropy)
        self._rng = np.random.default_rng(self._seed)
        # Void ids are 255 in the class table and ignore_label in the labels read.
        self._lut = self.label_to_train_id.copy()
        self._lut[self._lut == 255] = ignore_label

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
        entries = self._select(read_list(self.list_file))
        if num_samples:
            entries = entries[:num_samples]
        self._check_files_exist(entries)
        return entries

    def _select(self, entries):
        """Hook for subclasses that keep only some entries of a list (ACDC conditions)."""
        return entries

    def _name(self, image_path):
        base = os.path.basename(image_path)
        if self.image_suffix and base.endswith(self.image_suffix):
            return base[:-len(self.image_suffix)]
        return os.path.splitext(base)[0]

    def _check_files_exist(self, entries):
        missing = []
        for entry in entries:
            for what, rel in (("image", entry.image), ("label", entry.label)):
                if rel is not None and not os.path.isfile(os.path.join(self.data_dir, rel)):
                    missing.append(f"{self.list_file}:{entry.line}: {what} not found: "
                                   f"{os.path.join(self.data_dir, rel)}")
        if missing:
            more = len(missing) - _MAX_LISTED
            listed = "\n".join(missing[:_MAX_LISTED])
            listed += f"\n... and {more} more" if more > 0 else ""
            raise DatasetError(f"{len(missing)} file(s) of {self.list_file} not found:\n{listed}")

    def reseed(self, seed):
        """Replace the Generator of the random training transform (called in each worker)."""
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.entries)

    def __repr__(self):
        return (f"{type(self).__name__}(split={self.split!r}, {len(self)} items, "
                f"list={self.list_file!r})")

    def __getitem__(self, key):
        """The item at ``key``: an index, or an ``(index, epoch)`` pair (see ``seed``)."""
        if isinstance(key, tuple):
            index, epoch = key
            rng = np.random.default_rng([self._seed, epoch, index])
        else:
            index, rng = key, self._rng
        entry = self.entries[index]
        where = f"{self.list_file}:{entry.line}: "
        image_path = os.path.join(self.data_dir, entry.image)
        image = read_image(image_path, where)
        size = torch.tensor(image.shape[:2], dtype=torch.int64)
        name = self.names[index]
        if entry.label is None:
            return torch.from_numpy(normalize(image, self.mean, self.std)), size, name
        label_path = os.path.join(self.data_dir, entry.label)
        label = read_label(label_path, self._lut, where)
        if label.shape != image.shape[:2]:
            raise DatasetError(f"{where}image and label sizes differ: {image_path} is "
                               f"{image.shape[0]}x{image.shape[1]}, {label_path} is "
                               f"{label.shape[0]}x{label.shape[1]}")
        if self.split == "train":
            image, label = self._train_transform(image, label, rng)
        else:
            image = normalize(image, self.mean, self.std)
        return torch.from_numpy(image), torch.from_numpy(label.astype(np.int64)), size, name

    def _train_transform(self, image, label, rng):
        """The reference training transform: scale, crop, flip, normalise, downsample the label.

        Draws from the numpy Generator ``rng`` in this order: scale, crop x, crop y, flip.
        """
        if self.multi_scale:
            scale = 0.5 + int(rng.integers(0, self.scale_factor + 1)) / 10.0
            image, label = random_scaled_crop(image, label, int(self.base_size * scale + 0.5),
                                              self.crop_size, self.ignore_label, rng)
        if self.flip and rng.integers(0, 2):
            image, label = cv2.flip(image, 1), cv2.flip(label, 1)
        image = normalize(image, self.mean, self.std)
        if self.downsample_rate != 1:
            rate = 1.0 / self.downsample_rate
            label = cv2.resize(label, None, fx=rate, fy=rate, interpolation=cv2.INTER_NEAREST)
        return image, label
