"""Evaluation protocols: whole-image, sliding-window, multi-scale and flip inference.

Three protocols, named by ``InferenceSettings.protocol`` (TEST.PROTOCOL, "" = the dataset's
``eval_protocol``), share the forward, flip and window code:

- ``"cityscapes"`` (:func:`cityscapes_inference`), the reference of HRNetV2 on Cityscapes: each
  scale resizes the long side to ``base_size * s``; scales up to 1 run the whole image, larger
  ones slide windows that are moved back inside the image.
- ``"ade20k"`` (:func:`ade20k_inference`), the reference of HRNet-OCR on ADE20K: the short side
  is first resized to ``base_size`` and padded to a multiple of 8; each scale resizes the long
  side to ``base_size * s``; windows of ``window_hw`` at a stride of 2/3 of the window, windows
  running past the bottom/right edge padded with black.
  HRNet-OCR's ``testval`` of PASCAL-Context and COCO-Stuff is the same procedure, except that
  their items carry their ``border_padding``, which is cut off the summed scores before the
  resize to the label size (``crop_padding``, the datasets' ``eval_crop_padding``); PASCAL VOC
  is evaluated as PASCAL-Context.
- ``"lip"`` (:func:`lip_inference`), the reference of HRNetV2 / HRNet-OCR on LIP: the image is
  resized to ``window_hw``, then each scale as in "ade20k".

The first resize of the "ade20k" and "lip" protocols (``first_resize``) is, as in the references'
``testval``, OpenCV's on the 8-bit image (``"opencv"``, on the CPU); ``"device"`` resizes the
normalised float image on its device instead.

Flip testing mirrors the prediction of the mirrored image back and, for a dataset with left/right
classes (``flip_pairs``, LIP's arms, legs and shoes), swaps their channels before averaging.

Conventions used throughout:
- Images are normalised RGB tensors N x 3 x H x W.  Every result is a float32 tensor on the
  image's device; nothing goes through NumPy but the "opencv" first resize (one per image).
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
- Resizes of images are bilinear with ``align_corners=False`` (OpenCV's INTER_LINEAR mapping, as
  the references resize with OpenCV); resizes of logits and scores use ``align_corners``.
- Images are normalised as the network wants them (``settings.normalization``, the network's
  ``input_normalization``, as the datasets and the Predictor normalise them); the "opencv" first
  resize takes images normalised from 8-bit ones and rounds them back to whole grey levels.
"""
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..config import DATASET_OWN, amp_dtype_of
from ..config.choices import ACCUMULATE_MODES, FIRST_RESIZE_MODES
from ..datasets import eval_crop_padding, eval_protocol, label_flip_pairs
from ..utils.geometry import resize_bilinear, scaled_size, short_side_size
from ..utils.normalization import IMAGENET, ImageNormalization
from ..utils.precision import autocast

__all__ = ["InferenceSettings", "ACCUMULATE_MODES", "FIRST_RESIZE_MODES", "PROTOCOLS",
           "forward_logits", "resize_and_pad",
           "to_scores", "window_boxes", "padded_window_boxes", "sliding_window",
           "padded_sliding_window", "scaled_size", "rescale", "scale_one_output", "swap_channels",
           "prediction_logits", "split_predictions",
           "cityscapes_inference", "ade20k_inference", "lip_inference", "predict"]

logger = logging.getLogger(__name__)

# The ade20k protocol pads its resized image to a multiple of this many pixels.
_ADE20K_MULTIPLE = 8


