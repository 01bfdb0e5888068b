"""Losses of every network: cross-entropy, OHEM, the confidence loss and their named sum.

Every loss takes maps at the network's resolution (B x C x h x w) and a label map B x H x W
(int64, ``ignore_label`` = not labelled), resizes the maps bilinearly to H x W, and computes in
fp32.  Nothing in a forward pass reads a value back to the host: selections and "no valid pixel"
cases are tensor operations, so a training step stays asynchronous.

``SegLoss`` returns named, weighted terms; their sum is the loss to minimise.  It serves
the one-head networks (``SegOutput``) and the two-head OCR networks (``OCROutput``).
"""
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError
from ..config.choices import CONFIDENCE_MODES, REGION_MEANS
from ..utils.geometry import resize_bilinear
from .output import OCROutput, SegOutput
from .seed import base_grid

__all__ = ["CrossEntropy", "OhemCrossEntropy", "ConfidenceLoss", "SegLoss",
           "build_criterion"]

# Keeps -log(F) and -log(1 - F) finite at F = 0 and 1 (the reference constant).
_LOG_EPS = 1e-7


def _as_buffer(weight):
    return None if weight is None else torch.as_tensor(weight, dtype=torch.float32).flatten()


class CrossEntropy(nn.Module):
    """Class-weighted cross-entropy, mean over labelled pixels.

    forward(logits B x K x h x w, target B x H x W int64) -> scalar.  The logits are resized
    bilinearly to H x W.  The result is sum_p w_{y_p} l_p / sum_p w_{y_p} over pixels with
    y_p != ignore_label (what ``F.cross_entropy(reduction="mean")`` computes), and exactly zero,
    still connected to the graph, when no pixel is labelled.  With ``over_all_pixels`` the same
    sum is divided by B * H * W instead, ignored pixels counting as zeros.

    Args:
        ignore_label: label value left out.
        weight: K class weights (trainId order) or None.
        align_corners: of the bilinear resize (MODEL.ALIGN_CORNERS).
        over_all_pixels: divide by the number of pixels (HRNet-OCR's soft-region term with OHEM).
    """

    def __init__(self, ignore_label: int = 255, weight: torch.Tensor | None = None,
                 align_corners: bool = False, over_all_pixels: bool = False):
        super().__init__()
        self.ignore_label = ignore_label
        self.align_corners = align_corners
        self.over_all_pixels = over_all_pixels
        self.register_buffer("weight", _as_buffer(weight), persistent=False)

    def forward(self, logits, target):
        logits = resize_bilinear(logits.float(), target.shape[-2:], self.align_corners)
        weight = None if self.weight is None else self.weight.to(logits.device)
        total = F.cross_entropy(logits, target, weight=weight, ignore_index=self.ignore_label,
                                reduction="sum")
        if self.over_all_pixels:
            return total / target.numel()
        valid = target != self.ignore_label
        if weight is None:
            norm = valid.sum().to(total.dtype)
        else:
            norm = (weight[torch.where(valid, target, 0)] * valid).sum()
        # With no labelled pixel the sum is an exact 0 and so is its gradient; any positive
        # denominator keeps 0 / norm finite.
        return total / norm.clamp_min(torch.finfo(total.dtype).tiny)


