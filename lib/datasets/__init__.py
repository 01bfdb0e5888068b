"""Datasets: ``build_dataset(cfg, split, list_path=None)`` and ``init_worker`` for DataLoaders.

The config is read here only; the dataset classes take typed arguments.
"""
import cv2

from .acdc import ACDC, CONDITIONS
from .ade20k import ADE20K
from .base_dataset import SPLITS, BaseDataset
from .cityscapes import Cityscapes
from .files import DatasetError
from .transforms import TrainTransform

__all__ = ["build_dataset", "build_train_transform", "dataset_class", "init_worker", "seed_worker",
           "BaseDataset", "Cityscapes", "ACDC", "CONDITIONS", "DatasetError", "SPLITS",
           "TrainTransform"]

_DATASETS = {"cityscapes": Cityscapes, "acdc": ACDC, "ade20k": ADE20K}


def dataset_class(name):
    """The dataset class called ``name`` (DATASET.DATASET); its class tables (palette,
    class_names, train_id_to_label, ...) are usable without building a dataset."""
    if name not in _DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {sorted(_DATASETS)}")
    return _DATASETS[name]


def build_dataset(cfg, split, list_path=None):
    """The DATASET.DATASET dataset for ``split`` ("train", "val" or "test").

    - ``"train"``: list DATASET.TRAIN_SET, the reference random transform (TRAIN.IMAGE_SIZE as
      the crop, BASE_SIZE, SCALE_FACTOR, MULTI_SCALE, FLIP, DOWNSAMPLERATE, IGNORE_LABEL), the
      first TRAIN.NUM_SAMPLES items, Generator seeded with TRAIN.SEED (-1 = OS entropy).
    - ``"val"``: list DATASET.TEST_SET, full normalised images, labels required,
      TEST.NUM_SAMPLES.
    - ``"test"``: as "val", labels read when the list has them.

    ``list_path`` (relative to DATASET.ROOT) replaces the list, e.g. DATASET.EXTRA_TRAIN_SET for
    the second training phase.  ACDC keeps the items of DATASET.CONDITIONS (empty = all).
    """
    name = cfg.DATASET.DATASET
    cls = dataset_class(name)
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
    if cfg.DATASET.NUM_CLASSES != cls.num_classes:
        raise DatasetError(f"DATASET.NUM_CLASSES is {cfg.DATASET.NUM_CLASSES} but {name} has "
                           f"{cls.num_classes} classes")
    if list_path is None:
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


# The former name, kept for the entry points that pass it to their DataLoaders.
seed_worker = init_worker
