"""Segmentation metrics: a confusion matrix accumulated on the device, then IoU and accuracies.

Definitions, for a dataset-level confusion matrix C (K x K, rows = ground truth, columns =
prediction, pixels labelled ``ignore_label`` excluded), with tp_c = C[c, c],
gt_c = sum_j C[c, j] and pred_c = sum_i C[i, c]:

- IoU_c = tp_c / (tp_c + fp_c + fn_c) = tp_c / (gt_c + pred_c - tp_c); NaN when that union is
  empty (the class is neither present nor predicted).
- mIoU = mean of IoU_c over the classes with a non-empty union (the Cityscapes benchmark rule):
  a class that is predicted but absent from the ground truth counts with IoU 0.
- pixel accuracy = sum_c tp_c / sum C.
- mean accuracy = mean over the classes with gt_c > 0 of tp_c / gt_c.

Undefined values are ``float("nan")``; ``json_safe`` turns them into None for JSON files.
"""
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist

from ..utils.distributed import all_reduce_sum, get_world_size, is_initialized

__all__ = ["confusion_matrix", "segmentation_metrics", "json_safe", "format_table",
           "SegEvaluator"]


def confusion_matrix(pred, target, num_classes: int, ignore_label: int = 255):
    """K x K int64 counts (rows = ground truth, columns = prediction) on the tensors' device.

    pred, target: integer tensors of the same shape (any).  Pixels whose target is
    ``ignore_label`` or outside [0, K) are left out, and so are predictions outside [0, K)
    (a network's argmax never gives one).

    Counts go into a fixed-size tensor with ``scatter_add_``: ``torch.bincount`` would read the
    input's min and max back to the host on CUDA, and boolean indexing would too.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape "
                         f"{tuple(target.shape)}")
    pred = pred.flatten().long()
    target = target.flatten().long()
    valid = ((target != ignore_label) & (target >= 0) & (target < num_classes)
             & (pred >= 0) & (pred < num_classes))
    # Left-out pixels land in one extra bin that is dropped.
    index = torch.where(valid, target * num_classes + pred, num_classes * num_classes)
    counts = torch.zeros(num_classes * num_classes + 1, dtype=torch.int64, device=index.device)
    counts.scatter_add_(0, index, torch.ones_like(index))
    return counts[:-1].view(num_classes, num_classes)


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
    names = _class_names(class_names, num_classes)
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


def _class_names(class_names, num_classes):
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for a {num_classes}-class "
                         "confusion matrix")
    return list(class_names)


def json_safe(obj):
    """A copy of nested dicts / lists / tuples with NaN and infinities replaced by None."""
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def format_table(results: dict, class_names: Sequence[str] | None = None) -> str:
    """Text table of ``SegEvaluator.results`` (or ``segmentation_metrics``), values in %.

    One row per class (IoU) for ``class_names`` in that order (default: every class of
    ``results``), then mIoU, pixel accuracy and mean accuracy; a column "all", plus one column per
    group when ``results`` has "per_condition".  Undefined values print as "-".
    """
    columns = {"all": results, **results.get("per_condition", {})}
    names = list(results["IoU"]) if class_names is None else list(class_names)
    rows = [[name] + [_percent(r["IoU"][name]) for r in columns.values()] for name in names]
    summary = [[label] + [_percent(r[key]) for r in columns.values()]
               for label, key in (("mIoU", "mIoU"), ("pixel acc", "pixel_acc"),
                                  ("mean acc", "mean_acc"))]
    header = ["class"] + list(columns)
    widths = [max(len(str(row[i])) for row in [header] + rows + summary)
              for i in range(len(header))]

    def line(row):
        cells = [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([row[0].ljust(widths[0])] + cells)

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule] + [line(r) for r in rows] + [rule]
                     + [line(r) for r in summary])


def _percent(value):
    return "-" if value is None or not math.isfinite(value) else f"{100.0 * value:.2f}"


class SegEvaluator:
    """Accumulates confusion matrices on a device: one overall, and one per group seen.

    Groups (e.g. ACDC conditions) are created by ``update(..., group=name)``; a rank may see
    only some of them, so ``reduce`` first gathers the group names of every rank.

    Args:
        num_classes: K.
        ignore_label: label value left out.
        device: where the matrices live; put them where the predictions are (the nccl backend
            all-reduces CUDA tensors only).  None = CPU.
    """

    def __init__(self, num_classes: int, ignore_label: int = 255, device=None):
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.overall = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        self.groups: dict[str, torch.Tensor] = {}
        self._reduced = False

    def update(self, pred, target, group: str | None = None):
        """Add the pixels of ``pred`` / ``target`` (integer tensors, same shape) to the counts.

        The overall matrix always accumulates; with ``group`` that group's matrix does too.
        """
        if self._reduced:
            raise RuntimeError("update() after reduce(): the matrices are already summed "
                               "over ranks")
        conf = confusion_matrix(pred, target, self.num_classes, self.ignore_label)
        conf = conf.to(self.overall.device)
        self.overall += conf
        if group is not None:
            if group not in self.groups:
                self.groups[group] = torch.zeros_like(self.overall)
            self.groups[group] += conf

    def reduce(self):
        """Collective: sum the matrices over all ranks, once, after the last update; returns self.

        Every rank must call it.  The group names of all ranks are gathered first
        (``all_gather_object``), so every rank ends with the same groups, in sorted order.
        Without a process group only the sorting happens.
        """
        if self._reduced:
            raise RuntimeError("reduce() called twice: the matrices would be summed again")
        names = set(self.groups)
        if is_initialized():
            gathered = [None] * get_world_size()
            dist.all_gather_object(gathered, sorted(names))
            names = names.union(*gathered)
        names = sorted(names)
        zeros = torch.zeros_like(self.overall)
        stacked = torch.stack([self.overall] + [self.groups.get(name, zeros) for name in names])
        all_reduce_sum(stacked)
        self.overall = stacked[0]
        self.groups = {name: stacked[1 + i] for i, name in enumerate(names)}
        self._reduced = True
        return self

    def results(self, class_names: Sequence[str] | None = None) -> dict:
        """``segmentation_metrics`` of the overall matrix, plus "per_condition" {group: metrics}
        when any group was updated."""
        results = segmentation_metrics(self.overall, class_names)
        if self.groups:
            results["per_condition"] = {name: segmentation_metrics(self.groups[name], class_names)
                                        for name in sorted(self.groups)}
        return results
