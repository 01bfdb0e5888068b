"""Datasets: ``build_dataset(cfg, split, list_path=None, normalization=IMAGENET)`` and
``init_worker`` for DataLoaders.

The config is read here only; the dataset classes take typed arguments.
"""
import cv2

from ..utils.normalization import IMAGENET
from .acdc import ACDC, CONDITIONS
from .ade20k import ADE20K
from .base_dataset import SPLITS, BaseDataset
from .cityscapes import Cityscapes
from .cocostuff import COCOStuff
from .custom import CustomDataset, class_tables
from .files import DatasetError
from .lip import LIP
from .pascal_ctx import PASCALContext, PASCALContext59
from .pascal_voc import PascalVOC, PascalVOC20
from .transforms import TrainTransform

__all__ = ["build_dataset", "build_train_transform", "dataset_class", "dataset_tables",
           "eval_protocol", "eval_crop_padding", "label_flip_pairs", "list_of_split",
           "init_worker", "BaseDataset",
           "Cityscapes", "ACDC", "ADE20K", "COCOStuff", "LIP", "PASCALContext",
           "PASCALContext59", "PascalVOC", "PascalVOC20", "CustomDataset", "CONDITIONS",
           "DatasetError", "SPLITS", "TrainTransform"]

# Built-in datasets by DATASET.DATASET; a dataset with variants maps DATASET.NUM_CLASSES to each,
# its reference default first.
_DATASETS = {"cityscapes": Cityscapes, "acdc": ACDC, "ade20k": ADE20K,
             "pascal_ctx": {59: PASCALContext59, 60: PASCALContext}, "cocostuff": COCOStuff,
             "lip": LIP, "pascal_voc": {21: PascalVOC, 20: PascalVOC20}}

# Split names that reference files give instead of a list (``TRAIN_SET: 'train'``) and the split
# whose list they stand for: the reference's "testval" is the val set.
_SPLIT_NAMES = {"train": "train", "val": "val", "trainval": "trainval", "testval": "val",
                "test": "test"}
# List file names of the splits, where a dataset's reference names them otherwise than
# "<split>.lst".
LIST_NAMES = {"lip": {"train": "trainList.txt", "val": "valList.txt",
                      "trainval": "trainvalList.txt"}}


def dataset_class(name, num_classes=None):
    """The dataset class called ``name`` (DATASET.DATASET) with ``num_classes`` classes (None:
    its default variant); its class tables (palette, class_names, train_id_to_label, ...) are
    usable without building a dataset."""
    if name not in _DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {sorted(_DATASETS)}")
    variants = _DATASETS[name]
    if not isinstance(variants, dict):
        if num_classes is not None and num_classes != variants.num_classes:
            raise DatasetError(f"DATASET.NUM_CLASSES is {num_classes} but {name} has "
                               f"{variants.num_classes} classes")
        return variants
    if num_classes is None:
        return next(iter(variants.values()))
    if num_classes not in variants:
        counts = ", ".join(f"{k} ({cls.__name__})" for k, cls in variants.items())
        raise DatasetError(f"DATASET.NUM_CLASSES is {num_classes} but {name} has {counts} "
                           f"classes")
    return variants[num_classes]


def _class_of(name):
    return dataset_class(name) if name in _DATASETS else CustomDataset


def eval_protocol(name):
    """The evaluation protocol (``lib.evaluation.protocols.PROTOCOLS``) of the dataset called ``name``;
    a dataset of your own is evaluated like Cityscapes (long side to TEST.BASE_SIZE)."""
    return _class_of(name).eval_protocol


def eval_crop_padding(name):
    """Whether the ade20k protocol cuts the multiple-of-8 padding off the scores of dataset
    ``name`` before their resize to the label size (True for PASCAL-Context, COCO-Stuff and
    PASCAL VOC; False for ADE20K, as in the reference, and for a dataset of your own)."""
    return bool(_class_of(name).eval_crop_padding)


def label_flip_pairs(name):
    """The (a, b) class pairs of dataset ``name`` that trade places in a mirrored image (LIP's
    left and right parts; () for the others)."""
    return tuple(_class_of(name).flip_pairs)


def list_of_split(name, list_path):
    """``list_path`` (DATASET.TRAIN_SET, TEST_SET, ...) as a list file relative to DATASET.ROOT:
    a split name (train, val, trainval, testval = val, test) stands for the list that
    ``tools/make_lists.py`` writes for it, ``list/<name>/<split>.lst``; anything else is a path."""
    split = _SPLIT_NAMES.get(list_path)
    if split is None:
        return list_path
    return f"list/{name}/{LIST_NAMES.get(name, {}).get(split, f'{split}.lst')}"


def dataset_tables(cfg):
    """The class tables of DATASET.DATASET (``class_names``, ``num_classes``, ``palette``,
    ``train_id_to_label``, ``class_weight_table``, ...), read from no file: a built-in dataset's
    class, or for any other name the :class:`~lib.datasets.custom.ClassTables` of
    DATASET.CLASS_NAMES, LABEL_MAP, PALETTE and CLASS_WEIGHTS.  Checks DATASET.NUM_CLASSES."""
    d = cfg.DATASET
    if d.DATASET in _DATASETS:
        tables = dataset_class(d.DATASET, d.NUM_CLASSES)
        _check_builtin_keys(d, tables)
        return tables
    if not d.CLASS_NAMES:
        raise DatasetError(f"DATASET.DATASET {d.DATASET!r} is not built in ({sorted(_DATASETS)}); "
                           f"a dataset of your own needs DATASET.CLASS_NAMES")
    if d.NUM_CLASSES != len(d.CLASS_NAMES):
        raise DatasetError(f"DATASET.NUM_CLASSES is {d.NUM_CLASSES} but DATASET.CLASS_NAMES names "
                           f"{len(d.CLASS_NAMES)} classes")
    return class_tables(d.CLASS_NAMES, d.LABEL_MAP, d.PALETTE, d.CLASS_WEIGHTS)


