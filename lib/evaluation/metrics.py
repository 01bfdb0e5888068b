"""Segmentation metrics of a confusion matrix: IoU and accuracies (the counting is
``accumulator.SegAccumulator``'s, on the device).

Definitions, for a dataset-level confusion matrix C (K x K, rows = ground truth, columns =
prediction, pixels labelled ``ignore_label`` excluded), with tp_c = C[c, c],
gt_c = sum_j C[c, j] and pred_c = sum_i C[i, c]:

- IoU_c = tp_c / (tp_c + fp_c + fn_c) = tp_c / (gt_c + pred_c - tp_c); NaN when that union is
  empty (the class is neither present nor predicted).
- mIoU = mean of IoU_c over the classes with a non-empty union (the Cityscapes benchmark rule):
  a class that is predicted but absent from the ground truth counts with IoU 0.
- pixel accuracy = sum_c tp_c / sum C.
- mean accuracy = mean over the classes with gt_c > 0 of tp_c / gt_c.

Undefined values are ``float("nan")``; ``results.json_safe`` turns them into None for JSON files.
"""
import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["segmentation_metrics", "class_names_of"]


def segmentation_metrics(conf, class_names: Sequence[str] | None = None) -> dict:
    """Metrics of a K x K confusion matrix (numpy or torch), as defined in the module docstring.

    Returns {"IoU": {class name: IoU}, "mIoU": float, "pixel_acc": float, "mean_acc": float};
    fractions in [0, 1], NaN where undefined.  Class names default to "0".."K-1".
    """
    conf = conf.detach().cpu().numpy() if torch.is_tensor(conf) else np.asarray(conf)
    conf = conf.astype(np.float64)
    num_classes = conf.shape[0]
    if conf.shape != (num_classes, num_classes):
        raise ValueError(f"confusion matrix must be square, got shape {conf.shape}")
    names = class_names_of(class_names, num_classes)
    tp = np.diag(conf)
    gt = conf.sum(axis=1)
    union = gt + conf.sum(axis=0) - tp
    iou = np.divide(tp, union, out=np.full(num_classes, np.nan), where=union > 0)
    acc = np.divide(tp, gt, out=np.full(num_classes, np.nan), where=gt > 0)
    total = conf.sum()
    return {
        "IoU": {name: float(v) for name, v in zip(names, iou, strict=True)},
        "mIoU": _mean(iou[union > 0]),
        "pixel_acc": float(tp.sum() / total) if total > 0 else math.nan,
        "mean_acc": _mean(acc[gt > 0]),
    }


def _mean(values):
    return float(values.mean()) if values.size else math.nan


def class_names_of(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``class_names`` as a list, checked to name ``num_classes`` classes; "0".."K-1" for None."""
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    return list(class_names)
