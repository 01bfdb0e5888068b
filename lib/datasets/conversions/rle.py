"""COCO run-length encoded binary masks, decoded with NumPy.

The PASCAL in Detail annotations (PASCAL-Context's ``trainval_merged.json``) store each mask in
the COCO format that pycocotools reads; decoding it here avoids a compiled dependency.

An RLE object is ``{"size": [h, w], "counts": counts}``.  The mask's h x w pixels, read in
column-major order (down the first column, then the next), are runs of 0s and 1s that alternate,
starting with a run of 0s (possibly empty); ``counts`` are the run lengths and sum to h * w.
``counts`` is a list of ints (uncompressed RLE) or a string (compressed RLE, pycocotools'
``rleToString``): each count from the third on (index i > 2) is replaced by its difference to the
count two places before; each number is cut into 5-bit groups, the lowest first, and each group
g is written as the character ``chr(48 + g)``, plus 32 when more groups of the number follow; the
bit 16 of a number's last group is its sign (two's complement: the number is its groups' value
minus 2 ** (5 * number of groups)).
"""
import numpy as np

from ..files import DatasetError

__all__ = ["RLEError", "decode_counts", "decode_mask"]

_OFFSET = 48  # the character of group value 0
_MORE = 0x20  # "another group of the number follows"
_GROUP = 0x1F  # the 5 bits of a group's value
_SIGN = 0x10  # the sign bit of a number's last group
# More groups than this would not fit 64 bits; real counts (pixels of one image) need 7 at most.
_MAX_GROUPS = 12


class RLEError(DatasetError):
    """A mask that is not valid COCO RLE; the message says what is wrong (callers add the file
    and the annotation)."""


def decode_counts(text: str) -> np.ndarray:
    """int64 (m,) run lengths of a compressed RLE string (see the module's docstring)."""
    codes = np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8).astype(np.int64)
    codes -= _OFFSET
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    bad = np.flatnonzero((codes < 0) | (codes > 63))
    if bad.size:
        raise RLEError(f"character {text[bad[0]]!r} at {bad[0]} is not an RLE character "
                       f"(ASCII 48 to 111)")
    last = (codes & _MORE) == 0  # the last group of each number
    if not last[-1]:
        raise RLEError("the string ends inside a number (its last character says more follow)")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_GROUPS:
        raise RLEError(f"a number of {lengths.max()} characters is too long for a pixel count")
    number = np.repeat(np.arange(ends.size), lengths)
    position = np.arange(codes.size) - starts[number]
    values = np.add.reduceat((codes & _GROUP) << (5 * position), starts)
    negative = (codes[ends] & _SIGN) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    # Undo the differences: counts[i] = values[i] + counts[i - 2] for i > 2, so each of the two
    # chains (odd indices, and even ones from 2 on) is a cumulative sum.
    counts = values.copy()
    counts[1::2] = np.cumsum(values[1::2])
    counts[2::2] = np.cumsum(values[2::2])
    return counts


def decode_mask(rle) -> np.ndarray:
    """bool (h, w) mask of an RLE object ``{"size": [h, w], "counts": str or list of ints}``.

    Raises RLEError for a missing or malformed field, a negative run length, and counts that do
    not cover the h x w pixels exactly.
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        kind = "a polygon list" if isinstance(rle, list) else type(rle).__name__
        raise RLEError(f"expected an RLE object {{'size': [h, w], 'counts': ...}}, got {kind}")
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(n, int) and n >= 0 for n in size)):
        raise RLEError(f"'size' must be [height, width], got {size!r}")
    height, width = size
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = decode_counts(counts)
    elif isinstance(counts, list) and all(isinstance(n, int) for n in counts):
        counts = np.asarray(counts, dtype=np.int64)
    else:
        raise RLEError(f"'counts' must be a string or a list of ints, got "
                       f"{type(counts).__name__}")
    if counts.size and counts.min() < 0:
        raise RLEError(f"run length {int(counts.min())} is negative")
    if int(counts.sum()) != height * width:
        raise RLEError(f"the run lengths cover {int(counts.sum())} pixels, but 'size' "
                       f"{height} x {width} has {height * width}")
    runs = np.arange(counts.size) % 2  # 0, 1, 0, ...: a run of 0s first
    return np.repeat(runs.astype(bool), counts).reshape(width, height).T
