"""Pictures of what the network predicts: class colours, overlays, confidence and offset fields.

Every picture is a uint8 NumPy array H x W x 3 in RGB order (what TensorBoard's ``add_image(...,
dataformats="HWC")`` and Pillow take); ``save_png`` converts to OpenCV's BGR when it writes.
Offset fields follow ``lib.models.seed``: 2 x h x w, channel 0 = x (right), 1 = y (down),
normalised align_corners=True units unless a function says pixels.
"""
import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import flow_to_image

from .atomic import write_bytes

__all__ = ["colorize", "overlay", "confidence_image", "offset_image", "offsets_to_pixels",
           "save_png", "prediction_panels"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def colorize(label_map, palette) -> np.ndarray:
    """H x W class ids (array or tensor) -> H x W x 3 RGB; palette K x 3 uint8 (row k = class k).

    Ids outside 0..K-1 (the ignore label 255 among them) are black.
    """
    labels = _numpy(label_map).astype(np.int64)
    palette = np.asarray(palette, dtype=np.uint8)
    if labels.ndim != 2 or palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"colorize takes an H x W label map and a K x 3 palette, got "
                         f"{labels.shape} and {palette.shape}")
    lut = np.concatenate((palette, np.zeros((1, 3), np.uint8)))
    valid = (labels >= 0) & (labels < len(palette))
    return lut[np.where(valid, labels, len(palette))]


