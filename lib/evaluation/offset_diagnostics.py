"""What an offset network's seeds do, and what its loss terms do to the trunk it shares with the
class head: the measures of the method study (``tools/diagnose_offsets.py``, docs/studies).

Definitions (label-map pixels throughout; offsets x then y, as ``predictions.label_size_offsets``
gives them):

- the *seed* of pixel p is p + o(p), rounded to the nearest pixel and clamped to the image (the
  border padding of the seed sampling);
- *same-class seed share*: of the labelled pixels whose seed is labelled, the share whose seed has
  the pixel's own label (the confidence loss's target is 1 exactly there);
- *near a boundary* (radius r): the (2r + 1) x (2r + 1) window around the pixel holds more than
  one label value (ignore counts as a value); *interior* is the rest;
- *saturated*: |o_x| or |o_y| at least 95 % of the offset threshold (tanh near +-1);
- *fixable within (ry, rx)*: of the labelled pixels that S_i gets wrong, the share that have,
  within the (2ry + 1) x (2rx + 1) window, a pixel of the same true class that S_i gets right.
  It bounds what seed gathering with offsets of at most (ry, rx) pixels could fix (an oracle
  that always picks the best seed);
- *shared trunk*: the parameters that both the class logits S_i and the offset head's outputs
  depend on (the stem, stage 1 and the stages below OFFSET_BRANCH);
- *term gradients*: the gradient of each weighted loss term with respect to the shared trunk,
  its norm, and its cosine with the gradient of the S_i term ("seg").
"""
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["seed_positions", "near_boundary", "seed_measures", "fixable_share",
           "shared_trunk_parameters", "term_gradients"]


