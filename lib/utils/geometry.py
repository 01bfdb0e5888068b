"""Image-size rules and the bilinear resize shared by the transforms, the losses and the
inference."""
import torch
import torch.nn.functional as F

__all__ = ["scaled_size", "short_side_size", "resize_bilinear"]


def resize_bilinear(x: torch.Tensor, size, align_corners: bool) -> torch.Tensor:
    """``x`` (N x C x h x w) resized bilinearly to ``size`` (H, W) with ``align_corners``; ``x``
    itself when it has that size already."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


def scaled_size(h, w, long_size):
    """(new_h, new_w) with the long side ``long_size``, the short one ``int(short * long / long_side
    + 0.5)`` (the reference rule); a square image takes ``long_size`` on both sides."""
    if h > w:
        return long_size, int(w * long_size / h + 0.5)
    return int(h * long_size / w + 0.5), long_size


def short_side_size(h, w, short_size):
    """(new_h, new_w) with the short side ``short_size``, the long one ``int(long * short_size /
    short + 0.5)`` (the HRNet-OCR rule); a square image takes ``short_size`` on both sides."""
    if h < w:
        return short_size, int(w * short_size / h + 0.5)
    return int(h * short_size / w + 0.5), short_size
