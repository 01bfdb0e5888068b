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
so a window of k pixels costs about log2(k) elementwise maxima instead of k comparisons per pixel.
"""
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..core.metrics import segmentation_metrics
from .counts import count_bins

__all__ = ["window_max", "window_min", "boundary_radius", "trimap_boundary", "band_levels",
           "inner_band", "ground_truth_regions", "trimap_counts", "boundary_iou_counts", "trimap_metrics",
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


def _region_dtype(num_classes):
    if num_classes + 2 > torch.iinfo(torch.int16).max:
        raise ValueError(f"{num_classes} classes do not fit the int16 region maps")
    return torch.int16


def trimap_boundary(labels: torch.Tensor, num_classes: int,
                    ignore_label: int = 255) -> torch.Tensor:
    """Bool N x H x W: the boundary pixels of the label map (module docstring)."""
    labelled = _labelled(labels, num_classes, ignore_label)
    classes = labels.to(_region_dtype(num_classes))
    # Ignored pixels get values that never beat a class: below all for the max, above for the min.
    above = window_max(torch.where(labelled, classes, -1), 1, fill=-1)
    below = window_min(torch.where(labelled, classes, num_classes), 1, fill=num_classes)
    return labelled & ((above > classes) | (below < classes))


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
    """Bool N x H x W: pixels whose (2r+1)^2 square holds another value of ``regions`` or reaches
    past the image edge.

    For the masks of a partition (every value is one mask) this is each mask's inner band of
    width r, for all masks at once.  ``regions`` must be an integer map whose values lie strictly
    between the int16 limits.
    """
    regions = regions.to(torch.int16)
    info = torch.iinfo(torch.int16)
    return window_max(regions, radius, fill=info.max) != window_min(regions, radius, fill=info.min)


def trimap_counts(pred: torch.Tensor, target: torch.Tensor, levels: torch.Tensor,
                  num_bands: int, num_classes: int, ignore_label: int = 255) -> torch.Tensor:
    """int64 (L + 1) x K x K confusion matrices of the labelled pixels by band level, L = num_bands.

    pred, target, levels: N x H x W; levels from ``band_levels`` (values 0..L).  Matrix l counts
    the pixels whose narrowest band is l (l = L: outside every band), so the matrix of band l is
    the sum of matrices 0..l and the sum of all is the plain confusion matrix.  Rows = ground
    truth, columns = prediction.
    """
    k = num_classes
    valid = _labelled(target, k, ignore_label) & (pred >= 0) & (pred < k)
    index = (levels.long() * k + target.long()) * k + pred.long()
    return count_bins(index, valid, (num_bands + 1) * k * k).view(num_bands + 1, k, k)


def _labelled(target, num_classes, ignore_label):
    return (target != ignore_label) & (target >= 0) & (target < num_classes)


def ground_truth_regions(target: torch.Tensor, num_classes: int,
                         ignore_label: int = 255) -> torch.Tensor:
    """int16 map of the ground-truth masks: the class, or K where the label is ignored."""
    labelled = _labelled(target, num_classes, ignore_label)
    return torch.where(labelled, target, num_classes).to(_region_dtype(num_classes))


def boundary_iou_counts(pred: torch.Tensor, target: torch.Tensor, target_band: torch.Tensor,
                        radius: int, num_classes: int, ignore_label: int = 255) -> torch.Tensor:
    """int64 3 x K: per class, |B_gt & B_pred|, |B_gt| and |B_pred| (module docstring).

    target_band: ``inner_band(ground_truth_regions(target), radius)`` (computed once for all
    heads); the prediction's band is made here from ``pred`` restricted to the labelled pixels.
    Union = |B_gt| + |B_pred| - intersection.
    """
    k = num_classes
    labelled = _labelled(target, k, ignore_label)
    pred_regions = torch.where(labelled & (pred >= 0) & (pred < k), pred, k)
    pred_band = inner_band(pred_regions.to(_region_dtype(k)), radius) & (pred_regions < k)
    gt_band = target_band & labelled
    both = gt_band & pred_band & (pred_regions == target)
    index = torch.stack((target, target + k, pred_regions + 2 * k)).long()
    valid = torch.stack((both, gt_band, pred_band))
    return count_bins(index, valid, 3 * k).view(3, k)


def trimap_metrics(counts: torch.Tensor, widths: Sequence[int],
                   class_names: Sequence[str] | None = None) -> dict:
    """{"trimap_mIoU": {"w": mIoU}, "trimap_IoU": {"w": {class: IoU}}} of ``trimap_counts`` sums.

    Fractions in [0, 1], NaN where undefined; keys are the widths as strings (JSON keys).
    """
    cumulative = counts.cumsum(dim=0)
    bands = {str(w): segmentation_metrics(cumulative[i], class_names)
             for i, w in enumerate(widths)}
    return {"trimap_mIoU": {w: m["mIoU"] for w, m in bands.items()},
            "trimap_IoU": {w: m["IoU"] for w, m in bands.items()}}


def boundary_iou_metrics(counts: torch.Tensor,
                         class_names: Sequence[str] | None = None) -> dict:
    """{"boundary_mIoU": mean, "boundary_IoU": {class: IoU}} of summed ``boundary_iou_counts``.

    IoU_c = intersection / union, NaN for an empty union; the mean is over non-empty unions.
    """
    counts = counts.detach().cpu().double()
    inter, union = counts[0], counts[1] + counts[2] - counts[0]
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.nan)
    names = [str(c) for c in range(len(iou))] if class_names is None else list(class_names)
    if len(names) != len(iou):
        raise ValueError(f"{len(names)} class names for {len(iou)} classes")
    present = iou[union > 0]
    return {"boundary_mIoU": float(present.mean()) if len(present) else math.nan,
            "boundary_IoU": {name: float(v) for name, v in zip(names, iou, strict=True)}}
