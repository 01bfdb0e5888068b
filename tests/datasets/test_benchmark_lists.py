"""make_lists and the synthetic generator for PASCAL-Context, COCO-Stuff, LIP and PASCAL VOC."""
import glob
import os

import cv2
import numpy as np
import pytest

from lib.datasets import DatasetError, build_dataset, dataset_class
from lib.datasets.lists import make_lists
from lib.datasets.synthetic import write_synthetic_dataset
from tools.make_synthetic_dataset import make_synthetic_dataset

from .helpers import dataset_cfg, touch

NEW = ("pascal_ctx", "cocostuff", "lip", "pascal_voc")
CLASSES = {"pascal_ctx": 59, "cocostuff": 171, "lip": 20, "pascal_voc": 21}
LISTS = {"lip": ("trainList.txt", "valList.txt")}


def lines(root, dataset, name):
    with open(os.path.join(root, "list", dataset, name)) as f:
        return f.read().splitlines()


@pytest.mark.parametrize("dataset, official", [("pascal_ctx", (4998, 5105)),
                                               ("cocostuff", (9000, 1000))])
def test_split_folders_pair_images_and_labels_by_stem(tmp_path, caplog, dataset, official):
    touch(tmp_path / dataset, "train/image/b.jpg", "train/image/a.jpg", "train/label/a.png",
          "train/label/b.png", "val/image/c.jpg", "val/label/c.png")
    assert make_lists(str(tmp_path), dataset) == {"train": 2, "val": 1, "trainval": 3}
    assert lines(tmp_path, dataset, "train.lst") == ["train/image/a.jpg\ttrain/label/a.png",
                                                     "train/image/b.jpg\ttrain/label/b.png"]
    out = caplog.text
    assert f"{dataset} train: 2 images; the official release has {official[0]}" in out
    assert f"{dataset} val: 1 images; the official release has {official[1]}" in out


def test_lip_lists_are_relative_to_the_two_release_folders_and_named_as_the_reference(tmp_path,
                                                                                      caplog):
    touch(tmp_path / "lip", "TrainVal_images/train_images/1_2.jpg",
          "TrainVal_parsing_annotations/train_segmentations/1_2.png",
          "TrainVal_parsing_annotations/train_segmentations_reversed/1_2.png",
          "TrainVal_images/val_images/3_4.jpg",
          "TrainVal_parsing_annotations/val_segmentations/3_4.png")
    assert make_lists(str(tmp_path), "lip") == {"train": 1, "val": 1, "trainval": 2}
    assert lines(tmp_path, "lip", "trainList.txt") == ["train_images/1_2.jpg\t"
                                                       "train_segmentations/1_2.png"]
    assert lines(tmp_path, "lip", "valList.txt") == ["val_images/3_4.jpg\tval_segmentations/3_4.png"]
    assert "lip train: 1 images; the official release has 30462" in caplog.text


VOC = "pascal_voc/VOCdevkit/VOC2012/"


def test_voc_trains_on_the_augmented_labels_outside_val(tmp_path, caplog):
    touch(tmp_path, *(f"{VOC}JPEGImages/{i}.jpg" for i in ("a", "b", "c")),
          *(f"{VOC}SegmentationClassAug/{i}.png" for i in ("a", "b", "c")),
          f"{VOC}SegmentationClass/c.png", f"{VOC}ImageSets/Segmentation/val.txt")
    with open(tmp_path / f"{VOC}ImageSets/Segmentation/val.txt", "w") as f:
        f.write("c\n")
    assert make_lists(str(tmp_path), "pascal_voc") == {"train": 2, "val": 1, "trainval": 3}
    root = "VOCdevkit/VOC2012/"
    assert lines(tmp_path, "pascal_voc", "val.lst") == [
        f"{root}JPEGImages/c.jpg\t{root}SegmentationClassAug/c.png"]
    assert [line.split("\t")[0] for line in lines(tmp_path, "pascal_voc", "train.lst")] == [
        f"{root}JPEGImages/a.jpg", f"{root}JPEGImages/b.jpg"]
    out = caplog.text
    assert "pascal_voc train: 2 images; the official release has 10582" in out
    assert "pascal_voc val: 1 images; the official release has 1449" in out