@dataclass(frozen=True)
class InferenceSettings:
    """How one evaluation image is predicted (``predict``); ``from_config`` reads TEST.*.

    The defaults are those of the config (``from_config`` of the default config gives them).

    protocol:      "cityscapes" (``cityscapes_inference``), "ade20k" (``ade20k_inference``) or
                   "lip" (``lip_inference``).
    scales:        resize factors of ``base_size`` (TEST.SCALE_LIST, or (1.0,)).
    base_size:     long side of the image at scale 1, pixels (TEST.BASE_SIZE); the ade20k
                   protocol also resizes the short side to it first.
    window_hw:     sliding window (height, width) (TEST.IMAGE_SIZE is [w, h]).
    flip:          average with the mirrored image's logits (TEST.FLIP_TEST).
    stride_ratio:  window stride as a fraction of the window (TEST.STRIDE_RATIO, reference 1.0);
                   cityscapes protocol only: the ade20k and lip protocols' stride is 2/3 of
                   the window.
    accumulate:    "exp_logits" or "softmax" (TEST.ACCUMULATE).
    align_corners: of the bilinear resizes of logits and scores (MODEL.ALIGN_CORNERS).
    batch_size:    windows per network forward, twice as many images with flip (TEST.WINDOW_BATCH).
    amp_dtype:     autocast dtype of the forwards, or None for fp32.
    normalization: how the images were normalised: the network's (``input_normalization``;
                   every network here takes ImageNet's).  The ade20k and lip protocols pad
                   their windows with its black (as the reference) and their first resize
                   with its mean.
    crop_padding:  ade20k protocol: cut the multiple-of-8 padding off before the resize to the
                   image size, as the reference does for PASCAL-Context and COCO-Stuff; False
                   resizes it with the prediction, as the reference does for ADE20K
                   (TEST.CROP_PADDING, by default the dataset's ``eval_crop_padding``).
    first_resize:  ade20k and lip protocols' first resize: "opencv" (the references: the 8-bit
                   image resized by cv2.resize INTER_LINEAR on the CPU, padded with the mean
                   rounded to whole grey levels) or "device" (the normalised float image
                   resized bilinearly on its device, padded with the exact mean)
                   (TEST.FIRST_RESIZE).
    flip_pairs:    (a, b) class pairs whose channels are swapped in the mirrored image's
                   prediction (the dataset's ``flip_pairs``; () for most).
    predictions:   output fields predicted, e.g. ("logits", "seed_logits", "fused_logits"):
                   their K-channel maps go through every step side by side
                   (len(predictions) * K channels, one prediction after another), from the same
                   forwards; ("final",) = the network's prediction.
    """

    protocol: str = "cityscapes"
    scales: tuple[float, ...] = (1.0,)
    base_size: int = 2048
    window_hw: tuple[int, int] = (1024, 2048)
    flip: bool = False
    stride_ratio: float = 1.0
    accumulate: str = "exp_logits"
    align_corners: bool = False
    batch_size: int = 1
    amp_dtype: torch.dtype | None = None
    normalization: ImageNormalization = IMAGENET
    crop_padding: bool = False
    first_resize: str = "opencv"
    flip_pairs: tuple[tuple[int, int], ...] = ()
    predictions: tuple[str, ...] = ("final",)

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown evaluation protocol {self.protocol!r} (TEST.PROTOCOL); "
                             f"valid: {sorted(PROTOCOLS)}")
        if self.first_resize not in FIRST_RESIZE_MODES:
            raise ValueError(f"first_resize (TEST.FIRST_RESIZE) must be one of "
                             f"{list(FIRST_RESIZE_MODES)}, got {self.first_resize!r}")
        if self.accumulate not in ACCUMULATE_MODES:
            raise ValueError(f"accumulate (TEST.ACCUMULATE) must be one of "
                             f"{list(ACCUMULATE_MODES)}, got {self.accumulate!r}")
        if not self.predictions:
            raise ValueError("predictions name no output field")
        if self.batch_size < 1 or min(self.window_hw) < 1 or self.base_size < 1:
            raise ValueError(f"batch_size, window_hw and base_size must be positive, got "
                             f"{self.batch_size}, {self.window_hw}, {self.base_size}")

    @classmethod
    def from_config(cls, cfg, normalization: ImageNormalization = IMAGENET) -> "InferenceSettings":
        """TEST.*, MODEL.ALIGN_CORNERS and the autocast of TRAIN.AMP; TEST.SCALE_LIST alone sets
        the scales, as in the reference (TEST.MULTI_SCALE has no effect).  TEST.PROTOCOL ""
        takes the protocol of the DATASET.DATASET class (``eval_protocol``), whose
        ``flip_pairs`` flip testing swaps; TEST.CROP_PADDING empty or "auto" its
        ``eval_crop_padding``.  ``normalization``: the network's (``input_normalization``)."""
        test = cfg.TEST
        protocol = test.PROTOCOL or eval_protocol(cfg.DATASET.DATASET)
        crop_padding = test.CROP_PADDING
        if crop_padding in DATASET_OWN:
            crop_padding = eval_crop_padding(cfg.DATASET.DATASET)
        if protocol in _TWO_THIRDS_STRIDE and float(test.STRIDE_RATIO) != 1.0:
            logger.warning("TEST.STRIDE_RATIO %s has no effect: the %s protocol slides its "
                           "windows at 2/3 of the window", test.STRIDE_RATIO, protocol)
        scales = tuple(float(s) for s in test.SCALE_LIST)
        width, height = (int(v) for v in test.IMAGE_SIZE)
        return cls(protocol=protocol, scales=scales, base_size=int(test.BASE_SIZE),
                   window_hw=(height, width), batch_size=int(test.WINDOW_BATCH),
                   flip=bool(test.FLIP_TEST), stride_ratio=float(test.STRIDE_RATIO),
                   accumulate=test.ACCUMULATE, align_corners=bool(cfg.MODEL.ALIGN_CORNERS),
                   amp_dtype=amp_dtype_of(cfg), crop_padding=bool(crop_padding),
                   first_resize=test.FIRST_RESIZE,
                   flip_pairs=label_flip_pairs(cfg.DATASET.DATASET), normalization=normalization)


