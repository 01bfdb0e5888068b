"""What the fusion S_f = (1 - F) S_i + F S_s did to the prediction of S_i, pixel by pixel.

Over the labelled pixels, each pixel has one outcome of the pair (argmax S_i, argmax S_f):

- "same":    both predict the same class;
- "fixed":   S_i is wrong and S_f is right;
- "broken":  S_i is right and S_f is wrong;
- "changed": they differ and both are wrong.

The share where argmax S_f != argmax S_i is fixed + broken + changed ("differ").  Counts are kept
per ground-truth class, and fixed histograms of the offset length (pixels of the label map) and
of the confidence F, one per outcome; "all" is their sum.  Histogram bin i holds the values in
[edges[i], edges[i + 1]); the last bin is open above.
"""
import math
from collections.abc import Sequence

import torch

from .counts import count_bins

__all__ = ["OUTCOMES", "LENGTH_EDGES", "confidence_edges", "fusion_outcome", "outcome_counts",
           "histogram_counts", "fusion_summary"]

OUTCOMES = ("same", "fixed", "broken", "changed")
# Offset lengths in pixels of the label map: doubling bins, 0.5 px to 512 px and beyond.
LENGTH_EDGES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)


def confidence_edges(bins: int = 20) -> tuple[float, ...]:
    """Lower edges of ``bins`` equal bins over [0, 1] (the last one holds F = 1 too)."""
    return tuple(i / bins for i in range(bins))


def fusion_outcome(base: torch.Tensor, fused: torch.Tensor, target: torch.Tensor,
                   num_classes: int, ignore_label: int = 255):
    """(outcome, valid): int64 index into ``OUTCOMES`` and the labelled-pixel mask, N x H x W.

    base, fused: argmax of S_i and of S_f; target: labels.  Same shapes.
    """
    valid = (target != ignore_label) & (target >= 0) & (target < num_classes)
    outcome = torch.where(base == fused, 0,
                          torch.where(fused == target, 1, torch.where(base == target, 2, 3)))
    return outcome, valid


def outcome_counts(outcome, valid, target, num_classes: int) -> torch.Tensor:
    """int64 4 x K: pixels of each outcome (rows, ``OUTCOMES`` order) by ground-truth class."""
    index = outcome * num_classes + target.long()
    return count_bins(index, valid, len(OUTCOMES) * num_classes).view(len(OUTCOMES), num_classes)


def histogram_counts(values: torch.Tensor, outcome, valid, edges: torch.Tensor) -> torch.Tensor:
    """int64 4 x B: histogram of ``values`` (N x H x W) per outcome; B = len(edges).

    edges: increasing lower bin edges, on the values' device; values below edges[0] fall in
    bin 0.
    """
    bins = torch.bucketize(values, edges[1:], right=True)
    return count_bins(outcome * len(edges) + bins, valid,
                      len(OUTCOMES) * len(edges)).view(len(OUTCOMES), len(edges))


def fusion_summary(outcomes: torch.Tensor, length: torch.Tensor, confidence: torch.Tensor,
                   length_edges: Sequence[float], conf_edges: Sequence[float],
                   class_names: Sequence[str] | None = None) -> dict:
    """The results.json block of one (S_i, S_f) pair from summed counts.

    outcomes: 4 x K (``outcome_counts``); length, confidence: 4 x B histograms.  Shares are
    fractions of the labelled pixels (per class: of that class's labelled pixels), NaN where
    there are none; histograms are pixel counts with their lower edges.
    """
    outcomes = outcomes.detach().cpu().long()
    names = [str(c) for c in range(outcomes.shape[1])] if class_names is None \
        else list(class_names)
    if len(names) != outcomes.shape[1]:
        raise ValueError(f"{len(names)} class names for {outcomes.shape[1]} classes")
    block = _shares(outcomes.sum(dim=1))
    block["per_class"] = {name: _shares(outcomes[:, c]) for c, name in enumerate(names)}
    block["offset_length"] = _histograms(length, length_edges, unit="pixels")
    block["confidence"] = _histograms(confidence, conf_edges, unit="F")
    return block


def _shares(counts):
    """{"pixels": n, "differ": ..., "fixed": ..., "broken": ..., "changed": ...} of 4 counts."""
    total = int(counts.sum())
    share = (lambda n: n / total) if total else (lambda n: math.nan)
    _, fixed, broken, changed = (int(n) for n in counts)
    return {"pixels": total, "differ": share(fixed + broken + changed), "fixed": share(fixed),
            "broken": share(broken), "changed": share(changed)}


def _histograms(counts, edges, unit):
    counts = counts.detach().cpu().long()
    block = {"unit": unit, "edges": [float(e) for e in edges],
             "all": counts.sum(dim=0).tolist()}
    block.update({name: counts[i].tolist() for i, name in enumerate(OUTCOMES)})
    return block