def test_voc_without_augmented_labels_uses_train_txt_and_names_missing_files(tmp_path):
    touch(tmp_path, f"{VOC}JPEGImages/a.jpg", f"{VOC}SegmentationClass/a.png",
          f"{VOC}JPEGImages/c.jpg", f"{VOC}ImageSets/Segmentation/val.txt")
    for split, ids in (("train", "a\n"), ("val", "c\n")):
        with open(tmp_path / f"{VOC}ImageSets/Segmentation/{split}.txt", "w") as f:
            f.write(ids)
    with pytest.raises(DatasetError, match="val: label not found: .*SegmentationClass/c.png"):
        make_lists(str(tmp_path), "pascal_voc")
    touch(tmp_path, f"{VOC}SegmentationClass/c.png")
    assert make_lists(str(tmp_path), "pascal_voc") == {"train": 1, "val": 1, "trainval": 2}


@pytest.fixture(scope="module")
def synthetic_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    for dataset in NEW:
        make_synthetic_dataset(str(root), dataset, {"train": 4, "val": 2}, (40, 48), 0)
    return root


@pytest.mark.parametrize("dataset", NEW)
def test_synthetic_sets_load_through_their_lists_with_stored_values(synthetic_sets, dataset):
    train_list, val_list = LISTS.get(dataset, ("train.lst", "val.lst"))
    cfg = dataset_cfg(synthetic_sets, dataset, **{
        "DATASET.NUM_CLASSES": CLASSES[dataset], "DATASET.TRAIN_SET": f"list/{dataset}/{train_list}",
        "DATASET.TEST_SET": f"list/{dataset}/{val_list}", "TRAIN.BASE_SIZE": 40,
        "TRAIN.IMAGE_SIZE": [32, 32]})
    table = dataset_class(dataset, CLASSES[dataset])
    stored = set(table.train_id_to_label.tolist())
    present = set()
    for split, count in (("train", 4), ("val", 2)):
        data = build_dataset(cfg, split)
        assert len(data) == count
        for entry in data.entries:
            raw = cv2.imread(os.path.join(data.data_dir, data.label_folder, entry.label),
                             cv2.IMREAD_UNCHANGED)
            assert raw.dtype == np.uint8 and raw.shape == (40, 48)
            present |= set(np.unique(raw).tolist())
        image, label, _, _ = data[0]
        assert image.shape == ((3, 32, 32) if split == "train" else (3, 40, 48))
    # Every value drawn is a class of the dataset, 0 (background / unlabelled) or VOC's void.
    assert present <= stored | {0, 255} and len(present & stored) >= 6


def test_synthetic_people_have_their_left_parts_on_the_right_of_the_image(synthetic_sets):
    for path in glob.glob(str(synthetic_sets / "lip/TrainVal_parsing_annotations/*/*.png")):
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        for left, right in ((14, 15), (18, 19)):
            assert np.nonzero(label == left)[1].mean() > np.nonzero(label == right)[1].mean()


def test_synthetic_voc_labels_have_the_void_outline_around_objects(synthetic_sets):
    for path in glob.glob(str(synthetic_sets / f"{VOC}SegmentationClassAug/*.png")):
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        objects = (label > 0) & (label < 255)
        grown = cv2.dilate(objects.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        # Object pixels never touch the background directly: the void band lies between.
        assert objects.any() and not (grown & (label == 0) & ~objects).any()


def test_synthetic_sets_are_deterministic_and_have_no_test_split(tmp_path, synthetic_sets):
    for dataset in ("lip", "pascal_voc"):
        write_synthetic_dataset(str(tmp_path), dataset, {"train": 4, "val": 2}, (40, 48), 0)
        for path in glob.glob(str(tmp_path / dataset / "**" / "*.*"), recursive=True):
            with open(path, "rb") as a, open(synthetic_sets / os.path.relpath(path, tmp_path),
                                             "rb") as b:
                assert a.read() == b.read(), path
        with pytest.raises(ValueError, match=f"{dataset} has the splits"):
            write_synthetic_dataset(str(tmp_path), dataset, {"test": 1}, (8, 8), 0)
