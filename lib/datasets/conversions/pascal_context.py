"""PASCAL-Context label PNGs from the PASCAL in Detail annotations, in the layout of
:mod:`lib.datasets.pascal_ctx`.

The release: the VOC 2010 images (``VOCdevkit/VOC2010/JPEGImages/<id>.jpg``) and
``trainval_merged.json``, the annotation file the Detail API (github.com/zhanghang1989/detail-api)
reads.  Of the JSON this reads ``images`` (``image_id``, ``file_name``, ``height``, ``width``,
``phase``: "train" or "val") and ``annos_segmentation`` (``image_id``, ``category_id``,
``segmentation``: a COCO RLE mask, :mod:`.rle`).  An image's class map is the Detail API's
``getMask``: 0 everywhere, then each annotation of the image, in the order of the file, paints its
mask with its category (a later one over an earlier one).

The 59 classes are the categories :data:`CONTEXT_59_IDS`, ids among the 459 labels of
PASCAL-Context; sorted by id they follow the alphabetical order of ``CLASS_NAMES_59``, and the one
at position k (0-based) is stored as k + 1; 0 is the background.  Any other category stops the
conversion, as the reference asserts.  The labels serve both variants: with DATASET.NUM_CLASSES
59 the loader ignores 0, with 60 it is a class.

Written: ``<out>/{train,val}/image/<file_name>`` and ``<out>/{train,val}/label/<id>.png``.
"""
import json
import os
from collections import defaultdict
from functools import partial

import numpy as np

from ..files import DatasetError
from .output import Sample, check_sources, write_samples
from .rle import RLEError, decode_mask

__all__ = ["CONTEXT_59_IDS", "SPLITS", "read_detail", "context_label", "convert_pascal_context"]

# The category ids of the 59 classes in the Detail annotations, sorted (the HRNet and
# PyTorch-Encoding loaders' table without its 0).
CONTEXT_59_IDS = (
    2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104, 105, 113,
    115, 144, 158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260, 284, 295, 296, 308, 324, 326,
    347, 349, 354, 355, 360, 366, 368, 397, 415, 416, 420, 424, 427, 440, 445, 454, 458)
# The stored value of each category: 0 (background) and the 59 classes.
_STORED = {0: 0} | {category: k + 1 for k, category in enumerate(CONTEXT_59_IDS)}
# The Detail phases that PASCAL-Context has labels for (its test images have none).
SPLITS = ("train", "val")


def _check_fields(entry, fields, where):
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object, got {type(entry).__name__}")
    for key, kind in fields.items():
        if not isinstance(entry.get(key), kind):
            raise DatasetError(f"{where}: {key!r} missing or not {kind.__name__} "
                               f"(got {entry.get(key)!r})")


def read_detail(json_path):
    """``(images, annotations)`` of a Detail annotation file: the image objects in file order,
    and {image_id: [its annos_segmentation objects in file order]}.

    Raises DatasetError naming the file and the entry for invalid JSON, a missing list, and an
    image or annotation without the fields used here.
    """
    try:
        with open(json_path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"Detail annotation file not found: {json_path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{json_path}: not a JSON file ({e})") from None
    for key in ("images", "annos_segmentation"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DatasetError(f"{json_path}: no list {key!r}; is this the Detail annotation "
                               f"file trainval_merged.json?")
    for i, image in enumerate(data["images"]):
        _check_fields(image, {"image_id": int, "file_name": str, "height": int, "width": int,
                              "phase": str}, f"{json_path}: images[{i}]")
    annotations = defaultdict(list)
    for i, annotation in enumerate(data["annos_segmentation"]):
        _check_fields(annotation, {"image_id": int, "category_id": int},
                      f"{json_path}: annos_segmentation[{i}]")
        annotations[annotation["image_id"]].append(annotation)
    return data["images"], dict(annotations)


def context_label(image, annotations, json_path):
    """uint8 (height, width) stored values of ``image`` (a Detail image object) painted with
    ``annotations`` in order.  Raises DatasetError naming the file, the image and the annotation
    for a category that is none of the 59 classes, an RLE that cannot be decoded, and a mask of
    another size than the image."""
    height, width = image["height"], image["width"]
    label = np.zeros((height, width), dtype=np.uint8)
    for annotation in annotations:
        where = (f"{json_path}: annotation {annotation.get('id', '?')} of image "
                 f"{image['file_name']}")
        category = annotation["category_id"]
        if category not in _STORED:
            raise DatasetError(f"{where}: category {category} is none of the 59 PASCAL-Context "
                               f"classes (category ids {list(CONTEXT_59_IDS)}); is this "
                               f"trainval_merged.json?")
        try:
            mask = decode_mask(annotation.get("segmentation"))
        except RLEError as e:
            raise DatasetError(f"{where}: 'segmentation' {e}") from None
        if mask.shape != (height, width):
            raise DatasetError(f"{where}: the mask is {mask.shape[0]} x {mask.shape[1]} but the "
                               f"image is {height} x {width}")
        label[mask] = _STORED[category]
    return label


def convert_pascal_context(json_path, image_dir, out_dir, mode="link", progress=False):
    """Write the train and val images (placed with ``mode``) and label PNGs of the Detail file
    ``json_path`` under ``out_dir``; images are read from ``image_dir`` (VOC2010/JPEGImages).

    Returns {phase: number of images} over every phase of the file; images of other phases than
    train and val are not written.  Missing images are named in one error before anything is
    written.
    """
    images, annotations = read_detail(json_path)
    counts, samples = {}, []
    for image in images:
        phase = image["phase"]
        counts[phase] = counts.get(phase, 0) + 1
        if phase not in SPLITS:
            continue
        name = image["file_name"]
        stem = os.path.splitext(name)[0]
        samples.append(Sample(
            phase, image_source=os.path.join(image_dir, name),
            image=os.path.join(out_dir, phase, "image", name),
            label=os.path.join(out_dir, phase, "label", f"{stem}.png"),
            make_label=partial(context_label, image, annotations.get(image["image_id"], ()),
                               json_path)))
    if not samples:
        raise DatasetError(f"{json_path}: no image of the phases {list(SPLITS)}")
    check_sources(samples)
    write_samples(samples, mode, progress, desc="PASCAL-Context")
    return counts