def swap_channels(x: torch.Tensor, pairs, stacked: int = 1) -> torch.Tensor:
    """``x`` (N x stacked*K x H x W: ``stacked`` predictions side by side) with the class
    channels a and b of each (a, b) in ``pairs`` exchanged in every prediction."""
    if not pairs:
        return x
    k = x.shape[1] // stacked
    order = list(range(x.shape[1]))
    for start in range(0, x.shape[1], k):
        for a, b in pairs:
            order[start + a], order[start + b] = start + b, start + a
    return x[:, order]


def prediction_logits(output, predictions=("final",)) -> torch.Tensor:
    """The logits of the predictions (output fields) ``predictions`` of a network output side by
    side: N x len(predictions)*K x h x w."""
    maps = [getattr(output, name) for name in predictions]
    return maps[0] if len(maps) == 1 else torch.cat(maps, dim=1)


def split_predictions(scores: torch.Tensor, predictions) -> dict:
    """{field: N x K x H x W} of the side-by-side maps of ``predictions`` (``prediction_logits``,
    a protocol's scores)."""
    return dict(zip(predictions, scores.chunk(len(predictions), dim=1), strict=True))


@torch.inference_mode()
def forward_logits(model, images: torch.Tensor, *, flip: bool = False,
                   align_corners: bool = False, amp_dtype: torch.dtype | None = None,
                   flip_pairs=(), predictions=("final",)) -> torch.Tensor:
    """Logits of ``model(images).final`` resized to the input: N x 3 x H x W -> N x K x H x W fp32.

    With ``flip`` the images and their mirrors go through the network as one batch of 2N; the
    mirrors' logits are mirrored back, their ``flip_pairs`` channels swapped (a left arm seen
    in the mirror is a right arm), and averaged with the others (the reference averages logits,
    not scores).
    """
    n, _, height, width = images.shape
    batch = torch.cat((images, images.flip(-1))) if flip else images
    with autocast(images.device, amp_dtype):
        logits = prediction_logits(model(batch), predictions)
    logits = logits.float()
    if flip:
        # Averaging before the resize is exact (a bilinear resize commutes with mirroring) and
        # resizes half as much.
        mirrored = swap_channels(logits[n:].flip(-1), flip_pairs, len(predictions))
        logits = 0.5 * (logits[:n] + mirrored)
    return resize_bilinear(logits, (height, width), align_corners)


