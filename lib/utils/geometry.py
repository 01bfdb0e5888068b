"""Image-size rules shared by the training transform and the inference."""

__all__ = ["scaled_size", "short_side_size"]


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
