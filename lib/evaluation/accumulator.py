"""SegAccumulator: the one accumulator of an evaluation; every prediction's confusion matrices,
boundary measures and fusion split, in one pass.

Per batch it takes each prediction's argmax at the label size, the labels and, for the offset
networks, the offsets (pixels of the label map) and the confidence
(``predictions.label_size_inputs`` makes them from a network output).  Everything is counted on the
device in fixed-size int64 tensors (no host synchronisation), per group (ACDC condition; None = no
group); ``reduce`` sums them over ranks exactly, in one all-reduce, and ``results`` gives the
results.json blocks "final_prediction", "predictions", "boundary" and "fusion".  The measures are
defined in ``metrics``, ``boundary`` and ``fusion``.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..utils.distributed import all_reduce_sum, get_world_size, is_initialized
from .boundary import (
    band_levels,
    boundary_iou_metrics,
    boundary_radius,
    inner_band,
    joint_base,
    joint_confusion,
    joint_counts,
    label_regions,
    trimap_boundary,
    trimap_metrics,
)
from .fusion import (
    LENGTH_EDGES,
    OUTCOMES,
    confidence_edges,
    fusion_counts,
    fusion_outcome,
    fusion_summary,
    histogram_bins,
)
from .metrics import segmentation_metrics
from .predictions import final_prediction, fusion_pairs

__all__ = ["SegAccumulator", "MeasureSettings", "DEFAULT_BANDS"]

# TEST.TRIMAP_BANDS: trimap band widths, pixels of the label map.
DEFAULT_BANDS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class MeasureSettings:
    """What an evaluation measures beside the confusion matrices.

    bands: trimap band widths in pixels (TEST.TRIMAP_BANDS), increasing; boundary_ratio:
    Boundary IoU width as a fraction of the image diagonal (TEST.BOUNDARY_IOU_RATIO);
    confidence_bins: equal confidence bins over [0, 1] (offset lengths have the fixed
    ``fusion.LENGTH_EDGES``).
    """

    bands: tuple[int, ...] = DEFAULT_BANDS
    boundary_ratio: float = 0.02
    confidence_bins: int = 20

    def __post_init__(self):
        bands = tuple(int(w) for w in self.bands)
        if any(b <= a for a, b in zip(bands, bands[1:])) or min(bands, default=0) < 0:
            raise ValueError(f"trimap band widths must be increasing and >= 0, got {list(bands)}")
        object.__setattr__(self, "bands", bands)

    @classmethod
    def from_config(cls, cfg) -> "MeasureSettings":
        """TEST.TRIMAP_BANDS and TEST.BOUNDARY_IOU_RATIO of a config."""
        return cls(bands=tuple(cfg.TEST.TRIMAP_BANDS),
                   boundary_ratio=float(cfg.TEST.BOUNDARY_IOU_RATIO))


class SegAccumulator:
    """Accumulates, per prediction, ``boundary.joint_counts`` (from which come its confusion matrix,
    trimap and Boundary IoU figures); per fused prediction (``predictions.fusion_pairs``),
    ``fusion.fusion_counts`` (outcomes by class, offset length and confidence).

    Args:
        num_classes: K.
        predictions: output field names of the predictions ``update`` receives ("logits", ...);
            every rank must pass the same.
        ignore_label: label value left out.
        measures: the trimap bands, the Boundary IoU width and the confidence bins.
        device: where the counts live; put them where the predictions are (nccl all-reduces
            CUDA tensors only).  None = CPU.
    """

    def __init__(self, num_classes: int, predictions: Sequence[str], *, ignore_label: int = 255,
                 measures: MeasureSettings = MeasureSettings(), device=None):
        if not predictions:
            raise ValueError("SegAccumulator needs at least one prediction")
        self.num_classes = num_classes
        self.predictions = list(predictions)
        self.ignore_label = ignore_label
        self.bands = list(measures.bands)
        self.boundary_ratio = measures.boundary_ratio
        self.pairs = fusion_pairs(self.predictions)
        self.conf_edges = confidence_edges(measures.confidence_bins)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._layout = self._make_layout()
        self._counts = {None: self._zeros()}
        self._reduced = False

    def _make_layout(self):
        k = self.num_classes
        layout = {f"joint/{field}": (k, k, len(self.bands) + 1, 2, 2)
                  for field in self.predictions}
        for fused in self.pairs:
            layout[f"fusion/{fused}"] = (k, len(OUTCOMES), len(LENGTH_EDGES), len(self.conf_edges))
        return layout

    def _zeros(self):
        return {name: torch.zeros(shape, dtype=torch.int64, device=self.device)
                for name, shape in self._layout.items()}

    @torch.no_grad()
    def update(self, preds: Mapping[str, torch.Tensor], labels: torch.Tensor, *,
               offsets: torch.Tensor | None = None, confidence: torch.Tensor | None = None,
               groups=None):
        """Add one batch.

        preds: {field: N x H x W integer class map} for every prediction; labels: N x H x W;
        offsets: N x 2 x H x W (x, y) in pixels of the label map and confidence: N x 1 x H x W (or
        N x H x W) in [0, 1], both needed when there is a fused prediction (a pixel where either is
        NaN is left out of the fusion counts only); groups: None, one group name for the batch,
        or a sequence of N names / None.
        """
        if self._reduced:
            raise RuntimeError("update() after reduce(): the counts are already summed over ranks")
        self._check(preds, labels, offsets, confidence)
        for key, rows in _rows_by_group(groups, labels.shape[0], labels.device):
            if key not in self._counts:
                self._counts[key] = self._zeros()
            picked = [_pick(x, rows) for x in (labels, offsets, confidence)]
            self._add(self._counts[key],
                      {field: _pick(preds[field], rows) for field in self.predictions},
                      *picked)

    def process(self, batch) -> None:
        """The consumer protocol of ``loop.evaluate``: ``update`` with a ``loop.Batch``."""
        self.update(batch.preds, batch.labels, offsets=batch.offsets,
                    confidence=batch.confidence, groups=batch.groups)

    def _add(self, counts, preds, labels, offsets, confidence):
        k, bands = self.num_classes, len(self.bands)
        regions = label_regions(labels, k, self.ignore_label)
        levels = band_levels(trimap_boundary(regions, k), self.bands)
        radius = boundary_radius(labels.shape[-2], labels.shape[-1], self.boundary_ratio)
        base = joint_base(regions, levels, inner_band(regions, radius), bands, k)
        preds = {field: pred.to(regions.dtype) for field, pred in preds.items()}
        for field in self.predictions:
            _accumulate(counts, f"joint/{field}",
                        joint_counts(preds[field], regions, base, radius, bands, k))
        if not self.pairs:
            return
        length = torch.hypot(offsets[:, 0].float(), offsets[:, 1].float())
        bins = histogram_bins(length, confidence.reshape(labels.shape), len(self.conf_edges))
        for fused, base_head in self.pairs.items():
            outcome = fusion_outcome(preds[base_head], preds[fused], regions)
            _accumulate(counts, f"fusion/{fused}",
                        fusion_counts(outcome, regions, bins, k, len(self.conf_edges)))

    def _check(self, preds, labels, offsets, confidence):
        if labels.dim() != 3:
            raise ValueError(f"labels must be N x H x W, got shape {tuple(labels.shape)}")
        if set(preds) != set(self.predictions):
            raise ValueError(f"predictions {sorted(preds)}, expected {self.predictions}")
        for field, pred in preds.items():
            if pred.shape != labels.shape or pred.is_floating_point():
                raise ValueError(f"prediction {field!r} must be an integer map shaped like the "
                                 f"labels {tuple(labels.shape)}, got {pred.dtype} "
                                 f"{tuple(pred.shape)}")
        if not self.pairs:
            return
        n, h, w = labels.shape
        if offsets is None or tuple(offsets.shape) != (n, 2, h, w):
            raise ValueError(f"fused predictions {list(self.pairs)} need offsets N x 2 x H x W = "
                             f"{(n, 2, h, w)}, got "
                             f"{None if offsets is None else tuple(offsets.shape)}")
        if confidence is None or confidence.numel() != n * h * w:
            raise ValueError(f"fused predictions {list(self.pairs)} need the confidence "
                             f"N x 1 x H x W = {(n, 1, h, w)}, got "
                             f"{None if confidence is None else tuple(confidence.shape)}")

    def reduce(self):
        """Collective: sum the counts over all ranks, once, after the last update; returns self.

        Every rank must call it.  The group names of all ranks are gathered first
        (``all_gather_object``), so that every rank ends with the same groups; then one
        all-reduce of every count.  Without a process group nothing is sent.
        """
        if self._reduced:
            raise RuntimeError("reduce() called twice: the counts would be summed again")
        keys = set(self._counts)
        if is_initialized():
            gathered = [None] * get_world_size()
            dist.all_gather_object(gathered, sorted(keys, key=_group_order))
            keys = keys.union(*gathered)
        keys = sorted(keys, key=_group_order)
        zeros = self._zeros()
        stacked = torch.stack([self._flat(self._counts.get(key, zeros)) for key in keys])
        all_reduce_sum(stacked)
        self._counts = {key: self._unflat(row) for key, row in zip(keys, stacked, strict=True)}
        self._reduced = True
        return self

    def _flat(self, counts):
        return torch.cat([counts[name].flatten() for name in self._layout])

    def _unflat(self, flat):
        sizes = [torch.Size(shape).numel() for shape in self._layout.values()]
        return {name: part.view(shape) for (name, shape), part
                in zip(self._layout.items(), flat.split(sizes), strict=True)}

    @property
    def groups(self) -> list[str]:
        """The group names seen (after ``reduce``: on any rank), sorted."""
        return sorted(key for key in self._counts if key is not None)

    def _group_counts(self, group):
        if group is not None:
            return self._counts[group]
        return {name: sum(counts[name] for counts in self._counts.values())
                for name in self._layout}

    def confusion(self, field: str, group: str | None = None) -> torch.Tensor:
        """K x K int64 confusion matrix of the prediction ``field`` (rows = ground truth), overall
        or of a group."""
        return joint_confusion(self._group_counts(group)[f"joint/{field}"])

    def results(self, class_names: Sequence[str] | None = None) -> dict:
        """{"final_prediction": the evaluated prediction (``predictions.final_prediction``),
        "predictions": {field: metrics}, "boundary": {field: ...}, "fusion": {fused field: ...}}.

        predictions: ``segmentation_metrics``; boundary: ``trimap_metrics`` and
        ``boundary_iou_metrics``; fusion (empty without a fused prediction): "against" (the
        prediction it fuses) and ``fusion_summary``.  Each entry gains "per_condition" {group: the
        same} when groups were updated.  Fractions in [0, 1], NaN where undefined.
        """
        blocks = self._blocks(self._group_counts(None), class_names)
        for group in self.groups:
            for kind, entries in self._blocks(self._counts[group], class_names).items():
                for name, entry in entries.items():
                    blocks[kind][name].setdefault("per_condition", {})[group] = entry
        return {"final_prediction": final_prediction(self.predictions), **blocks}

    def _blocks(self, counts, class_names):
        predictions, boundary, fusion = {}, {}, {}
        for field in self.predictions:
            joint = counts[f"joint/{field}"]
            predictions[field] = segmentation_metrics(joint_confusion(joint), class_names)
            boundary[field] = {**trimap_metrics(joint, self.bands, class_names),
                               **boundary_iou_metrics(joint, class_names)}
        for fused, base in self.pairs.items():
            fusion[fused] = {"against": base, **fusion_summary(counts[f"fusion/{fused}"],
                                                                self.conf_edges, class_names)}
        return {"predictions": predictions, "boundary": boundary, "fusion": fusion}


def _accumulate(counts, name, value):
    counts[name] += value.to(counts[name].device)


def _pick(x, rows):
    return x if rows is None or x is None else x.index_select(0, rows)


def _group_order(key):
    return (key is not None, key or "")


def _rows_by_group(groups, batch_size, device):
    """[(group, row indices or None = all rows)] of a batch, one entry per distinct group."""
    if groups is None or isinstance(groups, str):
        return [(groups, None)]
    groups = list(groups)
    if len(groups) != batch_size:
        raise ValueError(f"{len(groups)} group names for a batch of {batch_size}")
    if len(set(groups)) == 1:
        return [(groups[0], None)]
    rows = {}
    for i, group in enumerate(groups):
        rows.setdefault(group, []).append(i)
    return [(group, torch.tensor(index, device=device)) for group, index in rows.items()]
