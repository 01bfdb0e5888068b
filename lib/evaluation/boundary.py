"""Boundary measures at the label resolution: trimap bands and Boundary IoU, on the device.

Maps are N x H x W integer tensors (class ids 0..K-1, ``ignore_label`` left out); distances are
in pixels of the label map, Chebyshev (a (2r+1) x (2r+1) square is every pixel within r).

- **Boundary pixel** (trimap): a labelled pixel with a labelled pixel of another class in its
  3 x 3 neighbourhood.  Ignored pixels make no boundary, neither as the pixel nor as its
  neighbour, and the image edge makes none.
- **Band of width w**: every pixel within distance w of a boundary pixel (the boundary map
  dilated by a (2w+1) x (2w+1) square).  Trimap mIoU(w) is the mIoU of the labelled pixels of
  the band (``segmentation_metrics``: the Cityscapes rule).
- **Boundary IoU** (Cheng et al., CVPR 2021), semantic form: the inner band of a mask M is M
  less M eroded d times by a 3 x 3 square after padding M by one pixel of zeros (the authors'
  ``mask_to_boundary``), i.e. the pixels of M within distance d of a pixel outside M or of the
  image edge, with d = ``boundary_radius(H, W, ratio)``.  The masks of class c are the
  ground truth's (label == c) and the prediction's restricted to the labelled pixels
  (pred == c where the label is not ignored); an ignored pixel lies outside every mask, so a
  mask that ends at an ignored region has its band there in both.  Per class, the intersection
  and the union of the two bands are summed over the set; IoU_c = intersection / union, and the
  mean runs over the classes with a non-empty union.

Erosion and dilation are square max-poolings (``window_max``): separable, and along each axis a
running maximum built by doubling (max over 2s pixels = max of two overlapping maxima over s),
so a window of k pixels costs about log2(k) elementwise maxima instead of k comparisons per pixel
(``F.max_pool2d`` of a 93-pixel square, the Boundary IoU width at 1024 x 2048, took 0.78 s a map
on one CPU thread; this took 11 ms in float32 and 3 ms in int16).
"""
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .counts import count_bins
from .metrics import class_names_of, segmentation_metrics

__all__ = ["window_max", "window_min", "boundary_radius", "label_regions", "trimap_boundary",
           "band_levels", "inner_band", "joint_base", "joint_counts", "joint_confusion", "trimap_metrics",
           "boundary_iou_metrics"]


def window_max(x: torch.Tensor, radius: int, fill) -> torch.Tensor:
    """Max over the (2r+1) x (2r+1) square around each pixel of ``x`` (... x H x W).

    Pixels outside the image count as ``fill`` (use a value no pixel exceeds to ignore them).
    Same shape and dtype as ``x``; radius 0 returns ``x``.
    """
    return _square(x, radius, fill, torch.maximum)


def window_min(x: torch.Tensor, radius: int, fill) -> torch.Tensor:
    """Min over the (2r+1) x (2r+1) square around each pixel; outside pixels count as ``fill``."""
    return _square(x, radius, fill, torch.minimum)


def _square(x, radius, fill, op):
    if radius < 0:
        raise ValueError(f"window radius must be >= 0, got {radius}")
    for dim in (-2, -1):
        x = _running(x, radius, dim, fill, op)
    return x


def _running(x, radius, dim, fill, op):
    """op over the 2r+1 pixels centred on each pixel along ``dim``, by doubling spans."""
    if radius == 0:
        return x
    size, window = x.shape[dim], 2 * radius + 1
    pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
    m = F.pad(x, pad, value=fill)
    span = 1
    while 2 * span <= window:  # m[i] = op over padded[i : i + span]
        m = op(m.narrow(dim, 0, m.shape[dim] - span), m.narrow(dim, span, m.shape[dim] - span))
        span *= 2
    # span <= window < 2 * span: two overlapping spans cover the window.
    return op(m.narrow(dim, 0, size), m.narrow(dim, window - span, size))


def boundary_radius(height: int, width: int, ratio: float) -> int:
    """d = max(1, round(ratio * image diagonal)) pixels, rounding half to even as ``round``."""
    return max(1, int(round(ratio * math.sqrt(height * height + width * width))))


def label_regions(labels: torch.Tensor, num_classes: int, ignore_label: int = 255) -> torch.Tensor:
    """int16 N x H x W: the class of each labelled pixel, K where the label is ignored (or
    outside 0..K-1).  Every value is one mask of a partition: the form the functions below take."""
    if num_classes + 1 >= torch.iinfo(torch.int16).max:
        raise ValueError(f"{num_classes} classes do not fit the int16 region maps")
    labelled = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
    return torch.where(labelled, labels.to(torch.int16), num_classes)