def to_scores(logits: torch.Tensor, accumulate: str, stacked: int = 1) -> torch.Tensor:
    """N x stacked*K x H x W logits (``stacked`` predictions side by side) -> fp32 scores:
    exp(logits) ("exp_logits") or the softmax of each prediction ("softmax")."""
    if accumulate == "exp_logits":
        return logits.float().exp()
    if accumulate == "softmax":
        n, c, h, w = logits.shape
        return logits.float().view(n, stacked, c // stacked, h, w).softmax(dim=2).view(n, c, h, w)
    raise ValueError(f"accumulate must be one of {list(ACCUMULATE_MODES)}, got {accumulate!r}")


def _forward_scores(model, images: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """``to_scores`` of the flip-averaged logits of ``images`` at their size, N x K x H x W.

    The logits of ``forward_logits`` are a fresh tensor for any network that does not return a
    view of its input, so they are exponentiated in place to save a full-size buffer.
    """
    logits = forward_logits(model, images, flip=settings.flip,
                            align_corners=settings.align_corners, amp_dtype=settings.amp_dtype,
                            flip_pairs=settings.flip_pairs, predictions=settings.predictions)
    return logits.exp_() if settings.accumulate == "exp_logits" else to_scores(
        logits, settings.accumulate, len(settings.predictions))


def _spans(size: int, window: int, stride: int, inside: bool) -> list[tuple[int, int]]:
    # The reference's count ceil((size - window) / stride) + 1 drops to 0 or below when the image
    # is smaller than the window by more than a stride; one window (the whole side) is meant.
    count = max(math.ceil((size - window) / stride), 0) + 1
    spans = []
    for i in range(count):
        start = i * stride
        if inside:
            end = min(start + window, size)
            spans.append((max(end - window, 0), end))
        else:
            spans.append((start, start + window))
    return spans


def window_boxes(height: int, width: int, window_hw: tuple[int, int],
                 stride_ratio: float) -> list[tuple[int, int, int, int]]:
    """The Cityscapes reference's sliding windows over a height x width image, (h0, h1, w0, w1).

    Row r starts at r * stride_h with stride_h = int(window_h * stride_ratio); rows =
    ceil((height - window_h) / stride_h) + 1 (at least 1); a window running past the edge is moved
    back inside (h1 = min(h0 + window_h, height), h0 = max(h1 - window_h, 0)); columns likewise.
    Every window has size min(window_h, height) x min(window_w, width), and together they cover
    the image.  Row-major order.
    """
    window_h, window_w = window_hw
    rows = _spans(height, window_h, max(int(window_h * stride_ratio), 1), inside=True)
    cols = _spans(width, window_w, max(int(window_w * stride_ratio), 1), inside=True)
    return [(h0, h1, w0, w1) for h0, h1 in rows for w0, w1 in cols]


def padded_window_boxes(height: int, width: int,
                        window_hw: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The HRNet-OCR ADE20K reference's windows over a height x width image, (h0, h1, w0, w1).

    Stride int(window * 2 / 3) per axis; row r spans [r * stride_h, r * stride_h + window_h) with
    rows = ceil((height - window_h) / stride_h) + 1 (at least 1), columns likewise.  Every
    window has the full window size; the last ones run past the bottom/right edge (into the
    padding).  Row-major order.
    """
    window_h, window_w = window_hw
    rows = _spans(height, window_h, max(int(window_h * 2.0 / 3.0), 1), inside=False)
    cols = _spans(width, window_w, max(int(window_w * 2.0 / 3.0), 1), inside=False)
    return [(h0, h1, w0, w1) for h0, h1 in rows for w0, w1 in cols]


def _check_single(image: torch.Tensor, what: str):
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"{what} takes one image of shape 1 x 3 x H x W, got {tuple(image.shape)}")


def _window_scores(model, image: torch.Tensor, boxes: list[tuple[int, int, int, int]],
                   settings: InferenceSettings) -> torch.Tensor:
    """Scores of the windows ``boxes`` (all of one size, inside ``image``) added where each
    window lies and divided by the number of windows covering each pixel: 1 x K x H x W.

    ``settings.batch_size`` windows go through the network together (with their mirrors).
    """
    height, width = image.shape[-2:]
    total = None
    count = torch.zeros(1, 1, height, width, device=image.device)
    for start in range(0, len(boxes), settings.batch_size):
        chunk = boxes[start:start + settings.batch_size]
        crops = torch.cat([image[:, :, h0:h1, w0:w1] for h0, h1, w0, w1 in chunk])
        scores = _forward_scores(model, crops, settings)
        if total is None:
            total = scores.new_zeros(1, scores.shape[1], height, width)
        for window_scores, (h0, h1, w0, w1) in zip(scores, chunk, strict=True):
            total[0, :, h0:h1, w0:w1] += window_scores
            count[0, :, h0:h1, w0:w1] += 1
    return total.div_(count)


@torch.inference_mode()
def sliding_window(model, image: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """Cityscapes-protocol scores of one image 1 x 3 x H x W from ``window_boxes`` (windows of
    ``settings.window_hw`` at ``settings.stride_ratio``): 1 x K x H x W fp32.

    Each window's scores (``to_scores`` of its flip-averaged logits at the window's size) are
    averaged over the windows covering each pixel, as the reference does.
    """
    _check_single(image, "sliding_window")
    boxes = window_boxes(*image.shape[-2:], settings.window_hw, settings.stride_ratio)
    return _window_scores(model, image, boxes, settings)


def _pad(image: torch.Tensor, height: int, width: int, value) -> torch.Tensor:
    """``image`` N x C x h x w padded at the bottom/right to height x width with the per-channel
    ``value`` (a float or a sequence of C floats)."""
    h, w = image.shape[-2:]
    if (h, w) == (height, width):
        return image
    fill = torch.as_tensor(value, dtype=image.dtype, device=image.device)
    canvas = fill.view(1, -1, 1, 1).expand(image.shape[0], image.shape[1], height, width).clone()
    canvas[:, :, :h, :w] = image
    return canvas


@torch.inference_mode()
def padded_sliding_window(model, image: torch.Tensor,
                          settings: InferenceSettings) -> torch.Tensor:
    """ADE20K-protocol scores of one image 1 x 3 x H x W: 1 x K x H x W fp32.

    Windows of ``padded_window_boxes`` on the image padded at the bottom/right with
    black (``settings.normalization``), so every window has the full window size; scores averaged
    over the windows covering each pixel.  An image no larger than the window is one window: the
    image padded to the window and predicted whole, as in the reference.
    """
    _check_single(image, "padded_sliding_window")
    height, width = image.shape[-2:]
    boxes = padded_window_boxes(height, width, settings.window_hw)
    canvas = _pad(image, boxes[-1][1], boxes[-1][3], settings.normalization.black)
    return _window_scores(model, canvas, boxes, settings)[:, :, :height, :width]


def rescale(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """``image`` (N x 3 x H x W) resized bilinearly so that its long side is ``long_side`` pixels,
    the other side rounded as the reference rounds it (``scaled_size``)."""
    return resize_bilinear(image, scaled_size(*image.shape[-2:], long_side), align_corners=False)


@torch.inference_mode()
def scale_one_output(model, images: torch.Tensor, base_size: int | None = None,
                     amp_dtype: torch.dtype | None = None):
    """The network's own output (``SegOutput`` / ``OCROutput``, maps at its resolution) for
    ``images`` N x 3 x H x W at scale 1: resized so that the long side is ``base_size`` (as given
    when None), the forward under autocast in ``amp_dtype``.  What the pictures of S_i, S_s,
    S_f, the offsets and the confidence show."""
    if base_size is not None:
        images = rescale(images, base_size)
    with autocast(images.device, amp_dtype):
        return model(images)


@torch.inference_mode()
def cityscapes_inference(model, image: torch.Tensor,
                          settings: InferenceSettings) -> torch.Tensor:
    """Cityscapes-protocol multi-scale scores of one image 1 x 3 x H x W: 1 x K x H x W fp32.

    For each scale s the image is resized (bilinear, align_corners=False) so that its long side is
    int(base_size * s + 0.5) (``scaled_size``); s <= 1 runs the whole resized image, s > 1 slides
    windows of ``window_hw`` (``sliding_window``).  Each scale's scores are resized to H x W
    (bilinear, ``align_corners``) and added.  The argmax over K is the prediction.
    """
    _check_single(image, "cityscapes_inference")
    height, width = image.shape[-2:]
    total = None
    for scale in settings.scales:
        scaled = rescale(image, int(settings.base_size * scale + 0.5))
        if scale <= 1.0:
            scores = _forward_scores(model, scaled, settings)
        else:
            scores = sliding_window(model, scaled, settings)
        scores = resize_bilinear(scores, (height, width), settings.align_corners)
        total = scores if total is None else total.add_(scores)
    return total


def resize_and_pad(image: torch.Tensor, size: tuple[int, int], multiple: int = 1,
                   mode: str = "opencv", *, normalization: ImageNormalization) -> torch.Tensor:
    """The first resize of the ade20k and lip protocols: ``image`` (1 x 3 x H x W, normalised)
    resized to ``size`` (h, w) and padded at the bottom/right to multiples of ``multiple`` with
    the mean colour: 1 x 3 x h' x w' on the image's device.  ``normalization`` is the one the
    image was normalised with.

    ``mode`` "opencv" does what the references' ``testval`` does to the 8-bit image: the image
    rounded back to 8-bit BGR (``ImageNormalization.to_rgb``), cv2.resize INTER_LINEAR
    (fixed-point weights, the result rounded to whole grey levels), cv2.copyMakeBorder with the
    mean times 255, which OpenCV rounds to whole grey levels (ImageNet's: RGB 124, 116, 104),
    then normalised again; on the CPU.
    "device" resizes the float image bilinearly (align_corners=False) on its device and pads
    with the exact mean (0); the two differ by up to about one grey level.
    """
    height, width = size
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if mode == "device":
        return _pad(resize_bilinear(image, size, False), height + pad_h, width + pad_w, 0.0)
    if mode != "opencv":
        raise ValueError(f"mode must be one of {list(FIRST_RESIZE_MODES)}, got {mode!r}")
    bgr = np.ascontiguousarray(normalization.to_rgb(image[0])[:, :, ::-1])
    bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    bgr = cv2.copyMakeBorder(bgr, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                             value=normalization.mean_bgr_255)
    return torch.from_numpy(normalization.normalize(bgr))[None].to(image.device)


@torch.inference_mode()
def ade20k_inference(model, image: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """ADE20K-protocol (HRNet-OCR) multi-scale scores of one image 1 x 3 x H x W: 1 x K x H x W.

    1. The image is resized so that its short side is ``base_size`` (``short_side_size``) and
       padded at the bottom/right to a multiple of 8 with the mean colour
       (``resize_and_pad`` in the mode ``settings.first_resize``).
    2. For each scale s that image is resized so that its long side is int(base_size * s + 0.5)
       and predicted with ``padded_sliding_window`` (whole when it fits in the window); its
       scores are resized to the padded size of step 1 and added.
    3. With ``settings.crop_padding`` the padding of step 1 is cut off the sum, as HRNet-OCR's
       ``testval`` does with the ``border_padding`` of its PASCAL-Context and COCO-Stuff items;
       without it the sum is resized padding included, as there for ADE20K, whose items carry
       none.  Then the sum is resized to H x W.
    """
    _check_single(image, "ade20k_inference")
    height, width = image.shape[-2:]
    size = short_side_size(height, width, settings.base_size)
    padded = resize_and_pad(image, size, _ADE20K_MULTIPLE, settings.first_resize,
                            normalization=settings.normalization)
    total = _padded_scales(model, padded, settings)
    if settings.crop_padding:
        total = total[:, :, :size[0], :size[1]]
    return resize_bilinear(total, (height, width), settings.align_corners)


def _padded_scales(model, image: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """Step 2 of the ade20k and lip protocols: the sum over ``settings.scales`` of the
    ``padded_sliding_window`` scores of ``image`` with its long side at int(base_size * s +
    0.5), each resized to the size of ``image``: 1 x K x h x w."""
    total = None
    for scale in settings.scales:
        scaled = rescale(image, int(settings.base_size * scale + 0.5))
        scores = padded_sliding_window(model, scaled, settings)
        scores = resize_bilinear(scores, tuple(image.shape[-2:]), settings.align_corners)
        total = scores if total is None else total.add_(scores)
    return total


@torch.inference_mode()
def lip_inference(model, image: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """LIP-protocol (HRNetV2 / HRNet-OCR) multi-scale scores of one image 1 x 3 x H x W:
    1 x K x H x W.

    The image is resized to ``settings.window_hw`` whatever its aspect ratio, as the reference's
    ``testval`` does (``resize_and_pad`` in the mode ``settings.first_resize``, no padding);
    each scale then as step 2 of
    ``ade20k_inference`` (long side to int(base_size * s + 0.5), padded windows), added at the
    window size; the sum is resized to H x W.  Flip testing swaps ``settings.flip_pairs``.
    """
    _check_single(image, "lip_inference")
    height, width = image.shape[-2:]
    resized = resize_and_pad(image, tuple(settings.window_hw), mode=settings.first_resize,
                             normalization=settings.normalization)
    return resize_bilinear(_padded_scales(model, resized, settings), (height, width),
                   settings.align_corners)


# Evaluation protocols by name (TEST.PROTOCOL, datasets' ``eval_protocol``); the config's
# PROTOCOL_NAMES (lib/config/choices.py) lists the same names.
PROTOCOLS = {"cityscapes": cityscapes_inference, "ade20k": ade20k_inference,
             "lip": lip_inference}
# The protocols whose windows slide at 2/3 of the window (TEST.STRIDE_RATIO has no effect).
_TWO_THIRDS_STRIDE = ("ade20k", "lip")


def predict(model, image: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """Scores of one image 1 x 3 x H x W under ``settings.protocol``: 1 x K x H x W fp32."""
    return PROTOCOLS[settings.protocol](model, image, settings)
