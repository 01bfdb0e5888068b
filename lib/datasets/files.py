"""Reading a dataset's files: list files, PNG and JPEG checks, image and label decoding.

Every problem raises :class:`DatasetError` naming the file and, for files from a list, the list
file and line (callers pass ``where = "<list>:<line>: "``).  Nothing is skipped silently.
"""
import os
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from ..utils.errors import ProjectError

__all__ = ["DatasetError", "ListEntry", "read_list", "check_listed_files", "read_image",
           "read_label", "image_size"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every complete PNG ends with an empty IEND chunk: length 0, type, CRC.  OpenCV can decode a cut
# file partially, so its end is checked before decoding.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Byte 25 of a PNG (in its IHDR chunk) is the colour type; 3 = indexed colour (a palette).
_PNG_COLOUR_TYPE_AT = 25
_PNG_INDEXED = 3
# A JPEG starts with the start-of-image marker and ends with the end-of-image marker FF D9, which
# cannot occur inside compressed data (0xFF there is followed by 0x00 or a restart marker).  OpenCV
# decodes a cut JPEG with grey rows instead of failing, so the marker is looked for in the last
# bytes of the file (some writers append a short trailer after it).
_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_JPEG_TAIL = 1024
# The EXIF orientation tag, and its values that turn the image by 90 degrees (5 to 8).
_EXIF_ORIENTATION = 0x0112
_EXIF_TURNED = (5, 6, 7, 8)
# Missing files listed in one error message; the rest are counted.
_MAX_LISTED = 10


class DatasetError(ProjectError, ValueError):
    """A dataset file, list or argument that cannot be used; the message names the culprit."""


@dataclass(frozen=True)
class ListEntry:
    """One line of a list file: paths relative to the dataset folder, 1-based line number."""

    image: str
    label: str | None
    line: int


def read_list(list_file, max_fields=2):
    """The entries of ``list_file``; blank lines are ignored, every other line is a sample.

    A line holds ``image label`` (tab or spaces) or only ``image``; up to ``max_fields`` fields
    are accepted and those after the label are not read (the LIP lists of the reference add the
    mirrored annotation and more).  Raises DatasetError for a missing or empty file, a line with
    more than ``max_fields`` fields, and a list that mixes ``image label`` lines with ``image``
    lines (naming the first odd line).
    """
    if not os.path.isfile(list_file):
        raise DatasetError(f"list file not found: {list_file}")
    entries = []
    with open(list_file) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) > max_fields:
                expected = "'image label' or 'image'" + (
                    f" (at most {max_fields} fields)" if max_fields > 2 else "")
                raise DatasetError(f"{list_file}:{number}: expected {expected}, "
                                   f"got {len(fields)} fields: {line.strip()!r}")
            entries.append(ListEntry(fields[0], fields[1] if len(fields) >= 2 else None, number))
    if not entries:
        raise DatasetError(f"list file is empty: {list_file}")
    first = entries[0]
    for entry in entries:
        if (entry.label is None) != (first.label is None):
            raise DatasetError(
                f"{list_file}:{entry.line}: {_columns(entry)} but line {first.line} has "
                f"{_columns(first)}; a list holds 'image label' on every line or only 'image'")
    return entries


def _columns(entry):
    return "1 column (image)" if entry.label is None else "2 columns (image label)"


def check_listed_files(entries, data_dir, list_file, label_dir=None):
    """Raise one DatasetError listing every file of ``entries`` missing: images under
    ``data_dir``, labels under ``label_dir`` (default ``data_dir``)."""
    label_dir = data_dir if label_dir is None else label_dir
    missing = []
    for entry in entries:
        for what, folder, rel in (("image", data_dir, entry.image),
                                  ("label", label_dir, entry.label)):
            if rel is not None and not os.path.isfile(os.path.join(folder, rel)):
                missing.append(f"{list_file}:{entry.line}: {what} not found: "
                               f"{os.path.join(folder, rel)}")
    if missing:
        raise DatasetError(f"{len(missing)} file(s) of {list_file} not found:\n"
                           f"{listed_lines(missing)}")


