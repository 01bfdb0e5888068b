"""Slow re-derivations of the boundary measures, pixel by pixel, from their written definitions.

Independent of lib/evaluation: plain loops over NumPy arrays, and OpenCV for the Boundary IoU
masks (padding by one zero pixel, then d erosions by a 3 x 3 square, as Cheng et al. describe).
"""
import math

import cv2
import numpy as np


def labelled(label, num_classes, ignore=255):
    return (label != ignore) & (label >= 0) & (label < num_classes)


def boundary_pixels(label, num_classes, ignore=255):
    """A labelled pixel is a boundary pixel when a labelled pixel of another class is among its
    8 neighbours."""
    h, w = label.shape
    ok = labelled(label, num_classes, ignore)
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if not ok[y, x]:
                continue
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    qy, qx = y + dy, x + dx
                    if 0 <= qy < h and 0 <= qx < w and ok[qy, qx] \
                            and label[qy, qx] != label[y, x]:
                        out[y, x] = True
    return out


def band(boundary, width):
    """Pixels within Chebyshev distance ``width`` of a boundary pixel."""
    h, w = boundary.shape
    out = np.zeros((h, w), bool)
    for y, x in zip(*np.nonzero(boundary)):
        out[max(0, y - width):y + width + 1, max(0, x - width):x + width + 1] = True
    return out


def iou_per_class(pairs, num_classes):
    """IoU of every class from (pred, label) pixel lists; NaN for an empty union."""
    tp = np.zeros(num_classes)
    gt = np.zeros(num_classes)
    pr = np.zeros(num_classes)
    for p, t in pairs:
        gt[t] += 1
        pr[p] += 1
        tp[t] += p == t
    union = gt + pr - tp
    return np.array([tp[c] / union[c] if union[c] else math.nan for c in range(num_classes)])


def mean_defined(values):
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def trimap_miou(preds, labels, num_classes, width, ignore=255):
    """mIoU over the set of the labelled pixels inside each image's band of ``width``."""
    pairs = []
    for pred, label in zip(preds, labels, strict=True):
        inside = band(boundary_pixels(label, num_classes, ignore), width)
        ok = labelled(label, num_classes, ignore)
        h, w = label.shape
        for y in range(h):
            for x in range(w):
                if inside[y, x] and ok[y, x]:
                    pairs.append((pred[y, x], label[y, x]))
    return iou_per_class(pairs, num_classes)


def plain_iou(preds, labels, num_classes, ignore=255):
    pairs = [(p, t) for pred, label in zip(preds, labels, strict=True)
             for p, t in zip(pred.ravel(), label.ravel(), strict=True)
             if labelled(np.array(t), num_classes, ignore)]
    return iou_per_class(pairs, num_classes)


def mask_band(mask, dilation_ratio):
    """Inner boundary band of a binary mask: the mask less its erosion (OpenCV)."""
    h, w = mask.shape
    d = max(1, int(round(dilation_ratio * math.sqrt(h * h + w * w))))
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:h + 1, 1:w + 1]
    return (mask.astype(np.uint8) - eroded).astype(bool)


def boundary_iou(preds, labels, num_classes, dilation_ratio=0.02, ignore=255):
    """Per class: intersection and union of the ground-truth and predicted bands, summed over
    the set; the predicted mask is restricted to the labelled pixels."""
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for pred, label in zip(preds, labels, strict=True):
        ok = labelled(label, num_classes, ignore)
        for c in range(num_classes):
            gt_band = mask_band(label == c, dilation_ratio)
            pred_band = mask_band((pred == c) & ok, dilation_ratio)
            inter[c] += (gt_band & pred_band).sum()
            union[c] += (gt_band | pred_band).sum()
    return np.array([inter[c] / union[c] if union[c] else math.nan for c in range(num_classes)])
