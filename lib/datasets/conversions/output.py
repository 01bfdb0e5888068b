"""Writing a converted dataset: each sample's image linked or copied into our layout, its label
map written as an 8-bit PNG (or a release PNG placed as it is), every file whole or not at all.

A conversion first makes its list of :class:`Sample` (reading no pixels), checks that every
source file exists (:func:`check_sources`, one error naming them all), then writes
(:func:`write_samples`).  Running it again replaces the files it wrote.
"""
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from tqdm import tqdm

from ...utils.atomic import atomic_path
from ...utils.visualize import save_png
from ..files import DatasetError, listed_lines

__all__ = ["IMAGE_MODES", "Sample", "read_ids", "check_sources", "place_file", "write_samples"]

# How images (and release label files kept as they are) reach our layout: a symbolic link to the
# release's file (no space used; the release must stay where it is) or a copy.
IMAGE_MODES = ("link", "copy")


@dataclass(frozen=True)
class Sample:
    """One sample to write, of the split ``split``.  Paths are absolute or relative to the
    working folder.

    image_source, image: the release's image and where it goes (both None: the image stays
    where it is, as VOC's JPEGImages).  label: where the label goes; its content is the release
    file ``label_source`` placed as it is, or ``make_label()``, a uint8 (h, w) array of stored
    values, written as a single-channel PNG.  reads: the release files ``make_label`` reads
    (checked with the others before anything is written).
    """

    split: str
    image_source: str | None
    image: str | None
    label: str
    label_source: str | None = None
    make_label: Callable | None = None
    reads: tuple = ()


def read_ids(path, what):
    """The non-blank lines of the id list ``path`` (``what`` names it in errors), stripped,
    in file order; raises DatasetError for a missing or empty file."""
    if not os.path.isfile(path):
        raise DatasetError(f"{what} not found: {path}")
    with open(path) as f:
        ids = [line.strip() for line in f if line.strip()]
    if not ids:
        raise DatasetError(f"{what} is empty: {path}")
    return ids


def check_sources(samples):
    """Raise one DatasetError naming every release file of ``samples`` that is missing: images,
    label files to place, and the files their labels are made from."""
    missing = [path for sample in samples
               for path in (sample.image_source, sample.label_source, *sample.reads)
               if path is not None and not os.path.isfile(path)]
    if missing:
        raise DatasetError(f"{len(missing)} file(s) of the release not found:\n"
                           f"{listed_lines(missing)}")


def place_file(source, destination, mode):
    """``destination`` made a symbolic link to ``source``'s absolute path (``mode`` "link") or a
    copy of it ("copy"), replacing what was there; folders are made.  Nothing is done when
    ``destination`` is ``source`` (or a link to it)."""
    if mode not in IMAGE_MODES:
        raise DatasetError(f"image mode must be one of {list(IMAGE_MODES)}, got {mode!r}")
    if os.path.exists(destination) and os.path.samefile(source, destination):
        return  # the release is already in our layout: replacing it would lose it
    with atomic_path(destination) as tmp:
        if mode == "link":
            os.symlink(os.path.abspath(source), tmp)
        else:
            shutil.copyfile(source, tmp)


def write_samples(samples, mode="link", progress=False, desc="converting"):
    """Write ``samples`` (images placed with ``mode``, labels made or placed); returns {split:
    number of samples}.  ``progress`` shows a tqdm bar named ``desc``."""
    counts = {}
    for sample in tqdm(samples, desc=desc, disable=not progress):
        if sample.image_source is not None:
            place_file(sample.image_source, sample.image, mode)
        if sample.label_source is not None:
            place_file(sample.label_source, sample.label, mode)
        else:
            save_png(sample.label, sample.make_label())
        counts[sample.split] = counts.get(sample.split, 0) + 1
    return counts
