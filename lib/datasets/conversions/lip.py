"""LIP (Look Into Person) single-person parsing: the release's folders found and placed in the
layout of :mod:`lib.datasets.lip`.

The release: ``TrainVal_images.zip`` (``train_images/<id>.jpg``, ``val_images/<id>.jpg``, and the
id lists ``train_id.txt`` and ``val_id.txt``: 30,462 and 10,000 ids) and
``TrainVal_parsing_annotations.zip`` (``train_segmentations/<id>.png``,
``val_segmentations/<id>.png``: 8-bit values 0..19, read as they are).  Depending on the copy of
the archives, these folders end up one or two levels below where they were unpacked (a folder of
the archive's name, sometimes inside another); they are looked for by name up to
:data:`SEARCH_DEPTH` levels down (folders named ``__MACOSX`` or starting with a dot are not
searched).

Written, for the ids of ``<split>_id.txt``: ``<out>/TrainVal_images/<split>_images/<id>.jpg`` and
``<out>/TrainVal_parsing_annotations/<split>_segmentations/<id>.png``.  Nothing is written for a
release already unpacked in that layout under ``<out>``.
"""
import os

from ..files import DatasetError
from .output import Sample, check_sources, read_ids, write_samples

__all__ = ["SPLITS", "SEARCH_DEPTH", "find_release", "convert_lip"]

SPLITS = ("train", "val")
SEARCH_DEPTH = 4
# What is looked for: name -> (is a folder, where it goes under <out>, or None for the lists).
_PARTS = {f"{split}_{kind}": (folder, dest) for split in SPLITS for kind, folder, dest in (
    ("images", True, "TrainVal_images"), ("segmentations", True, "TrainVal_parsing_annotations"),
    ("id.txt", False, None))}


def _skipped(name):
    return name == "__MACOSX" or name.startswith(".")


def find_release(sources, out_dir):
    """{name: path} of the release's folders and id lists (``train_images``, ``val_images``,
    ``train_segmentations``, ``val_segmentations``, ``train_id.txt``, ``val_id.txt``) found under
    the folders ``sources``.

    A part found in several places is taken from the one that is not its place in our layout
    under ``out_dir`` (a previous conversion's links); raises DatasetError naming the parts not
    found, and a part found twice elsewhere.
    """
    found = {name: [] for name in _PARTS}
    for source in sources:
        if not os.path.isdir(source):
            raise DatasetError(f"LIP release folder not found: {source}")
        base_depth = os.path.abspath(source).rstrip(os.sep).count(os.sep)
        for folder, subfolders, files in os.walk(source, followlinks=True):
            depth = os.path.abspath(folder).count(os.sep) - base_depth
            folders = sorted(d for d in subfolders if not _skipped(d))
            for name in folders + files:
                if name in found and _PARTS[name][0] == (name in folders):
                    found[name].append(os.path.join(folder, name))
            # The parts' own folders hold only images: not searched.
            subfolders[:] = [] if depth >= SEARCH_DEPTH else [
                d for d in folders if d not in found]
    parts, problems = {}, []
    for name, paths in found.items():
        ours = _place(name, out_dir)
        others = [p for p in dict.fromkeys(paths) if ours is None or not _same(p, ours)]
        if len(others) > 1:
            problems.append(f"{name} found {len(others)} times: {', '.join(others)}")
        elif others or paths:
            parts[name] = (others or paths)[0]
        else:
            problems.append(f"{name} not found")
    if problems:
        raise DatasetError(f"LIP release under {', '.join(sources)} (searched {SEARCH_DEPTH} "
                           f"levels down): " + "; ".join(problems))
    return parts


def _place(name, out_dir):
    dest = _PARTS[name][1]
    return None if dest is None else os.path.join(out_dir, dest, name)


def _same(a, b):
    return os.path.exists(b) and os.path.samefile(a, b)


def convert_lip(sources, out_dir, mode="link", progress=False):
    """Place the images and annotations of the ids of ``train_id.txt`` and ``val_id.txt`` found
    under ``sources`` (:func:`find_release`) in our layout under ``out_dir``, with ``mode``;
    returns {split: number of ids}.  Images and annotations of listed ids that are missing are
    named in one error before anything is written."""
    parts = find_release(sources, out_dir)
    samples = []
    for split in SPLITS:
        images, labels = parts[f"{split}_images"], parts[f"{split}_segmentations"]
        for image_id in read_ids(parts[f"{split}_id.txt"], f"LIP list of {split}"):
            samples.append(Sample(
                split, image_source=os.path.join(images, f"{image_id}.jpg"),
                image=os.path.join(_place(f"{split}_images", out_dir), f"{image_id}.jpg"),
                label=os.path.join(_place(f"{split}_segmentations", out_dir), f"{image_id}.png"),
                label_source=os.path.join(labels, f"{image_id}.png")))
    check_sources(samples)
    return write_samples(samples, mode, progress, desc="LIP")