def trimap_boundary(regions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Bool N x H x W: the boundary pixels of ``label_regions`` (module docstring)."""
    labelled = regions < num_classes
    # Ignored pixels never beat a class: they are K (above all) for the min, -1 for the max.
    above = window_max(torch.where(labelled, regions, -1), 1, fill=-1)
    below = window_min(regions, 1, fill=num_classes)
    return labelled & ((above > regions) | (below < regions))


def band_levels(boundary: torch.Tensor, widths: Sequence[int]) -> torch.Tensor:
    """uint8 N x H x W: index of the narrowest band (``widths``, increasing) holding each pixel.

    ``len(widths)`` for a pixel outside every band.  Each band is grown from the previous one
    (a dilation by r then by s is a dilation by r + s, also at the image edge), so the widest
    band costs one window of its own size in all.
    """
    if any(b <= a for a, b in zip(widths, widths[1:])) or (widths and widths[0] < 0):
        raise ValueError(f"band widths must be increasing and >= 0, got {list(widths)}")
    band = boundary.to(torch.uint8)
    inside = torch.zeros_like(band)
    previous = 0
    for width in widths:
        band = window_max(band, width - previous, fill=0)
        inside += band
        previous = width
    return len(widths) - inside


def inner_band(regions: torch.Tensor, radius: int) -> torch.Tensor:
    """Bool N x H x W: pixels whose (2r+1)^2 square holds another value of ``regions`` (int16)
    or reaches past the image edge: the inner band of width r of every mask at once."""
    # One window over (R, -R): max(-R) = -min(R), and the edge fill makes the two differ.
    both = window_max(torch.stack((regions, -regions)), radius, fill=torch.iinfo(regions.dtype).max)
    return both[0] != -both[1]


def joint_base(regions: torch.Tensor, levels: torch.Tensor, target_band: torch.Tensor,
               num_bands: int, num_classes: int) -> torch.Tensor:
    """int64 N x H x W: the prediction-independent part of the ``joint_counts`` bin of each pixel.

    regions: ``label_regions``; levels: ``band_levels`` (0..L, L = num_bands = outside every
    band); target_band: ``inner_band(regions, radius)``.
    """
    depth = (num_bands + 1) * 4
    return (regions.long() * (num_classes * depth)).add_(levels.long() * 4).add_(target_band * 2)


def joint_counts(pred: torch.Tensor, regions: torch.Tensor, base: torch.Tensor, radius: int,
                 num_bands: int, num_classes: int) -> torch.Tensor:
    """int64 K x K x (L + 1) x 2 x 2 counts of the labelled pixels, L = num_bands, by
    (ground truth, prediction, band level, in the ground truth's Boundary IoU band, in the
    prediction's).

    pred: N x H x W argmax in 0..K-1 (int16 saves a conversion); regions: ``label_regions``;
    base: ``joint_base`` (one for all predictions).  The prediction's masks are restricted to the
    labelled pixels here.  Every measure is a sum of this: ``joint_confusion``,
    ``trimap_metrics``, ``boundary_iou_metrics``.
    """
    k, depth = num_classes, (num_bands + 1) * 4
    labelled = regions < k
    pred_band = inner_band(torch.where(labelled, pred.to(regions.dtype), k), radius) & labelled
    # Ignored pixels have region K: they land in a trailing block that is dropped.
    index = (pred.long() * depth).add_(base).add_(pred_band)
    return count_bins(index, (k + 1) * k * depth)[:k * k * depth].view(k, k, num_bands + 1, 2, 2)


def joint_confusion(joint: torch.Tensor) -> torch.Tensor:
    """K x K confusion matrix (rows = ground truth) of ``joint_counts``."""
    return joint.sum(dim=(2, 3, 4))


def trimap_metrics(joint: torch.Tensor, widths: Sequence[int],
                   class_names: Sequence[str] | None = None) -> dict:
    """{"trimap_mIoU": {"w": mIoU}, "trimap_IoU": {"w": {class: IoU}}} of summed
    ``joint_counts``; the band of widths[i] holds levels 0..i.

    Fractions in [0, 1], NaN where undefined; keys are the widths as strings (JSON keys).
    """
    cumulative = joint.sum(dim=(3, 4)).cumsum(dim=2)
    bands = {str(w): segmentation_metrics(cumulative[:, :, i], class_names)
             for i, w in enumerate(widths)}
    return {"trimap_mIoU": {w: m["mIoU"] for w, m in bands.items()},
            "trimap_IoU": {w: m["IoU"] for w, m in bands.items()}}


def boundary_iou_metrics(joint: torch.Tensor,
                         class_names: Sequence[str] | None = None) -> dict:
    """{"boundary_mIoU": mean, "boundary_IoU": {class: IoU}} of summed ``joint_counts``.

    Per class c: intersection = pixels of ground truth c and prediction c in both bands,
    |B_gt| = pixels of ground truth c in its band, |B_pred| = pixels predicted c in theirs;
    IoU = intersection / (|B_gt| + |B_pred| - intersection), NaN for an empty union; the mean
    is over the non-empty unions.
    """
    bands = joint.detach().cpu().double().sum(dim=2)  # K x K x (gt band) x (pred band)
    inter = torch.diagonal(bands[:, :, 1, 1])
    union = bands[:, :, 1, :].sum(dim=(1, 2)) + bands[:, :, :, 1].sum(dim=(0, 2)) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.nan)
    names = class_names_of(class_names, len(iou))
    present = iou[union > 0]
    return {"boundary_mIoU": float(present.mean()) if len(present) else math.nan,
            "boundary_IoU": {name: float(v) for name, v in zip(names, iou, strict=True)}}