class OhemCrossEntropy(nn.Module):
    """Online hard example mining cross-entropy (the reference OHEM of HRNet).

    forward(logits B x K x h x w, target B x H x W int64) -> scalar, over the whole batch given
    (OHEMKEEP is "per process batch").  With l_p the class-weighted cross-entropy of pixel p and
    p_p the softmax probability of its true class, over the n valid (labelled) pixels:

        k = min(min_kept, n - 1)                       (0-based)
        tau = max(sorted(p)[k], thresh)
        result = mean of l_p over valid pixels with p_p < tau   (plain, unweighted mean)

    Zero (connected to the graph, never NaN) when no pixel is valid or kept.

    Implementation without a sort and without reading anything back to the host: p of invalid
    pixels is set to +inf, and ``kthvalue`` selects the element of 0-based rank
    min(min_kept, numel - 1) over all pixels.  When at least min_kept + 1 pixels are valid it is
    finite and equals sorted(p)[min_kept].  Otherwise it is +inf, and the largest valid p is used,
    which is exactly sorted(p)[n - 1].

    Args:
        ignore_label: label value left out.
        thresh: probability threshold (LOSS.OHEMTHRES).
        min_kept: the threshold is raised so that at least this many pixels are kept
            (LOSS.OHEMKEEP); ties at the threshold can keep fewer, as in the reference.
        weight: K class weights or None.
        align_corners: of the bilinear resize.
    """

    def __init__(self, ignore_label: int = 255, thresh: float = 0.9, min_kept: int = 131072,
                 weight: torch.Tensor | None = None, align_corners: bool = False):
        super().__init__()
        if min_kept < 0:
            raise ValueError(f"min_kept must be >= 0, got {min_kept}")
        self.ignore_label = ignore_label
        self.thresh = float(thresh)
        self.min_kept = int(min_kept)
        self.align_corners = align_corners
        self.register_buffer("weight", _as_buffer(weight), persistent=False)

    def forward(self, logits, target):
        logits = resize_bilinear(logits.float(), target.shape[-2:], self.align_corners)
        valid = target != self.ignore_label
        labels = torch.where(valid, target, 0)
        # One log_softmax gives both the per-pixel loss and the true-class probability.
        true_log_prob = logits.log_softmax(dim=1).gather(1, labels[:, None]).squeeze(1)
        losses = -true_log_prob
        if self.weight is not None:
            losses = losses * self.weight.to(losses.device)[labels]

        with torch.no_grad():
            prob = true_log_prob.exp().masked_fill(~valid, float("inf"))
            rank = min(self.min_kept, prob.numel() - 1)
            kth = prob.flatten().kthvalue(rank + 1).values
            largest_valid = prob.masked_fill(~valid, float("-inf")).max()
            min_value = torch.where(torch.isinf(kth), largest_valid, kth)
            kept = (valid & (prob < min_value.clamp_min(self.thresh))).to(losses.dtype)
        return (losses * kept).sum() / kept.sum().clamp_min(1.0)


class ConfidenceLoss(nn.Module):
    """Binary cross-entropy that teaches F where a pixel's seed has the pixel's own label.

    forward(confidence F B x 1 x h x w in [0, 1], offsets o B x 2 x h x w (x, y), normalised
    align_corners=True units, target B x H x W int64) -> scalar.

    F and o are resized bilinearly to H x W (``align_corners`` as given; o keeps its units, which
    do not depend on the map size).  o is detached: gradients reach F only.  The seed of pixel p
    is base_grid(H, W) + o(p), not clamped; its label is the nearest label-map value there, with
    border padding (grid_sample nearest, align_corners=True).  The target is 1 where the seed label
    equals the pixel label.  With BCE_p = -log(F + 1e-7) on positives and -log(1 - F + 1e-7) on
    negatives:

    - ``"reference"``: ignored labels count as class 0 (in the map that seeds are read from as
      well); result = sum of BCE_p over the whole batch / (H * W), not divided by B.
    - ``"masked"``: pixels whose label or seed label is ignored are left out; result = mean of
      BCE_p over the rest (zero, connected to the graph, when none is left).

    Args:
        mode: "reference" (LOSS.CONFIDENCE_MODE default) or "masked".
        ignore_label: label value of unlabelled pixels.
        align_corners: of the bilinear resizes of F and o (MODEL.ALIGN_CORNERS).
    """

    def __init__(self, mode: str = "reference", ignore_label: int = 255,
                 align_corners: bool = False):
        super().__init__()
        if mode not in CONFIDENCE_MODES:
            raise ValueError(f"unknown confidence loss mode {mode!r}; valid modes: "
                             f"{list(CONFIDENCE_MODES)}")
        self.mode = mode
        self.ignore_label = ignore_label
        self.align_corners = align_corners

    def forward(self, confidence, offsets, target):
        size = target.shape[-2:]
        confidence = resize_bilinear(confidence.float(), size, self.align_corners)[:, 0]
        offsets = resize_bilinear(offsets.detach().float(), size, self.align_corners)
        grid = base_grid(*size, device=offsets.device, dtype=offsets.dtype)
        seed_grid = grid + offsets.permute(0, 2, 3, 1)

        ignored = target == self.ignore_label
        labels = torch.where(ignored, 0, target) if self.mode == "reference" else target
        labels = labels.to(offsets.dtype)
        seed_labels = F.grid_sample(labels[:, None], seed_grid, mode="nearest",
                                    padding_mode="border", align_corners=True)[:, 0]
        positive = seed_labels == labels
        bce = -torch.where(positive, (confidence + _LOG_EPS).log(),
                           (1.0 - confidence + _LOG_EPS).log())
        if self.mode == "reference":
            return bce.sum() / (size[0] * size[1])
        used = (~ignored & (seed_labels != self.ignore_label)).to(bce.dtype)
        return (bce * used).sum() / used.sum().clamp_min(1.0)


