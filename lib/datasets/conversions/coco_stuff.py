"""COCO-Stuff label PNGs in the layout of :mod:`lib.datasets.cocostuff`, from either release.

Stored values, as the HRNet-OCR lists' labels hold them: 0 unlabelled, 1..182 the COCO ids
(91 thing ids, of which 11 are never used, and 91 stuff ids).

- COCO-Stuff-10k v1.1 (``cocostuff-10k-v1.1.zip``, unpacked): ``images/<name>.jpg``,
  ``annotations/<name>.mat`` (a MATLAB file whose variable ``S`` is the h x w label map in the
  stored values), ``imageLists/train.txt`` (9,000 names) and ``imageLists/test.txt`` (1,000, the
  split evaluated on, our ``val``).  ``S`` is written as it is.
- COCO-Stuff-164k (the COCO 2017 images and ``stuffthingmaps_trainval2017.zip``, unpacked as the
  COCO-Stuff README's setup does): ``images/{train2017,val2017}/<id>.jpg`` and
  ``annotations/{train2017,val2017}/<id>.png``, indexed PNGs whose value is the COCO id - 1
  (0..181) and 255 for unlabelled; written as value + 1, and 255 as 0.

Written: ``<out>/{train,val}/image/<name>.jpg`` and ``<out>/{train,val}/label/<name>.png``.
"""
import glob
import os
from functools import partial

import numpy as np

from ..files import DatasetError, read_label
from .matlab import label_values, load_mat
from .output import Sample, check_sources, read_ids, write_samples

__all__ = ["RELEASES", "MAX_ID", "read_stuff_mat", "stuffthingmap_to_stored",
           "convert_coco_stuff"]

MAX_ID = 182  # the largest COCO id
# The stuffthingmaps' value of unlabelled pixels.
_MAPS_UNLABELLED = 255
# Each release's list or folder of each of our splits.
_LISTS_10K = {"train": "train.txt", "val": "test.txt"}
_FOLDERS_164K = {"train": "train2017", "val": "val2017"}
RELEASES = ("10k", "164k")


def read_stuff_mat(path):
    """uint8 (h, w) stored values: the ``S`` of a COCO-Stuff-10k annotation file."""
    variables = load_mat(path)
    if "S" not in variables:
        names = sorted(k for k in variables if not k.startswith("__"))
        raise DatasetError(f"{path}: no variable 'S' (the label map); it holds {names}")
    return label_values(variables["S"], path, "S", MAX_ID)


def stuffthingmap_to_stored(values, path):
    """uint8 stored values of a stuffthingmaps PNG's values (COCO id - 1, 255 unlabelled);
    raises DatasetError naming ``path`` for values of no id (182..254)."""
    bad = np.unique(values[(values >= MAX_ID) & (values != _MAPS_UNLABELLED)])
    if bad.size:
        raise DatasetError(f"{path}: values {bad[:10].tolist()} are no COCO-Stuff class (a "
                           f"stuffthingmaps PNG holds 0..{MAX_ID - 1} and "
                           f"{_MAPS_UNLABELLED})")
    stored = values.astype(np.uint8) + 1
    stored[values == _MAPS_UNLABELLED] = 0
    return stored


def _map_label(path):
    return stuffthingmap_to_stored(read_label(path), path)


def _samples_10k(src, out_dir):
    samples = []
    for split, list_name in _LISTS_10K.items():
        list_path = os.path.join(src, "imageLists", list_name)
        for name in read_ids(list_path, f"COCO-Stuff-10k list of {split}"):
            mat = os.path.join(src, "annotations", f"{name}.mat")
            samples.append(Sample(
                split, image_source=os.path.join(src, "images", f"{name}.jpg"),
                image=os.path.join(out_dir, split, "image", f"{name}.jpg"),
                label=os.path.join(out_dir, split, "label", f"{name}.png"),
                make_label=partial(read_stuff_mat, mat), reads=(mat,)))
    return samples


def _samples_164k(src, out_dir):
    samples = []
    for split, folder in _FOLDERS_164K.items():
        label_dir = os.path.join(src, "annotations", folder)
        labels = sorted(glob.glob(os.path.join(label_dir, "*.png")))
        if not labels:
            raise DatasetError(f"no stuffthingmaps PNG in {label_dir} (unpack "
                               f"stuffthingmaps_trainval2017.zip into {src}/annotations)")
        for label in labels:
            stem = os.path.splitext(os.path.basename(label))[0]
            samples.append(Sample(
                split, image_source=os.path.join(src, "images", folder, f"{stem}.jpg"),
                image=os.path.join(out_dir, split, "image", f"{stem}.jpg"),
                label=os.path.join(out_dir, split, "label", f"{stem}.png"),
                make_label=partial(_map_label, label)))
    return samples


def convert_coco_stuff(release, src, out_dir, mode="link", progress=False):
    """Write the train and val images (placed with ``mode``) and label PNGs of the COCO-Stuff
    ``release`` ("10k" or "164k") unpacked in ``src`` under ``out_dir``; returns {split: number
    of images}.  Missing images or annotation files are named before anything is written."""
    if release not in RELEASES:
        raise DatasetError(f"unknown COCO-Stuff release {release!r}; valid: {list(RELEASES)}")
    if not os.path.isdir(src):
        raise DatasetError(f"COCO-Stuff release folder not found: {src}")
    samples = (_samples_10k if release == "10k" else _samples_164k)(src, out_dir)
    check_sources(samples)
    return write_samples(samples, mode, progress, desc=f"COCO-Stuff-{release}")
