"""Datasets: ``build_dataset(cfg, split, list_path=None)`` and ``init_worker`` for DataLoaders.

The config is read here only; the dataset classes take typed arguments.
"""
import cv2

from .acdc import ACDC, CONDITIONS
from .ade20k import ADE20K
from .base_dataset import SPLITS, BaseDataset
from .cityscapes import Cityscapes
from .custom import CustomDataset, class_tables
from .files import DatasetError
from .transforms import TrainTransform

__all__ = ["build_dataset", "build_train_transform", "dataset_class", "dataset_tables",
           "eval_protocol", "init_worker", "BaseDataset", "Cityscapes", "ACDC",
           "ADE20K", "CustomDataset", "CONDITIONS", "DatasetError", "SPLITS", "TrainTransform"]

_DATASETS = {"cityscapes": Cityscapes, "acdc": ACDC, "ade20k": ADE20K}


def dataset_class(name):
    """The dataset class called ``name`` (DATASET.DATASET); its class tables (palette,
    class_names, train_id_to_label, ...) are usable without building a dataset."""
    if name not in _DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {sorted(_DATASETS)}")
    return _DATASETS[name]


def eval_protocol(name):
    """The evaluation protocol (``lib.evaluation.protocols.PROTOCOLS``) of the dataset called ``name``;
    a dataset of your own is evaluated like Cityscapes (long side to TEST.BASE_SIZE)."""
    return _DATASETS.get(name, CustomDataset).eval_protocol


def dataset_tables(cfg):
    """The class tables of DATASET.DATASET (``class_names``, ``num_classes``, ``palette``,
    ``train_id_to_label``, ``class_weight_table``, ...), read from no file: a built-in dataset's
    class, or for any other name the :class:`~lib.datasets.custom.ClassTables` of
    DATASET.CLASS_NAMES, LABEL_MAP, PALETTE and CLASS_WEIGHTS.  Checks DATASET.NUM_CLASSES."""
    d = cfg.DATASET
    if d.DATASET in _DATASETS:
        tables = _DATASETS[d.DATASET]
        _check_builtin_keys(d, tables)
        if d.NUM_CLASSES != tables.num_classes:
            raise DatasetError(f"DATASET.NUM_CLASSES is {d.NUM_CLASSES} but {d.DATASET} has "
                               f"{tables.num_classes} classes")
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


def build_dataset(cfg, split, list_path=None):
    """The DATASET.DATASET dataset for ``split`` ("train", "val" or "test").

    - ``"train"``: list DATASET.TRAIN_SET, the reference random transform (TRAIN.IMAGE_SIZE as
      the crop, BASE_SIZE, SCALE_FACTOR, MULTI_SCALE, FLIP, DOWNSAMPLERATE, IGNORE_LABEL), the
      first TRAIN.NUM_SAMPLES items, Generator seeded with TRAIN.SEED (-1 = OS entropy).
    - ``"val"``: list DATASET.TEST_SET, full normalised images, labels required,
      TEST.NUM_SAMPLES.
    - ``"test"``: as "val", labels read when the list has them.

    ``list_path`` (relative to DATASET.ROOT) replaces the list, e.g. DATASET.EXTRA_TRAIN_SET for
    the second training phase.  ACDC keeps the items of DATASET.CONDITIONS (empty = all).  A
    name that is not built in is a :class:`CustomDataset` under ``<DATASET.ROOT>/<name>/`` with
    the tables of :func:`dataset_tables`.
    """
    name = cfg.DATASET.DATASET
    tables = dataset_tables(cfg)
    cls = _DATASETS.get(name, CustomDataset)
    if list_path is None:  # the dataset checks the split
        list_path = cfg.DATASET.TRAIN_SET if split == "train" else cfg.DATASET.TEST_SET
    kwargs = {"ignore_label": cfg.TRAIN.IGNORE_LABEL}
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