def seed_positions(offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) int64 N x H x W of each pixel's seed: p + o(p) rounded to the nearest pixel
    and clamped to the map.  offsets: N x 2 x H x W in pixels (x, y)."""
    n, _, h, w = offsets.shape
    rows = torch.arange(h, device=offsets.device, dtype=offsets.dtype).view(1, h, 1)
    cols = torch.arange(w, device=offsets.device, dtype=offsets.dtype).view(1, 1, w)
    r = (rows + offsets[:, 1]).round().clamp(0, h - 1).long()
    c = (cols + offsets[:, 0]).round().clamp(0, w - 1).long()
    return r, c


def near_boundary(labels: torch.Tensor, radius: int) -> torch.Tensor:
    """bool N x H x W: whether the (2r + 1)-square window around each pixel holds more than one
    label value.  labels: N x H x W integer."""
    x = labels[:, None].float()
    k = 2 * radius + 1
    high = F.max_pool2d(x, k, stride=1, padding=radius)
    low = -F.max_pool2d(-x, k, stride=1, padding=radius)
    return (high != low)[:, 0]


def _gather(maps: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """maps N x H x W sampled at (rows, cols) N x H x W."""
    n, h, w = maps.shape
    flat = maps.reshape(n, h * w)
    return flat.gather(1, (rows * w + cols).reshape(n, h * w)).reshape(n, h, w)


def seed_measures(offsets: torch.Tensor, confidence: torch.Tensor, labels: torch.Tensor,
                  threshold_px: tuple[float, float], ignore_label: int = 255,
                  radius: int = 4) -> dict[str, torch.Tensor]:
    """Sums (0-dim float64 tensors, on the device) over the labelled pixels of a batch, from
    which ``seed_summary`` makes the shares: "pixels", "same" (same-class seeds), "near" and
    "near_same" (pixels near a boundary, and those with a same-class seed), "saturated",
    "length" (sum of offset lengths), "conf" (sum of F), "conf_same" (sum of F over the
    same-class seeds), and "seed_labelled" (pixels whose seed is labelled).

    offsets: N x 2 x H x W pixels (x, y); confidence: N x 1 x H x W; labels: N x H x W;
    threshold_px: the largest offset (x, y) in pixels of this map.
    """
    rows, cols = seed_positions(offsets)
    seed_labels = _gather(labels, rows, cols)
    valid = labels != ignore_label
    seed_valid = valid & (seed_labels != ignore_label)
    same = seed_valid & (seed_labels == labels)
    near = near_boundary(labels, radius) & seed_valid
    limit = offsets.new_tensor(threshold_px).view(1, 2, 1, 1) * 0.95
    saturated = (offsets.abs() >= limit).any(dim=1) & valid
    conf = confidence[:, 0].double()

    def total(mask, values=None):
        values = mask.double() if values is None else values * mask
        return values.sum()

    return {"pixels": total(valid), "seed_labelled": total(seed_valid), "same": total(same),
            "near": total(near), "near_same": total(near & same),
            "saturated": total(saturated),
            "length": total(valid, offsets.double().norm(dim=1)),
            "conf": total(valid, conf), "conf_same": total(same, conf),
            "conf_seed_labelled": total(seed_valid, conf)}


def seed_summary(sums: Mapping[str, float]) -> dict[str, float | None]:
    """Shares of ``seed_measures`` sums (added over batches): "same_class_seeds",
    "same_class_seeds_near_boundary", "same_class_seeds_interior", "saturated",
    "mean_length_px", "mean_confidence", "confidence_same" (mean F where the seed has the
    pixel's class), "confidence_other" (mean F where it has another class)."""

    def share(a, b):
        return float(a) / float(b) if float(b) > 0 else None

    interior = sums["seed_labelled"] - sums["near"]
    other = sums["seed_labelled"] - sums["same"]
    return {"same_class_seeds": share(sums["same"], sums["seed_labelled"]),
            "same_class_seeds_near_boundary": share(sums["near_same"], sums["near"]),
            "same_class_seeds_interior": share(sums["same"] - sums["near_same"], interior),
            "saturated": share(sums["saturated"], sums["pixels"]),
            "mean_length_px": share(sums["length"], sums["pixels"]),
            "mean_confidence": share(sums["conf"], sums["pixels"]),
            "confidence_same": share(sums["conf_same"], sums["same"]),
            "confidence_other": share(sums["conf_seed_labelled"] - sums["conf_same"], other)}


def fixable_share(pred: torch.Tensor, labels: torch.Tensor, num_classes: int,
                  radius_yx: tuple[int, int], ignore_label: int = 255) -> tuple[torch.Tensor,
                                                                               torch.Tensor]:
    """(fixable, wrong): 0-dim float64 counts over a batch of the labelled pixels that ``pred``
    gets wrong, and of those that have a correctly predicted pixel of their own true class
    within the (2ry + 1) x (2rx + 1) window (see the module's docstring).

    pred, labels: N x H x W integer; radius_yx: (ry, rx) pixels.
    """
    ry, rx = radius_yx
    valid = labels != ignore_label
    wrong = valid & (pred != labels)
    fixable = torch.zeros_like(wrong)
    for c in range(num_classes):
        right_c = ((pred == c) & (labels == c))[:, None].float()
        if not bool(right_c.any()):
            continue
        reach = F.max_pool2d(right_c, (2 * ry + 1, 2 * rx + 1), stride=1, padding=(ry, rx))
        fixable |= wrong & (labels == c) & (reach[:, 0] > 0)
    return fixable.double().sum(), wrong.double().sum()


def shared_trunk_parameters(network: torch.nn.Module, images: torch.Tensor
                            ) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of every parameter that both S_i (``output.logits``) and the offset
    head (``output.offsets`` and ``output.confidence``) depend on, found by differentiating
    each from one forward of ``images``."""
    params = [(n, p) for n, p in network.named_parameters() if p.requires_grad]
    output = network(images)
    if output.offsets is None:
        raise ValueError("shared_trunk_parameters needs an offset network")
    tensors = [p for _, p in params]
    from_logits = torch.autograd.grad(output.logits.sum(), tensors, retain_graph=True,
                                      allow_unused=True)
    from_offsets = torch.autograd.grad(output.offsets.sum() + output.confidence.sum(), tensors,
                                       allow_unused=True)
    return [(name, p) for (name, p), a, b in zip(params, from_logits, from_offsets, strict=True)
            if a is not None and b is not None]


def term_gradients(network: torch.nn.Module, criterion: torch.nn.Module, images: torch.Tensor,
                   labels: torch.Tensor, parameters: Sequence[torch.nn.Parameter]
                   ) -> dict[str, dict[str, float]]:
    """{term: {"norm": ||d term / d parameters||, "cos_seg": cosine with the "seg" term's
    gradient}} of each weighted loss term of ``criterion`` on one batch, and "total" for their
    sum.  A term that does not reach ``parameters`` has norm 0 and cosine None."""
    terms = criterion(network(images), labels)
    terms = {**terms, "total": sum(terms.values())}
    grads = {}
    for name, term in terms.items():
        g = torch.autograd.grad(term, list(parameters), retain_graph=True, allow_unused=True)
        grads[name] = torch.cat([(torch.zeros_like(p) if x is None else x).flatten()
                                 for p, x in zip(parameters, g, strict=True)]).double()
    seg = grads.get("seg")
    out = {}
    for name, g in grads.items():
        norm = float(g.norm())
        cos = None
        if seg is not None and norm > 0 and float(seg.norm()) > 0:
            cos = float(g @ seg / (g.norm() * seg.norm()))
        out[name] = {"norm": norm, "cos_seg": cos}
    return out
