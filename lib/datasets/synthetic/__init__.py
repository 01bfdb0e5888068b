"""Small synthetic datasets in the release layout of each built-in dataset.

``write_synthetic_dataset(root, dataset, counts, size, seed)`` draws ``counts`` ({split: n})
scenes of ``size`` (H, W) and writes them under ``<root>/<dataset>/`` with the dataset's file
naming and stored label values (``tools/make_synthetic_dataset.py`` then writes the lists):

- cityscapes, acdc: street scenes (:mod:`.streets`) in Cityscapes label ids, 8-bit PNG images
  and label PNGs; ACDC spread over its four conditions; test images have no labels.
- ade20k: rooms and streets (:mod:`.ade20k`), JPEG images, raw ADE20K annotation values.
- pascal_ctx, cocostuff, pascal_voc: outdoor views and rooms of things and stuff
  (:mod:`.objects`) in each one's stored values; VOC labels with the void outline, VOC's
  ImageSets/Segmentation/{train,val}.txt.
- lip: one person each (:mod:`.people`), LIP's 20 values.

JPEGs are written with quality 90.  Label PNGs are unfiltered.  Image ``index`` of a split is drawn
from a Generator seeded with ``(seed, split, index)``: the same seed gives byte-identical files.
"""
import os
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .. import cocostuff, pascal_ctx, pascal_voc
from ..acdc import CONDITIONS
from .ade20k import render_ade20k
from .objects import ROLES, Vocabulary, render_objects
from .people import render_person
from .streets import render

__all__ = ["write_synthetic_dataset", "LAYOUTS", "Layout"]

_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_CITIES = {"train": ("synthcity", "synthtown"), "val": ("synthvale",), "test": ("synthburg",)}


def _cityscapes_paths(split, index):
    cities = _CITIES[split]
    city = cities[index % len(cities)]
    stem = f"{city}_{index // len(cities):06d}_000019"
    return (f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png",
            f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png", None)


def _acdc_paths(split, index):
    c = index % len(CONDITIONS)
    condition = CONDITIONS[c]
    sequence = f"GOPR{100 * (c + 1) + 10 * _SPLIT_CODE[split] + index // 20:04d}"
    stem = f"{sequence}_frame_{index:06d}"
    return (f"rgb_anon/{condition}/{split}/{sequence}/{stem}_rgb_anon.png",
            f"gt/{condition}/{split}/{sequence}/{stem}_gt_labelIds.png", condition)


_ADE20K_FOLDERS = {"train": ("training", "train"), "val": ("validation", "val")}


def _ade20k_paths(split, index):
    folder, prefix = _ADE20K_FOLDERS[split]
    stem = f"ADE_{prefix}_{index + 1:08d}"  # the official numbering starts at 1
    return f"images/{folder}/{stem}.jpg", f"annotations/{folder}/{stem}.png", None


def _split_folder_paths(stem_of):
    """``{split}/image/<stem>.jpg`` and ``{split}/label/<stem>.png`` (PASCAL-Context,
    COCO-Stuff), stems from ``stem_of(split, index)``."""
    def paths(split, index):
        stem = stem_of(split, index)
        return f"{split}/image/{stem}.jpg", f"{split}/label/{stem}.png", None
    return paths


def _voc_stem(split, index):
    return f"{2007 + 4 * _SPLIT_CODE[split]}_{index + 1:06d}"


def _voc_paths(split, index):
    stem = _voc_stem(split, index)
    return (f"VOCdevkit/VOC2012/JPEGImages/{stem}.jpg",
            f"VOCdevkit/VOC2012/SegmentationClassAug/{stem}.png", None)


def _lip_paths(split, index):
    stem = f"{index + 1}_{100000 * (_SPLIT_CODE[split] + 1) + index}"
    return (f"TrainVal_images/{split}_images/{stem}.jpg",
            f"TrainVal_parsing_annotations/{split}_segmentations/{stem}.png", None)


def _vocabulary(module_class, names, void_outline=False):
    """The stored value of each role whose class ``names`` (role -> class name) has in the
    dataset class (roles not named are stored as 0)."""
    index = {name: i for i, name in enumerate(module_class.class_names)}
    values = {role: int(module_class.train_id_to_label[index[name]])
              for role, name in names.items()}
    return Vocabulary(values, void_outline)


_CONTEXT = _vocabulary(pascal_ctx.PASCALContext, {
    role: role for role in ROLES if role in pascal_ctx.PASCALContext.class_names})
_COCO = _vocabulary(cocostuff.COCOStuff, {
    "sky": "sky-other", "mountain": "mountain", "building": "building-other", "tree": "tree",
    "grass": "grass", "road": "road", "water": "sea", "ceiling": "ceiling-other",
    "wall": "wall-concrete", "window": "window-other", "floor": "floor-wood",
    "person": "person", "car": "car", "bus": "bus", "dog": "dog", "cat": "cat", "horse": "horse",
    "sheep": "sheep", "cow": "cow", "bird": "bird", "bicycle": "bicycle", "boat": "boat",
    "aeroplane": "airplane", "chair": "chair", "table": "dining table", "sofa": "couch",
    "bottle": "bottle", "tvmonitor": "tv", "pottedplant": "potted plant"})
_VOC = _vocabulary(pascal_voc.PascalVOC, {
    role: role for role in ROLES if role in pascal_voc.PascalVOC.class_names[1:]} | {
    "table": "diningtable"}, void_outline=True)


@dataclass(frozen=True)
class Layout:
    """How one dataset is written: its splits, ``paths(split, index)`` -> (image, label,
    condition) relative to ``<root>/<dataset>/``, and ``draw(rng, h, w, index, condition)`` ->
    (RGB uint8 image, stored labels uint8)."""

    splits: tuple
    paths: Callable
    draw: Callable


LAYOUTS = {
    "cityscapes": Layout(("train", "val", "test"), _cityscapes_paths, render),
    "acdc": Layout(("train", "val", "test"), _acdc_paths, render),
    "ade20k": Layout(tuple(_ADE20K_FOLDERS), _ade20k_paths,
                     lambda rng, h, w, i, _: render_ade20k(rng, h, w, i)),
    "pascal_ctx": Layout(("train", "val"), _split_folder_paths(_voc_stem),
                         lambda rng, h, w, i, _: render_objects(rng, h, w, i, _CONTEXT)),
    "cocostuff": Layout(("train", "val"), _split_folder_paths(
        lambda split, i: f"COCO_train2014_{2 * i + 1 + _SPLIT_CODE[split]:012d}"),
        lambda rng, h, w, i, _: render_objects(rng, h, w, i, _COCO)),
    "pascal_voc": Layout(("train", "val"), _voc_paths,
                         lambda rng, h, w, i, _: render_objects(rng, h, w, i, _VOC)),
    "lip": Layout(("train", "val"), _lip_paths, lambda rng, h, w, i, _: render_person(rng, h, w, i)),
}


def _write_file(path, array, params=()):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, array, list(params)):
        raise OSError(f"cannot write {path}")