def _check_builtin_keys(d, cls):
    """A built-in dataset has its own tables: the keys of a dataset of your own may only repeat
    its class names."""
    if d.CLASS_NAMES and tuple(d.CLASS_NAMES) != tuple(cls.class_names):
        raise DatasetError(f"DATASET.CLASS_NAMES {list(d.CLASS_NAMES)} disagrees with the "
                           f"{d.DATASET} class table {list(cls.class_names)}")
    for key in ("LABEL_MAP", "PALETTE", "CLASS_WEIGHTS"):
        if d[key]:
            raise DatasetError(f"DATASET.{key} describes a dataset of your own; {d.DATASET} is "
                               f"built in and has its own table (leave DATASET.{key} empty)")


def build_dataset(cfg, split, list_path=None, normalization=IMAGENET):
    """The DATASET.DATASET dataset for ``split`` ("train", "val" or "test").

    - ``"train"``: list DATASET.TRAIN_SET, the reference random transform (TRAIN.IMAGE_SIZE as
      the crop, BASE_SIZE, SCALE_FACTOR, MULTI_SCALE, FLIP, DOWNSAMPLERATE, IGNORE_LABEL), the
      first TRAIN.NUM_SAMPLES items, Generator seeded with TRAIN.SEED (-1 = OS entropy).
    - every split: label values out of range stop the run as they are read, unless
      DATASET.OUT_OF_RANGE_LABELS is "ignore".
    - ``"val"``: list DATASET.TEST_SET, full normalised images, labels required,
      TEST.NUM_SAMPLES.
    - ``"test"``: as "val", labels read when the list has them.

    ``list_path`` (relative to DATASET.ROOT) replaces the list, e.g. DATASET.EXTRA_TRAIN_SET for
    the second training phase; a split name stands for its list (:func:`list_of_split`).  A
    dataset with variants (PASCAL-Context 59 / 60, VOC 21 / 20) is the one of
    DATASET.NUM_CLASSES.  ACDC keeps the items of DATASET.CONDITIONS (empty = all).  A
    name that is not built in is a :class:`CustomDataset` under ``<DATASET.ROOT>/<name>/`` with
    the tables of :func:`dataset_tables`.  Images are normalised with ``normalization``, the
    network's (``lib.models.input_normalization``).
    """
    name = cfg.DATASET.DATASET
    tables = dataset_tables(cfg)
    cls = tables if name in _DATASETS else CustomDataset
    if list_path is None:  # the dataset checks the split
        list_path = cfg.DATASET.TRAIN_SET if split == "train" else cfg.DATASET.TEST_SET
    list_path = list_of_split(name, list_path)
    kwargs = {"ignore_label": cfg.TRAIN.IGNORE_LABEL, "normalization": normalization,
              "out_of_range_labels": cfg.DATASET.OUT_OF_RANGE_LABELS}
    if split == "train":
        kwargs.update(transform=build_train_transform(cfg), num_samples=cfg.TRAIN.NUM_SAMPLES,
                      seed=cfg.TRAIN.SEED if cfg.TRAIN.SEED >= 0 else None)
    else:
        kwargs.update(num_samples=cfg.TEST.NUM_SAMPLES)
    conditions = list(cfg.DATASET.CONDITIONS)
    if cls is ACDC:
        kwargs.update(conditions=conditions)
    elif conditions:
        raise DatasetError(f"DATASET.CONDITIONS {conditions} applies to acdc only, not {name}")
    if cls is CustomDataset:
        kwargs.update(name=name, class_names=tables.class_names, label_map=cfg.DATASET.LABEL_MAP,
                      palette=cfg.DATASET.PALETTE, class_weights=cfg.DATASET.CLASS_WEIGHTS)
    return cls(cfg.DATASET.ROOT, list_path, split, **kwargs)


def build_train_transform(cfg):
    """The reference training transform of TRAIN.* (IMAGE_SIZE is (w, h), the crop (h, w))."""
    width, height = cfg.TRAIN.IMAGE_SIZE
    return TrainTransform(base_size=cfg.TRAIN.BASE_SIZE, crop_size=(height, width),
                          scale_factor=cfg.TRAIN.SCALE_FACTOR, flip=cfg.TRAIN.FLIP,
                          multi_scale=cfg.TRAIN.MULTI_SCALE,
                          downsample_rate=cfg.TRAIN.DOWNSAMPLERATE,
                          ignore_label=cfg.TRAIN.IGNORE_LABEL)


def init_worker(worker_id):
    """DataLoader ``worker_init_fn``: turn OpenCV's own threads off inside the worker.

    The workers' processes already share the cores; OpenCV threads on top of them oversubscribe.
    Seeding needs nothing here: a training item's random draws are a function of its
    ``(index, epoch)`` key and TRAIN.SEED (see :class:`BaseDataset`), and the DataLoader seeds
    ``random``, numpy and torch in each worker itself.
    """
    cv2.setNumThreads(0)

