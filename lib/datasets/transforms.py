"""The reference training transform.

Images are BGR uint8 (H, W, 3) as OpenCV reads them, labels uint8 (H, W) trainIds, until the
dataset normalises the image into the float32 (3, H, W) RGB tensor the network takes
(``lib.utils.normalization``).
Random draws come from a numpy Generator passed in, so a sample is a function of its seed.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from ..utils.geometry import scaled_size
from .files import DatasetError

__all__ = ["random_scaled_crop", "swap_pairs", "mirror", "TrainTransform"]


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


def swap_pairs(label, pairs):
    """``label`` (uint8 trainIds) with the classes of each (a, b) in ``pairs`` trading places."""
    lut = np.arange(256, dtype=np.uint8)
    for a, b in pairs:
        lut[a], lut[b] = b, a
    return cv2.LUT(label, lut)


def mirror(image, label, pairs=()):
    """``image`` and ``label`` flipped horizontally, the classes of each (a, b) in ``pairs``
    trading places in the label (a left arm seen in the mirror is a right arm)."""
    image, label = cv2.flip(image, 1), cv2.flip(label, 1)
    return image, swap_pairs(label, pairs) if pairs else label


@dataclass(frozen=True)
class TrainTransform:
    """The reference training transform: random scale and crop, flip, label downsampling.

    ``transform(image, label, rng)`` takes a BGR uint8 (H, W, 3) image and its uint8 (H, W)
    trainIds and returns both transformed (the image still BGR uint8; the dataset normalises it).
    It draws from the numpy Generator ``rng`` in this order: scale, crop x, crop y, flip.  A
    dataset that needs a step before it (e.g. a resize of the short side) wraps or subclasses it.

    Fields:
        base_size: long side of an image at scale 1, pixels.
        crop_size: crop (h, w), pixels.
        scale_factor: the scales are ``0.5 + k / 10`` for k = 0..scale_factor.
        flip: horizontal flip with probability 0.5.
        multi_scale: random scaling and cropping.  As in the reference, without it a sample is
            the whole image, neither resized nor cropped.
        downsample_rate: the label is resized by ``1 / downsample_rate`` (nearest).
        ignore_label: label written into the padding.
        flip_pairs: (a, b) class pairs swapped in a flipped label (LIP's left and right parts).
    """

    base_size: int = 2048
    crop_size: tuple[int, int] = (512, 1024)
    scale_factor: int = 16
    flip: bool = True
    multi_scale: bool = True
    downsample_rate: float = 1
    ignore_label: int = 255
    flip_pairs: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        if len(self.crop_size) != 2 or min(self.crop_size) <= 0:
            raise DatasetError(f"crop_size must be (h, w) with positive sizes, got "
                               f"{self.crop_size}")
        if self.downsample_rate <= 0 or self.scale_factor < 0 or self.base_size <= 0:
            raise DatasetError(f"invalid transform settings: base_size {self.base_size}, "
                               f"scale_factor {self.scale_factor}, downsample_rate "
                               f"{self.downsample_rate}")
        object.__setattr__(self, "crop_size", (int(self.crop_size[0]), int(self.crop_size[1])))

    def __call__(self, image, label, rng):
        if self.multi_scale:
            scale = 0.5 + int(rng.integers(0, self.scale_factor + 1)) / 10.0
            image, label = random_scaled_crop(image, label, int(self.base_size * scale + 0.5),
                                              self.crop_size, self.ignore_label, rng)
        if self.flip and rng.integers(0, 2):
            image, label = mirror(image, label, self.flip_pairs)
        if self.downsample_rate != 1:
            rate = 1.0 / self.downsample_rate
            label = cv2.resize(label, None, fx=rate, fy=rate, interpolation=cv2.INTER_NEAREST)
        return image, label
