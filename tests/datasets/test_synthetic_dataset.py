import glob
import os

import cv2
import numpy as np
import pytest

from lib.datasets import build_dataset
from tests.helpers import CITYSCAPES_TRAIN_IDS
from tools.make_synthetic_dataset import make_synthetic_dataset

from .helpers import SYNTHETIC_COUNTS, SYNTHETIC_SIZE, dataset_cfg, unnormalize

SKY_LABEL_ID, VEGETATION_LABEL_ID = 23, 21
IMAGE_SUFFIX = {"cityscapes": "_leftImg8bit.png", "acdc": "_rgb_anon.png"}
IMAGE_GLOB = {"cityscapes": "leftImg8bit/{}/*/*_leftImg8bit.png",
              "acdc": "rgb_anon/*/{}/*/*_rgb_anon.png"}


def files_of(root):
    paths = sorted(glob.glob(os.path.join(root, "**", "*.*"), recursive=True))
    return {os.path.relpath(p, root): open(p, "rb").read() for p in paths}


def test_same_seed_gives_byte_identical_files_and_another_seed_different_images(tmp_path):
    counts = {"train": 2, "val": 1, "test": 1}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        make_synthetic_dataset(str(tmp_path / name), "acdc", counts, (32, 64), seed)
    first, again, other = (files_of(tmp_path / n) for n in "abc")
    assert len(first) == 4 + 3 + 4  # images, labels (none for test), lists
    assert first == again
    images = [k for k in first if k.endswith("_rgb_anon.png")]
    assert all(first[k] != other[k] for k in images)


def test_labels_are_label_id_pngs_covering_all_19_classes_and_void_ids(synthetic_root):
    ids = set()
    paths = glob.glob(str(synthetic_root / "cityscapes/gtFine/*/*/*_gtFine_labelIds.png"))
    assert len(paths) == 6
    for path in paths:
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint8 and label.shape == SYNTHETIC_SIZE
        present = set(np.unique(label).tolist())
        assert len(present & set(CITYSCAPES_TRAIN_IDS)) >= 14  # most classes in every image
        ids |= present
    assert set(CITYSCAPES_TRAIN_IDS) <= ids
    assert {1, 4, 5} <= ids  # ego vehicle, static, dynamic: void ids mapped to 255


@pytest.mark.parametrize("dataset", ["cityscapes", "acdc"])
def test_round_trip_through_make_lists_and_the_loaders(synthetic_root, dataset):
    counts = SYNTHETIC_COUNTS[dataset]
    cfg = dataset_cfg(synthetic_root, dataset, **{"TRAIN.BASE_SIZE": 128,
                                                  "TRAIN.IMAGE_SIZE": [96, 48]})
    suffix = IMAGE_SUFFIX[dataset]
    for split in ("train", "val", "test"):
        data = build_dataset(cfg, split, list_path=f"list/{dataset}/{split}.lst")
        assert len(data) == counts[split]
        images = glob.glob(str(synthetic_root / dataset / IMAGE_GLOB[dataset].format(split)))
        assert sorted(data.names) == sorted(os.path.basename(p)[:-len(suffix)] for p in images)
        for index in range(len(data)):
            item = data[index]
            if split == "test":
                image, size, name = item
            else:
                image, label, size, name = item
                values = set(np.unique(label.numpy()).tolist())
                assert values <= set(range(19)) | {255} and len(values) >= 4
                assert label.shape == image.shape[1:]
            expected = (3, 48, 96) if split == "train" else (3, *SYNTHETIC_SIZE)
            assert image.shape == expected and size.tolist() == list(SYNTHETIC_SIZE)
            assert name == data.names[index]


def test_acdc_images_are_spread_over_the_four_conditions_and_selected_by_condition(
        synthetic_root):
    everything = build_dataset(dataset_cfg(synthetic_root, "acdc"), "train")
    by_path = {}
    for name, entry in zip(everything.names, everything.entries, strict=True):
        by_path[name] = entry.image.split("/")[1]
        assert everything.condition(name) == by_path[name]
    assert sorted(set(by_path.values())) == ["fog", "night", "rain", "snow"]
    cfg = dataset_cfg(synthetic_root, "acdc", **{"DATASET.CONDITIONS": ["night", "fog"]})
    chosen = build_dataset(cfg, "train")
    assert sorted(chosen.names) == sorted(n for n, c in by_path.items() if c in ("night", "fog"))
    assert {chosen.condition(n) for n in chosen.names} == {"night", "fog"}


def test_loader_sees_the_intended_rgb_colours_sky_blue_and_vegetation_green(synthetic_root):
    data = build_dataset(dataset_cfg(synthetic_root), "val")
    for index in range(len(data)):
        image, label, _, _ = data[index]
        rgb, label = unnormalize(image), label.numpy()
        sky = rgb[label == CITYSCAPES_TRAIN_IDS[SKY_LABEL_ID]].mean(0)
        green = rgb[label == CITYSCAPES_TRAIN_IDS[VEGETATION_LABEL_ID]].mean(0)
        assert sky[2] > sky[0] + 40
        assert green[1] > green[0] + 20 and green[1] > green[2] + 20


def test_test_split_has_images_only(synthetic_root):
    assert not glob.glob(str(synthetic_root / "cityscapes/gtFine/test/*/*.png"))
    assert not glob.glob(str(synthetic_root / "acdc/gt/*/test/*/*.png"))
    with open(synthetic_root / "list/acdc/test.lst") as f:
        assert all(len(line.split()) == 1 for line in f)
