"""PASCAL VOC 2012 with the SBD labels: the augmented training set (``train_aug``) and its label
PNGs (``SegmentationClassAug``) in the layout of :mod:`lib.datasets.pascal_voc`.

The releases:

- VOC 2012 (``VOCtrainval_11-May-2012.tar``): ``VOCdevkit/VOC2012/`` with ``JPEGImages/<id>.jpg``,
  ``SegmentationClass/<id>.png`` (indexed PNGs: palette index k is class k, 0 the background,
  255 the void outline around objects) and ``ImageSets/Segmentation/{train,val}.txt`` (1,464 and
  1,449 ids).
- SBD, the Semantic Boundaries Dataset (``benchmark.tgz``): ``benchmark_RELEASE/dataset/`` with
  ``cls/<id>.mat`` (a MATLAB struct ``GTcls`` whose field ``Segmentation`` is the h x w class map,
  0 the background and 1..20 the classes, without a void outline) and ``train.txt`` / ``val.txt``
  (8,498 and 2,857 ids of VOC 2011 images, all in VOC 2012's JPEGImages).

``train_aug`` = SBD train + SBD val + VOC train, less VOC val: 10,582 ids.  Every id of
``train_aug`` and of VOC val gets ``SegmentationClassAug/<id>.png``: VOC's own annotation for the
ids of VOC train and val (its palette indices, outline included), SBD's for the others, as the
DeepLab preparation scripts make that folder.  ``ImageSets/Segmentation/train_aug.txt`` lists
``train_aug``.
"""
import os
from functools import partial

import numpy as np

from ...utils.atomic import write_text
from ..files import DatasetError, read_label
from .matlab import label_values, load_mat
from .output import Sample, check_sources, read_ids, write_samples

__all__ = ["NUM_OBJECT_CLASSES", "train_aug_ids", "read_sbd_mat", "read_voc_label",
           "convert_voc_sbd"]

NUM_OBJECT_CLASSES = 20  # class values 1..20; 0 is the background
_VOID = 255  # VOC's outline


def train_aug_ids(sbd_train, sbd_val, voc_train, voc_val):
    """Sorted ids of the augmented training set: SBD train, SBD val and VOC train, less VOC val."""
    return sorted((set(sbd_train) | set(sbd_val) | set(voc_train)) - set(voc_val))


def read_sbd_mat(path):
    """uint8 (h, w) class values (0..20) of an SBD ``cls/<id>.mat``: ``GTcls.Segmentation``."""
    variables = load_mat(path)
    struct = variables.get("GTcls")
    if not isinstance(struct, np.ndarray) or struct.dtype.names is None or struct.size != 1:
        names = sorted(k for k in variables if not k.startswith("__"))
        raise DatasetError(f"{path}: no struct 'GTcls' (SBD's class annotation); it holds "
                           f"{names}")
    if "Segmentation" not in struct.dtype.names:
        raise DatasetError(f"{path}: GTcls has no field 'Segmentation'; its fields are "
                           f"{list(struct.dtype.names)}")
    return label_values(struct["Segmentation"].flat[0], path, "GTcls.Segmentation",
                        NUM_OBJECT_CLASSES)


def read_voc_label(path):
    """uint8 (h, w) values of a VOC ``SegmentationClass`` PNG (palette indices 0..20 and 255);
    raises DatasetError naming the file for other values."""
    values = read_label(path)
    found = np.unique(values)
    bad = found[(found > NUM_OBJECT_CLASSES) & (found != _VOID)]
    if bad.size:
        raise DatasetError(f"{path}: values {bad[:10].tolist()} are no VOC class (0..20) and "
                           f"not the void outline ({_VOID})")
    return values


def convert_voc_sbd(voc_dir, sbd_dir, progress=False):
    """Write ``<voc_dir>/SegmentationClassAug/<id>.png`` for the ids of ``train_aug`` and VOC val,
    and ``<voc_dir>/ImageSets/Segmentation/train_aug.txt``; ``voc_dir`` is VOCdevkit/VOC2012,
    ``sbd_dir`` benchmark_RELEASE/dataset.

    Returns {"train_aug": n, "val": n, "from VOC": n, "from SBD": n}.  Missing annotation files
    and images are named in one error before anything is written.
    """
    image_sets = os.path.join(voc_dir, "ImageSets", "Segmentation")
    voc_train = read_ids(os.path.join(image_sets, "train.txt"), "VOC 2012 list of train")
    voc_val = read_ids(os.path.join(image_sets, "val.txt"), "VOC 2012 list of val")
    sbd_train = read_ids(os.path.join(sbd_dir, "train.txt"), "SBD list of train")
    sbd_val = read_ids(os.path.join(sbd_dir, "val.txt"), "SBD list of val")
    train_aug = train_aug_ids(sbd_train, sbd_val, voc_train, voc_val)
    annotated_by_voc = set(voc_train) | set(voc_val)
    samples = []
    for split, ids in (("train_aug", train_aug), ("val", sorted(set(voc_val)))):
        for image_id in ids:
            if image_id in annotated_by_voc:
                source = os.path.join(voc_dir, "SegmentationClass", f"{image_id}.png")
                make_label = partial(read_voc_label, source)
            else:
                source = os.path.join(sbd_dir, "cls", f"{image_id}.mat")
                make_label = partial(read_sbd_mat, source)
            samples.append(Sample(
                split, image_source=None, image=None,
                label=os.path.join(voc_dir, "SegmentationClassAug", f"{image_id}.png"),
                make_label=make_label,
                reads=(source, os.path.join(voc_dir, "JPEGImages", f"{image_id}.jpg"))))
    check_sources(samples)
    counts = write_samples(samples, progress=progress, desc="SegmentationClassAug")
    write_text(os.path.join(image_sets, "train_aug.txt"), "".join(f"{i}\n" for i in train_aug))
    from_voc = sum(1 for i in set(train_aug) | set(voc_val) if i in annotated_by_voc)
    return counts | {"from VOC": from_voc, "from SBD": len(samples) - from_voc}
