"""Image-size rules shared by the training transform and the inference."""

__all__ = ["scaled_size"]


def scaled_size(h, w, long_size):
    """(new_h, new_w) with the long side ``long_size``, the short one ``int(short * long / long_side
    + 0.5)`` (the reference rule); a square image takes ``long_size`` on both sides."""
    if h > w:
        return long_size, int(w * long_size / h + 0.5)
    return int(h * long_size / w + 0.5), long_size
