"""Whole-image, sliding-window, multi-scale and flip inference (the reference evaluation).

Conventions used throughout:
- Images are normalised RGB tensors N x 3 x H x W.  Every result is a float32 tensor on the
  image's device; nothing goes through NumPy.
- ``model(x)`` returns a ``SegOutput``; its ``final`` map (S_f, else S_i) may come at any
  resolution (the networks give H/4 x W/4) and is resized bilinearly to the input size with
  ``align_corners`` (MODEL.ALIGN_CORNERS).
- The caller puts the model in eval mode; nothing here changes the mode.  The public functions
  run under ``torch.inference_mode``.
- *Scores* are what windows and scales add up (TEST.ACCUMULATE): ``"exp_logits"`` = exp of the
  flip-averaged logits (the reference) or ``"softmax"`` of them.  Both are computed in fp32.  In
  fp32, exp overflows to inf for logits above about 88.7, as it did in the reference; an inf can
  turn into NaN when scores are resized.  Trained networks stay far below that; use ``"softmax"``
  for networks that do not.
- ``amp_dtype`` (e.g. ``torch.bfloat16``) runs the network forwards under ``torch.autocast`` on
  the image's device type; the logits are cast to fp32 before anything else touches them.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..datasets.base_dataset import scaled_size
from .precision import autocast

__all__ = ["InferenceSettings", "ACCUMULATE_MODES", "forward_logits", "to_scores",
           "window_boxes", "sliding_window", "scaled_size", "rescale", "multi_scale_inference",
           "predict"]


ACCUMULATE_MODES = ("exp_logits", "softmax")


@dataclass(frozen=True)
class InferenceSettings:
    """How one evaluation image is predicted (``predict``); ``from_config`` reads TEST.*.

    scales:        resize factors of ``base_size`` (TEST.SCALE_LIST, or (1.0,)).
    base_size:     long side of the image at scale 1, pixels (TEST.BASE_SIZE).
    window_hw:     sliding window (height, width) for scales above 1 (TEST.IMAGE_SIZE is [w, h]).
    flip:          average with the mirrored image's logits (TEST.FLIP_TEST).
    stride_ratio:  window stride as a fraction of the window (TEST.STRIDE_RATIO, reference 1.0).
    accumulate:    "exp_logits" or "softmax" (TEST.ACCUMULATE).
    align_corners: of the bilinear resizes of logits and scores (MODEL.ALIGN_CORNERS).
    batch_size:    windows per network forward, twice as many images with flip (TEST.WINDOW_BATCH).
    amp_dtype:     autocast dtype of the forwards, or None for fp32.
    """

    scales: tuple[float, ...] = (1.0,)
    base_size: int = 2048
    window_hw: tuple[int, int] = (1024, 2048)
    flip: bool = False
    stride_ratio: float = 1.0
    accumulate: str = "exp_logits"
    align_corners: bool = False
    batch_size: int = 4
    amp_dtype: torch.dtype | None = None

    @classmethod
    def from_config(cls, cfg, amp_dtype: torch.dtype | None = None) -> "InferenceSettings":
        """TEST.* and MODEL.ALIGN_CORNERS; TEST.SCALE_LIST alone sets the scales, as in the
        reference (TEST.MULTI_SCALE has no effect)."""
        test = cfg.TEST
        scales = tuple(float(s) for s in test.SCALE_LIST)
        width, height = (int(v) for v in test.IMAGE_SIZE)
        return cls(scales=scales, base_size=int(test.BASE_SIZE), window_hw=(height, width),
                   batch_size=int(test.WINDOW_BATCH),
                   flip=bool(test.FLIP_TEST), stride_ratio=float(test.STRIDE_RATIO),
                   accumulate=test.ACCUMULATE, align_corners=bool(cfg.MODEL.ALIGN_CORNERS),
                   amp_dtype=amp_dtype)


def _resize(x: torch.Tensor, size: tuple[int, int], align_corners: bool) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


@torch.inference_mode()
def forward_logits(model, images: torch.Tensor, *, flip: bool = False,
                   align_corners: bool = False,
                   amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Logits of ``model(images).final`` resized to the input: N x 3 x H x W -> N x K x H x W fp32.

    With ``flip`` the images and their mirrors go through the network as one batch of 2N; the
    mirrors' logits are mirrored back and averaged with the others (the reference averages
    logits, not scores).
    """
    n, _, height, width = images.shape
    batch = torch.cat((images, images.flip(-1))) if flip else images
    with autocast(images.device, amp_dtype):
        logits = model(batch).final
    logits = logits.float()
    if flip:
        # Averaging before the resize is exact (a bilinear resize commutes with mirroring) and
        # resizes half as much.
        logits = 0.5 * (logits[:n] + logits[n:].flip(-1))
    return _resize(logits, (height, width), align_corners)


def to_scores(logits: torch.Tensor, accumulate: str) -> torch.Tensor:
    """N x K x H x W logits -> fp32 scores: exp(logits) ("exp_logits") or softmax ("softmax")."""
    if accumulate == "exp_logits":
        return logits.float().exp()
    if accumulate == "softmax":
        return logits.float().softmax(dim=1)
    raise ValueError(f"accumulate must be one of {list(ACCUMULATE_MODES)}, got {accumulate!r}")


def _own_scores(logits: torch.Tensor, accumulate: str) -> torch.Tensor:
    """``to_scores`` of logits from ``forward_logits``, exponentiated in place to save a full-size
    buffer: they are a fresh tensor for any network that does not return a view of its input."""
    return logits.exp_() if accumulate == "exp_logits" else to_scores(logits, accumulate)