def overlay(image_rgb: np.ndarray, color: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(1 - alpha) * image + alpha * color, both H x W x 3 uint8; rounded to uint8."""
    if image_rgb.shape != color.shape:
        raise ValueError(f"overlay needs equal shapes, got {image_rgb.shape} and {color.shape}")
    blend = (1.0 - alpha) * image_rgb.astype(np.float32) + alpha * color.astype(np.float32)
    return np.clip(np.rint(blend), 0, 255).astype(np.uint8)


def _viridis(levels: np.ndarray) -> np.ndarray:
    """2-D uint8 levels -> RGB colours of the viridis map (luminance rises with the level)."""
    return cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS)[..., ::-1].copy()


def _colorbar(height: int) -> np.ndarray:
    """White panel ``height`` tall: viridis strip (1 at top, 0 at bottom), ticks 1, 0.5, 0."""
    font_scale = float(np.clip(height / 400.0, 0.3, 1.0))
    (text_w, text_h), _ = cv2.getTextSize("0.5", _FONT, font_scale, 1)
    pad, bar_w, tick = 3, max(height // 16, 6), 3
    panel = np.full((height, pad + bar_w + tick + pad + text_w + pad, 3), 255, np.uint8)
    levels = np.rint(np.linspace(255.0, 0.0, height)).astype(np.uint8)
    panel[:, pad:pad + bar_w] = _viridis(np.repeat(levels[:, None], bar_w, axis=1))
    text_x = pad + bar_w + tick + pad
    for value, text in ((1.0, "1"), (0.5, "0.5"), (0.0, "0")):
        row = int(round((1.0 - value) * (height - 1)))
        panel[row, pad + bar_w:pad + bar_w + tick] = 0
        baseline = int(np.clip(row + text_h // 2, text_h, height - 1))
        cv2.putText(panel, text, (text_x, baseline), _FONT, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def confidence_image(confidence, with_colorbar: bool = True) -> np.ndarray:
    """H x W values in [0, 1] (array or tensor) -> viridis RGB, with a scale bar on the right.

    Values are clipped to [0, 1] (+inf reads as 1, -inf as 0) and NaN reads as 0.  The viridis
    map is perceptually uniform and its luminance rises with the value.  With the bar the image
    is wider than H x W.
    """
    conf = np.nan_to_num(_numpy(confidence).astype(np.float32), nan=0.0)
    if conf.ndim != 2:
        raise ValueError(f"confidence_image takes an H x W map, got shape {conf.shape}")
    image = _viridis(np.rint(np.clip(conf, 0.0, 1.0) * 255.0).astype(np.uint8))
    if not with_colorbar:
        return image
    return np.concatenate((image, _colorbar(image.shape[0])), axis=1)


def offset_image(offsets: torch.Tensor, max_magnitude: float | None = None) -> np.ndarray:
    """Optical-flow colours of a 2 x H x W offset field (x, y): hue = direction, saturation = size.

    The field may be in any unit (pixels from ``offsets_to_pixels`` keep directions true on
    non-square maps).  ``max_magnitude`` (same unit) is the length drawn fully saturated, so that
    images drawn with the same value are comparable; longer vectors are clipped to it.  None scales
    each image by its own longest vector (of the finite ones).  A zero field is white; pixels
    whose vector is not finite (a diverged network) are black, a colour the wheel never takes.
    """
    flow = offsets.detach().float()
    if flow.dim() != 3 or flow.shape[0] != 2:
        raise ValueError(f"offset_image takes a 2 x H x W field, got {tuple(flow.shape)}")
    width = flow.shape[-1]
    finite = torch.isfinite(flow).all(dim=0)
    flow = torch.where(finite, flow, 0.0)
    if max_magnitude is not None:
        if max_magnitude <= 0:
            raise ValueError(f"max_magnitude must be positive, got {max_magnitude}")
        norm = flow.norm(dim=0, keepdim=True)
        flow = flow * (max_magnitude / norm.clamp_min(max_magnitude))
        # flow_to_image divides by the field's longest vector: one extra column holding a vector
        # of length max_magnitude fixes that divisor; the column is cut off afterwards.
        reference = flow.new_tensor([max_magnitude, 0.0]).view(2, 1, 1).expand(2, flow.shape[1], 1)
        flow = torch.cat((flow, reference), dim=2)
    image = flow_to_image(flow)[:, :, :width].permute(1, 2, 0).cpu().numpy()
    image[~finite.cpu().numpy()] = 0
    return image


def offsets_to_pixels(offsets: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Normalised align_corners=True offsets (... x 2 x H' x W', x then y) -> pixels of h x w.

    dx_px = dx * (w - 1) / 2, dy_px = dy * (h - 1) / 2: the inverse of
    ``lib.models.seed.pixels_to_offsets``.  The units span the whole map, so h, w may be the
    logit map's size or the image's.
    """
    scale = offsets.new_tensor([(w - 1) / 2.0, (h - 1) / 2.0]).view(2, 1, 1)
    return offsets * scale


def save_png(path, image: np.ndarray) -> None:
    """Write H x W x 3 RGB (or H x W single-channel) uint8 as PNG (whole or not at all), making
    the parent folders.  Encoded in memory first: OpenCV's own writer gives no reason."""
    path = os.fspath(path)
    data = image[..., ::-1] if image.ndim == 3 else image
    ok, png = cv2.imencode(".png", np.ascontiguousarray(data))
    if not ok:
        raise ValueError(f"cannot encode {path} as PNG (shape {image.shape}, dtype {image.dtype})")
    write_bytes(path, png.tobytes())


def prediction_panels(image_rgb: np.ndarray, output, palette, *, index: int = 0,
                      align_corners: bool = False, alpha: float = 0.5,
                      offset_max_px: float | None = None) -> dict[str, np.ndarray]:
    """Pictures of image ``index`` of a network output, each H x W x 3 uint8 RGB at the image size.

    image_rgb: the input as H x W x 3 uint8 RGB (``ImageNormalization.to_rgb``).  output: ``model(x)`` as
    returned, a ``lib.models.SegOutput`` or anything with its fields ``logits``, ``seed_logits``,
    ``fused_logits``, ``offsets``, ``confidence`` and ``final`` (any resolution; every map is
    resized bilinearly to H x W with ``align_corners``).
    Keys: "logits" (argmax of S_i), "seed" (S_s), "fused" (S_f), "confidence" (F with its
    scale bar, so wider than W), "offsets" (in image pixels, ``offset_image`` with
    ``offset_max_px``), "overlay" (colours of ``output.final`` over the image).  The baseline
    network has only "logits" and "overlay".
    """
    if not (isinstance(image_rgb, np.ndarray) and image_rgb.dtype == np.uint8
            and image_rgb.ndim == 3 and image_rgb.shape[2] == 3):
        raise TypeError(f"prediction_panels takes the image as an H x W x 3 uint8 RGB array "
                        f"(``ImageNormalization.to_rgb`` makes one from a normalised tensor), "
                        f"got {type(image_rgb).__name__} of shape {tuple(image_rgb.shape)}")
    height, width = image_rgb.shape[:2]

    def at_image_size(x):
        x = x[index:index + 1].detach().float()
        return F.interpolate(x, size=(height, width), mode="bilinear",
                             align_corners=align_corners)[0]

    def classes(x):
        return colorize(at_image_size(x).argmax(dim=0), palette)

    panels = {"logits": classes(output.logits)}
    if output.seed_logits is not None:
        panels["seed"] = classes(output.seed_logits)
    if output.fused_logits is not None:
        panels["fused"] = classes(output.fused_logits)
    if output.confidence is not None:
        panels["confidence"] = confidence_image(at_image_size(output.confidence)[0])
    if output.offsets is not None:
        pixels = offsets_to_pixels(at_image_size(output.offsets), height, width)
        panels["offsets"] = offset_image(pixels, offset_max_px)
    final = panels["fused"] if output.fused_logits is not None else panels["logits"]
    panels["overlay"] = overlay(image_rgb, final, alpha)
    return panels
