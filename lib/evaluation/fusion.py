"""What the fusion S_f = (1 - F) S_i + F S_s did to the prediction of S_i, pixel by pixel.

Over the labelled pixels, each pixel has one outcome of the pair (argmax S_i, argmax S_f):

- "same":    both predict the same class;
- "fixed":   S_i is wrong and S_f is right;
- "broken":  S_i is right and S_f is wrong;
- "changed": they differ and both are wrong.

The share where argmax S_f != argmax S_i is fixed + broken + changed ("differ").  Counts are kept
per ground-truth class, and fixed histograms of the offset length (pixels of the label map) and
of the confidence F, one per outcome; "all" is their sum.  Histogram bin i holds the values in
[edges[i], edges[i + 1]); the last bin is open above.  A pixel whose offset length or confidence
is NaN (a diverged network) has no bin: it is left out of the counts, never sent out of range.
"""
import math
from collections.abc import Sequence

import torch

from .counts import count_bins
from .metrics import class_names_of

__all__ = ["OUTCOMES", "LENGTH_EDGES", "length_bin", "confidence_bin", "confidence_edges",
           "histogram_bins", "fusion_outcome", "fusion_counts", "fusion_summary"]

OUTCOMES = ("same", "fixed", "broken", "changed")
# Lower edges of the offset-length bins, pixels of the label map: [0, 0.5), then doubling bins
# [2^(j-2), 2^(j-1)) up to [256, 512), and [512, inf).
LENGTH_EDGES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)


def length_bin(length: torch.Tensor) -> torch.Tensor:
    """int32 bin of each offset length (pixels, >= 0) among ``LENGTH_EDGES``; NaN gets
    ``len(LENGTH_EDGES)`` (no bin).

    The binary exponent of the float32 value (bits 23-30): l in [2^e, 2^(e+1)) is bin e + 2,
    exact at the edges and cheaper than a search; 0 and subnormals fall in bin 0, infinity in
    the last bin.
    """
    length = length.float().contiguous()
    exponent = length.view(torch.int32) >> 23
    bins = (exponent - 125).clamp_(0, len(LENGTH_EDGES) - 1)
    # A NaN's exponent bits are those of infinity: only the value itself tells them apart.
    return bins.masked_fill_(length.isnan(), len(LENGTH_EDGES))


def confidence_bin(confidence: torch.Tensor, bins: int) -> torch.Tensor:
    """int64 bin floor(F * bins) of each confidence in [0, 1]; F = 1 goes to the last bin,
    NaN to ``bins`` (no bin)."""
    # NaN survives floor and clamp, and its conversion to int64 is undefined (INT64_MIN on x86).
    scaled = (confidence.float() * bins).floor_().clamp_(0, bins - 1).nan_to_num_(bins)
    return scaled.long()


def confidence_edges(bins: int = 20) -> tuple[float, ...]:
    """Lower edges of ``bins`` equal bins over [0, 1] (the last one holds F = 1 too)."""
    return tuple(i / bins for i in range(bins))


def histogram_bins(length: torch.Tensor, confidence: torch.Tensor, conf_bins: int):
    """int64 N x H x W joint bin length_bin * conf_bins + confidence_bin of each pixel, in
    [0, L * C) with L = len(LENGTH_EDGES), C = conf_bins; L * C (no bin) where the length or
    the confidence is NaN.

    length: offset lengths in pixels, N x H x W; confidence: F, N x H x W.
    """
    lengths, confidences = length_bin(length).long(), confidence_bin(confidence, conf_bins)
    joint = lengths * conf_bins + confidences
    no_bin = (lengths == len(LENGTH_EDGES)) | (confidences == conf_bins)
    return joint.masked_fill_(no_bin, len(LENGTH_EDGES) * conf_bins)


def fusion_outcome(base: torch.Tensor, fused: torch.Tensor,
                   regions: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W index into ``OUTCOMES`` of each pixel (meaningless where ignored).

    base, fused: argmax of S_i and of S_f; regions: ``boundary.label_regions`` of the labels.
    """
    differ = (base != fused).to(torch.uint8)
    fixed = (fused == regions).to(torch.uint8)
    broken = (base == regions).to(torch.uint8)
    # differ: fixed 1, broken 2, changed 3 (fixed and broken exclude each other when differ).
    return differ * (3 - 2 * fixed - broken)


def fusion_counts(outcome: torch.Tensor, regions: torch.Tensor, bins: torch.Tensor,
                  num_classes: int, conf_bins: int) -> torch.Tensor:
    """int64 K x 4 x L x C: labelled pixels by (ground-truth class, outcome, length bin,
    confidence bin); L = len(LENGTH_EDGES), C = conf_bins.

    bins: ``histogram_bins``; ignored pixels (region K) and pixels without a bin (NaN length
    or confidence) are left out.  Summed over the bins it is the outcome count of each class;
    each histogram is a sum over the other bin.
    """
    histogram = len(LENGTH_EDGES) * conf_bins
    block = len(OUTCOMES) * histogram
    index = (regions.long() * block).add_(outcome.long() * histogram).add_(bins)
    # Pixels without a bin go where the ignored ones go: the dropped block of region K.
    index.masked_fill_(bins == histogram, num_classes * block)
    counts = count_bins(index, (num_classes + 1) * block)[:num_classes * block]
    return counts.view(num_classes, len(OUTCOMES), len(LENGTH_EDGES), conf_bins)


def fusion_summary(counts: torch.Tensor, conf_edges: Sequence[float],
                   class_names: Sequence[str] | None = None) -> dict:
    """The results.json block of one (S_i, S_f) pair from summed ``fusion_counts``.

    Shares are fractions of the labelled pixels (per class: of that class's labelled pixels),
    NaN where there are none; histograms are pixel counts, "all" and one per outcome, over
    ``LENGTH_EDGES`` and ``conf_edges`` (lower edges).
    """
    counts = counts.detach().cpu().long()
    by_class = counts.sum(dim=(2, 3))  # K x 4
    names = class_names_of(class_names, len(by_class))
    block = _shares(by_class.sum(dim=0))
    block["per_class"] = {name: _shares(by_class[c]) for c, name in enumerate(names)}
    block["offset_length"] = _histograms(counts.sum(dim=(0, 3)), LENGTH_EDGES, unit="pixels")
    block["confidence"] = _histograms(counts.sum(dim=(0, 2)), conf_edges, unit="F")
    return block


def _shares(counts):
    """{"pixels": n, "differ": ..., "fixed": ..., "broken": ..., "changed": ...} of 4 counts."""
    total = int(counts.sum())
    share = (lambda n: n / total) if total else (lambda n: math.nan)
    _, fixed, broken, changed = (int(n) for n in counts)
    return {"pixels": total, "differ": share(fixed + broken + changed), "fixed": share(fixed),
            "broken": share(broken), "changed": share(changed)}


def _histograms(counts, edges, unit):
    """counts: 4 x B, one row an outcome."""
    block = {"unit": unit, "edges": [float(e) for e in edges],
             "all": counts.sum(dim=0).tolist()}
    block.update({name: counts[i].tolist() for i, name in enumerate(OUTCOMES)})
    return block
