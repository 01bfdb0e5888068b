import os
import re

import numpy as np
import pytest

from lib.datasets import DatasetError, build_dataset
from tests.helpers import make_cityscapes_tree, write_png

from .helpers import dataset_cfg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
IMAGE = np.full((32, 64, 3), 90, np.uint8)
LABEL = np.full((32, 64), 7, np.uint8)


def two_samples(root):
    """A train list of two good samples; returns (list path, image path and label path of #2)."""
    list_path = make_cityscapes_tree(root, [("a_000000_000001", IMAGE, LABEL),
                                            ("b_000000_000002", IMAGE, LABEL)])
    base = os.path.join(root, "cityscapes")
    return (list_path,
            os.path.join(base, "leftImg8bit/train/city/b_000000_000002_leftImg8bit.png"),
            os.path.join(base, "gtFine/train/city/b_000000_000002_gtFine_labelIds.png"))


def raises(parts, call):
    """Check that ``call`` raises DatasetError whose message holds every part.

    Parts with a / are file names; the others are phrases, looked for outside file names (the
    temporary folders are named after the tests and would match them).
    """
    with pytest.raises(DatasetError) as info:
        call()
    message = str(info.value)
    phrases = re.sub(r"\S*/\S*", "<file>", message)
    for part in map(str, parts):
        assert part in (message if "/" in part else phrases), (part, message)
    return message


def test_missing_dataset_root_names_the_root(tmp_path):
    missing = tmp_path / "nowhere"
    raises(["DATASET.ROOT", missing], lambda: build_dataset(dataset_cfg(missing), "train"))


def test_missing_list_file_names_the_list(tmp_path):
    two_samples(tmp_path)
    cfg = dataset_cfg(tmp_path, **{"DATASET.TRAIN_SET": "list/cityscapes/nope.lst"})
    raises([os.path.join(tmp_path, "list/cityscapes/nope.lst"), "not found"],
           lambda: build_dataset(cfg, "train"))


def test_missing_image_names_the_image_and_the_list_line(tmp_path):
    list_path, image, _ = two_samples(tmp_path)
    os.remove(image)
    raises([f"{list_path}:2", image, "image not found"],
           lambda: build_dataset(dataset_cfg(tmp_path), "train"))


def test_missing_label_names_the_label_and_the_list_line(tmp_path):
    list_path, _, label = two_samples(tmp_path)
    os.remove(label)
    raises([f"{list_path}:2", label, "label not found"],
           lambda: build_dataset(dataset_cfg(tmp_path), "train"))


@pytest.mark.parametrize("garbage, phrase", [
    (b"garbage " * 60, "not a PNG file"),
    (PNG_SIGNATURE + b"garbage " * 60 + PNG_END, "cannot decode image")])
def test_unreadable_png_of_garbage_bytes_names_the_file_and_line(tmp_path, garbage, phrase):
    list_path, image, _ = two_samples(tmp_path)
    with open(image, "wb") as f:
        f.write(garbage)
    dataset = build_dataset(dataset_cfg(tmp_path), "train")
    dataset[0]
    raises([f"{list_path}:2", image, phrase], lambda: dataset[1])


@pytest.mark.parametrize("keep", ["half", "all_but_iend"])
def test_truncated_png_is_detected_and_names_the_file_and_line(tmp_path, keep):
    list_path, _, label = two_samples(tmp_path)
    rng = np.random.default_rng(0)
    write_png(label, rng.choice(np.array([7, 8, 26], np.uint8), (32, 64)))
    with open(label, "rb") as f:
        data = f.read()
    with open(label, "wb") as f:
        f.write(data[:len(data) // 2] if keep == "half" else data[:-12])
    dataset = build_dataset(dataset_cfg(tmp_path), "train")
    raises([f"{list_path}:2", label, "is truncated"], lambda: dataset[1])


def test_label_that_is_not_a_single_channel_8_bit_image_is_rejected(tmp_path):
    list_path, _, label = two_samples(tmp_path)
    write_png(label, np.zeros((32, 64, 3), np.uint8))
    dataset = build_dataset(dataset_cfg(tmp_path), "train")
    raises([f"{list_path}:2", label, "single-channel"], lambda: dataset[1])


def test_image_and_label_of_different_sizes_name_both_files_and_sizes(tmp_path):
    list_path, image, label = two_samples(tmp_path)
    write_png(label, np.full((16, 64), 7, np.uint8))
    dataset = build_dataset(dataset_cfg(tmp_path), "val", list_path="list/cityscapes/train.lst")
    raises([f"{list_path}:2", image, label, "32x64", "16x64"], lambda: dataset[1])


def test_empty_list_names_the_list(tmp_path):
    list_path, _, _ = two_samples(tmp_path)
    with open(list_path, "w") as f:
        f.write("\n")
    raises([list_path, "list file is empty"], lambda: build_dataset(dataset_cfg(tmp_path), "train"))


def test_list_mixing_labelled_and_image_only_lines_names_the_odd_line(tmp_path):
    list_path, _, _ = two_samples(tmp_path)
    with open(list_path) as f:
        lines = f.read().splitlines()
    with open(list_path, "w") as f:
        f.write(lines[0] + "\n" + lines[1].split("\t")[0] + "\n")
    raises([f"{list_path}:2", "1 column", "line 1"],
           lambda: build_dataset(dataset_cfg(tmp_path), "test", "list/cityscapes/train.lst"))


def test_list_line_with_three_fields_names_the_line(tmp_path):
    list_path, _, _ = two_samples(tmp_path)
    with open(list_path, "a") as f:
        f.write("x.png y.png z.png\n")
    raises([f"{list_path}:3", "3 fields"], lambda: build_dataset(dataset_cfg(tmp_path), "train"))


def test_unknown_dataset_name_lists_the_valid_names(tmp_path):
    two_samples(tmp_path)
    cfg = dataset_cfg(tmp_path)
    cfg.DATASET.DATASET = "kitti"
    message = raises(["kitti"], lambda: build_dataset(cfg, "train"))
    assert re.search(r"acdc.*cityscapes", message)


def test_unknown_split_lists_the_valid_splits(tmp_path):
    two_samples(tmp_path)
    raises(["'training'", "train", "val", "test"],
           lambda: build_dataset(dataset_cfg(tmp_path), "training"))


def test_train_and_val_splits_refuse_an_image_only_list(tmp_path):
    list_path = make_cityscapes_tree(tmp_path, [("a", IMAGE, None)], "test.lst", "test")
    cfg = dataset_cfg(tmp_path, **{"DATASET.TEST_SET": "list/cityscapes/test.lst"})
    raises([list_path, "val split needs labels"], lambda: build_dataset(cfg, "val"))
    assert build_dataset(cfg, "test").has_labels is False


def test_num_classes_other_than_19_is_rejected(tmp_path):
    two_samples(tmp_path)
    cfg = dataset_cfg(tmp_path, **{"DATASET.NUM_CLASSES": 20})
    raises(["NUM_CLASSES is 20", "19 classes"], lambda: build_dataset(cfg, "train"))


def test_conditions_are_rejected_for_cityscapes(tmp_path):
    two_samples(tmp_path)
    cfg = dataset_cfg(tmp_path, **{"DATASET.CONDITIONS": ["fog"]})
    raises(["CONDITIONS", "acdc"], lambda: build_dataset(cfg, "train"))