_TERMS = (("seg", "logits"), ("seed", "seed_logits"), ("fused", "fused_logits"))


class SegLoss(nn.Module):
    """The training loss as named, weighted terms; the loss is ``sum(terms.values())``.

    forward(output: SegOutput or OCROutput, target B x H x W) -> dict.  With (w_i, w_s, w_f, w_c)
    = ``term_weights``:

    - offset network: {"seg": w_i L(S_i), "seed": w_s L(S_s), "fused": w_f L(S_f),
      "confidence": w_c L_conf(F, o)};
    - baseline (``output.offsets is None``): {"seg": L(S_i)}, unweighted;
    - OCR networks: each of those terms is a pair over the two heads, weighted by
      ``balance_weights`` (b_r, b_o): "seg_regions" = w_i b_r L_r(S_i of the soft regions) and
      "seg_ocr" = w_i b_o L(S_i of the OCR head), and so on for "seed_*" and "fused_*"; one
      "confidence" term (one offset field).  Plain HRNet-OCR: {"seg_regions", "seg_ocr"} with
      b_r and b_o only.

    With MODEL.EXTRA.LOGITS false the network returns log-probabilities in seed_logits and
    fused_logits; softmax(log p) = p, so they are valid logits for ``seg_loss`` as they are.

    Args:
        seg_loss: CrossEntropy or OhemCrossEntropy, applied to S_i, S_s and S_f (of the OCR head).
        confidence_loss: ConfidenceLoss.
        term_weights: weights of S_i, S_s, S_f and the confidence term (LOSS.TERM_WEIGHTS).
        region_loss: the loss of the soft-region head; default ``seg_loss``.  HRNet-OCR mines
            hard pixels in its last output only: with OHEM the regions take plain cross-entropy
            (see ``build_criterion``).
        balance_weights: (b_r, b_o) of the two OCR heads (LOSS.BALANCE_WEIGHTS).
    """

    def __init__(self, seg_loss: nn.Module, confidence_loss: nn.Module,
                 term_weights: Sequence[float] = (0.5, 0.5, 1.0, 1.0),
                 region_loss: nn.Module | None = None,
                 balance_weights: Sequence[float] = (0.4, 1.0)):
        super().__init__()
        if len(term_weights) != 4:
            raise ValueError("term_weights needs 4 values (S_i, S_s, S_f, confidence), "
                             f"got {list(term_weights)}")
        self.seg_loss = seg_loss
        self.confidence_loss = confidence_loss
        self.region_loss = seg_loss if region_loss is None else region_loss
        self.term_weights = tuple(float(w) for w in term_weights)
        self.balance_weights = tuple(float(w) for w in balance_weights)

    def _heads(self, output):
        """(name suffix, balance weight, loss, SegOutput) of each head of ``output``."""
        if not isinstance(output, OCROutput):
            return [("", 1.0, self.seg_loss, output)]
        if len(self.balance_weights) != 2:
            raise ConfigError("LOSS.BALANCE_WEIGHTS needs 2 weights (soft regions, OCR) for the "
                              f"OCR networks, got {list(self.balance_weights)}")
        b_regions, b_ocr = self.balance_weights
        return [("_regions", b_regions, self.region_loss, output.regions()),
                ("_ocr", b_ocr, self.seg_loss, output.ocr())]

    def forward(self, output: SegOutput | OCROutput, target) -> dict[str, torch.Tensor]:
        with_offsets = output.offsets is not None
        term_weights = self.term_weights[:3] if with_offsets else (1.0,)
        terms = {}
        for (term, field), weight in zip(_TERMS, term_weights):
            for suffix, balance, loss, head in self._heads(output):
                terms[term + suffix] = weight * balance * loss(getattr(head, field), target)
        if with_offsets:
            terms["confidence"] = self.term_weights[3] * self.confidence_loss(
                output.confidence, output.offsets, target)
        return terms