def listed_lines(items, most=_MAX_LISTED):
    """The first ``most`` of ``items``, one a line, then "... and N more" for the rest: what an
    error that names many files shows."""
    more = len(items) - most
    return "\n".join(items[:most]) + (f"\n... and {more} more" if more > 0 else "")


def _check_file(path, what, where):
    if not os.path.isfile(path):
        raise DatasetError(f"{where}{what} not found: {path}")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".png":
        _check_png(path, what, where)
    elif extension in (".jpg", ".jpeg"):
        _check_jpeg(path, what, where)


def _head_and_tail(path, head_size, tail_size):
    with open(path, "rb") as f:
        head = f.read(head_size)
        f.seek(max(os.fstat(f.fileno()).st_size - tail_size, 0))
        return head, f.read()


def _check_png(path, what, where):
    head, tail = _head_and_tail(path, len(_PNG_SIGNATURE), len(_PNG_END))
    if head != _PNG_SIGNATURE:
        raise DatasetError(f"{where}{what} is not a PNG file (bad signature): {path}")
    if tail != _PNG_END:
        raise DatasetError(f"{where}{what} is truncated or damaged (no IEND chunk at the end of "
                           f"the PNG): {path}")


def _check_jpeg(path, what, where):
    head, tail = _head_and_tail(path, len(_JPEG_START), _JPEG_TAIL)
    if head != _JPEG_START:
        raise DatasetError(f"{where}{what} is not a JPEG file (bad start-of-image marker): {path}")
    if _JPEG_END not in tail:
        raise DatasetError(f"{where}{what} is truncated or damaged (no end-of-image marker at the "
                           f"end of the JPEG): {path}")


def read_image(path, where=""):
    """BGR uint8 (H, W, 3) image, read with ``cv2.imread(path, cv2.IMREAD_COLOR)``.

    ``where`` prefixes error messages (``"<list>:<line>: "``).
    """
    _check_file(path, "image", where)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{where}cannot decode image: {path}")
    return image


def image_size(path):
    """``(height, width)`` of the image file at ``path`` as ``read_image`` decodes it, read from
    the file's header with Pillow (the pixels are not decoded), or None when Pillow cannot read
    the header.  An EXIF orientation that turns the image by 90 degrees swaps the two, as
    OpenCV's ``imread`` turns the image."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            turned = image.getexif().get(_EXIF_ORIENTATION) in _EXIF_TURNED
    except (OSError, ValueError):  # not an image Pillow knows, or a damaged header
        return None
    return (width, height) if turned else (height, width)


def _is_indexed_png(path):
    with open(path, "rb") as f:
        head = f.read(_PNG_COLOUR_TYPE_AT + 1)
    return (head.startswith(_PNG_SIGNATURE) and len(head) > _PNG_COLOUR_TYPE_AT
            and head[_PNG_COLOUR_TYPE_AT] == _PNG_INDEXED)


def _palette_indices(path, where):
    """The palette indices of an indexed-colour PNG (OpenCV would decode it to colours)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image, dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"{where}cannot decode label: {path} ({e})") from None


def read_label(path, where=""):
    """uint8 (H, W) raw label values as stored: a single-channel 8-bit label-id PNG (the
    dataset's class table maps them).

    An indexed-colour PNG (PASCAL VOC's SegmentationClass files) holds label ids as its
    palette indices; those are read, not the colours."""
    _check_file(path, "label", where)
    if _is_indexed_png(path):
        return _palette_indices(path, where)
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DatasetError(f"{where}cannot decode label: {path}")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DatasetError(f"{where}label must be a single-channel 8-bit image of label ids, got "
                           f"shape {label.shape} and dtype {label.dtype}: {path}")
    return label