def _write_image(path, rgb):
    """An RGB image as the dataset stores it: PNG, or JPEG (quality 90) for a .jpg path."""
    params = (cv2.IMWRITE_JPEG_QUALITY, 90) if path.endswith(".jpg") else ()
    _write_file(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)


def _write_voc_image_sets(base, counts):
    """VOC's ImageSets/Segmentation/<split>.txt: the image ids of each split written."""
    folder = os.path.join(base, "VOCdevkit", "VOC2012", "ImageSets", "Segmentation")
    os.makedirs(folder, exist_ok=True)
    for split, n in counts.items():
        with open(os.path.join(folder, f"{split}.txt"), "w") as f:
            f.writelines(f"{_voc_stem(split, index)}\n" for index in range(n))


def write_synthetic_dataset(root, dataset, counts, size, seed):
    """Write ``counts`` ({split: n}) scenes of ``size`` (H, W) under ``<root>/<dataset>/``.

    Raises ValueError for a split the dataset does not have (ADE20K, PASCAL-Context,
    COCO-Stuff, LIP and VOC have train and val; their test images are separate releases)."""
    layout = LAYOUTS[dataset]
    if set(counts) - set(layout.splits):
        raise ValueError(f"{dataset} has the splits {list(layout.splits)}, got {list(counts)}")
    height, width = size
    base = os.path.join(root, dataset)
    for split, n in counts.items():
        for index in range(n):
            image_rel, label_rel, condition = layout.paths(split, index)
            rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
            rgb, label = layout.draw(rng, height, width, index, condition)
            _write_image(os.path.join(base, image_rel), rgb)
            if split != "test":
                # Unfiltered rows: label maps are runs of equal values, and decode faster so.
                _write_file(os.path.join(base, label_rel), label,
                            (cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE))
    if dataset == "pascal_voc":
        _write_voc_image_sets(base, counts)