def build_criterion(cfg, class_weights=None):
    """The ``SegLoss`` that the config describes (it serves every network).

    With OHEM, the soft regions of the OCR networks take cross-entropy averaged as
    LOSS.REGION_MEAN says ("all_pixels", the reference, or "labelled"); without OHEM they take
    the same cross-entropy as the OCR head.

    Reads LOSS.USE_OHEM, OHEMTHRES, OHEMKEEP, CLASS_BALANCE, TERM_WEIGHTS, BALANCE_WEIGHTS,
    REGION_MEAN, CONFIDENCE_MODE,
    TRAIN.IGNORE_LABEL, MODEL.ALIGN_CORNERS (not for the confidence term, whose resizes use
    align_corners False as the reference's) and DATASET.NUM_CLASSES.  ``class_weights`` (K floats,
    from the dataset) are used only when LOSS.CLASS_BALANCE is true, and must then be given.
    """
    weight = None
    if cfg.LOSS.CLASS_BALANCE:
        if class_weights is None:
            raise ConfigError("LOSS.CLASS_BALANCE is true but no class weights were given "
                              "(set LOSS.CLASS_BALANCE False or pass the dataset's weights)")
        weight = _as_buffer(class_weights)
        if weight.numel() != cfg.DATASET.NUM_CLASSES:
            raise ConfigError(f"{weight.numel()} class weights for DATASET.NUM_CLASSES "
                              f"{cfg.DATASET.NUM_CLASSES}")
    ignore_label = cfg.TRAIN.IGNORE_LABEL
    align_corners = cfg.MODEL.ALIGN_CORNERS
    cross_entropy = CrossEntropy(ignore_label=ignore_label, weight=weight,
                                 align_corners=align_corners)
    seg_loss = region_loss = cross_entropy
    if cfg.LOSS.USE_OHEM:
        seg_loss = OhemCrossEntropy(ignore_label=ignore_label, thresh=cfg.LOSS.OHEMTHRES,
                                    min_kept=cfg.LOSS.OHEMKEEP, weight=weight,
                                    align_corners=align_corners)
        if cfg.LOSS.REGION_MEAN not in REGION_MEANS:
            raise ConfigError(f"LOSS.REGION_MEAN must be one of {list(REGION_MEANS)}, "
                              f"got {cfg.LOSS.REGION_MEAN!r}")
        region_loss = CrossEntropy(ignore_label=ignore_label, weight=weight,
                                   align_corners=align_corners,
                                   over_all_pixels=cfg.LOSS.REGION_MEAN == "all_pixels")
    # The OVeNet code resizes F and o to the label size with align_corners False whatever the
    # network's setting (its OCR recipes use True everywhere else); so do we.
    confidence_loss = ConfidenceLoss(mode=cfg.LOSS.CONFIDENCE_MODE, ignore_label=ignore_label,
                                     align_corners=False)
    return SegLoss(seg_loss, confidence_loss, term_weights=cfg.LOSS.TERM_WEIGHTS,
                         region_loss=region_loss, balance_weights=cfg.LOSS.BALANCE_WEIGHTS)