def _spans(size: int, window: int, stride_ratio: float) -> list[tuple[int, int]]:
    stride = max(int(window * stride_ratio), 1)
    # The reference's count ceil((size - window) / stride) + 1 drops to 0 or below when the image
    # is smaller than the window by more than a stride; one window (the whole side) is meant.
    count = max(math.ceil((size - window) / stride), 0) + 1
    spans = []
    for i in range(count):
        end = min(i * stride + window, size)
        spans.append((max(end - window, 0), end))
    return spans


def window_boxes(height: int, width: int, window_hw: tuple[int, int],
                 stride_ratio: float) -> list[tuple[int, int, int, int]]:
    """The reference's sliding windows over a height x width image, as (h0, h1, w0, w1).

    Row r starts at r * stride_h with stride_h = int(window_h * stride_ratio); rows =
    ceil((height - window_h) / stride_h) + 1 (at least 1); a window running past the edge is moved
    back inside (h1 = min(h0 + window_h, height), h0 = max(h1 - window_h, 0)); columns likewise.
    Every window has size min(window_h, height) x min(window_w, width), and together they cover
    the image.  Row-major order.
    """
    window_h, window_w = window_hw
    rows = _spans(height, window_h, stride_ratio)
    cols = _spans(width, window_w, stride_ratio)
    return [(h0, h1, w0, w1) for h0, h1 in rows for w0, w1 in cols]


def _check_single(image: torch.Tensor, what: str):
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"{what} takes one image of shape 1 x 3 x H x W, got {tuple(image.shape)}")


@torch.inference_mode()
def sliding_window(model, image: torch.Tensor, window_hw: tuple[int, int], *,
                   stride_ratio: float = 1.0, flip: bool = False,
                   accumulate: str = "exp_logits", align_corners: bool = False,
                   batch_size: int = 4, amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Scores of one image 1 x 3 x H x W from windows (``window_boxes``): 1 x K x H x W fp32.

    Each window's scores (``to_scores`` of its flip-averaged logits at the window's size) are
    added where the window lies and divided by the number of windows covering each pixel, as the
    reference does.  ``batch_size`` windows go through the network together.
    """
    _check_single(image, "sliding_window")
    height, width = image.shape[-2:]
    boxes = window_boxes(height, width, window_hw, stride_ratio)
    total = None
    count = torch.zeros(1, 1, height, width, device=image.device)
    for start in range(0, len(boxes), batch_size):
        chunk = boxes[start:start + batch_size]
        crops = torch.cat([image[:, :, h0:h1, w0:w1] for h0, h1, w0, w1 in chunk])
        logits = forward_logits(model, crops, flip=flip, align_corners=align_corners,
                                amp_dtype=amp_dtype)
        scores = _own_scores(logits, accumulate)
        if total is None:
            total = scores.new_zeros(1, scores.shape[1], height, width)
        for window_scores, (h0, h1, w0, w1) in zip(scores, chunk, strict=True):
            total[0, :, h0:h1, w0:w1] += window_scores
            count[0, :, h0:h1, w0:w1] += 1
    return total.div_(count)


def rescale(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """``image`` (N x 3 x H x W) resized bilinearly so that its long side is ``long_side`` pixels,
    the other side rounded as the reference rounds it (``scaled_size``)."""
    return _resize(image, scaled_size(*image.shape[-2:], long_side), align_corners=False)


@torch.inference_mode()
def multi_scale_inference(model, image: torch.Tensor, *, scales: tuple[float, ...],
                          base_size: int, window_hw: tuple[int, int], flip: bool = False,
                          stride_ratio: float = 1.0, accumulate: str = "exp_logits",
                          align_corners: bool = False, batch_size: int = 4,
                          amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Reference multi-scale scores of one image 1 x 3 x H x W: 1 x K x H x W fp32.

    For each scale s the image is resized (bilinear, align_corners=False) so that its long side is
    int(base_size * s + 0.5) (``scaled_size``); s <= 1 runs the whole resized image, s > 1 slides
    windows of ``window_hw`` (``sliding_window``).  Each scale's scores are resized to H x W
    (bilinear, ``align_corners``) and added.  The argmax over K is the prediction.
    """
    _check_single(image, "multi_scale_inference")
    height, width = image.shape[-2:]
    total = None
    for scale in scales:
        scaled = rescale(image, int(base_size * scale + 0.5))
        if scale <= 1.0:
            logits = forward_logits(model, scaled, flip=flip, align_corners=align_corners,
                                    amp_dtype=amp_dtype)
            scores = _own_scores(logits, accumulate)
        else:
            scores = sliding_window(model, scaled, window_hw, stride_ratio=stride_ratio,
                                    flip=flip, accumulate=accumulate,
                                    align_corners=align_corners, batch_size=batch_size,
                                    amp_dtype=amp_dtype)
        scores = _resize(scores, (height, width), align_corners)
        total = scores if total is None else total.add_(scores)
    return total


def predict(model, image: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """``multi_scale_inference`` of one image 1 x 3 x H x W with ``settings``: 1 x K x H x W."""
    return multi_scale_inference(
        model, image, scales=settings.scales, base_size=settings.base_size,
        window_hw=settings.window_hw, flip=settings.flip, stride_ratio=settings.stride_ratio,
        accumulate=settings.accumulate, align_corners=settings.align_corners,
        batch_size=settings.batch_size, amp_dtype=settings.amp_dtype)
