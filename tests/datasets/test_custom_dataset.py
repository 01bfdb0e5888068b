"""A dataset of your own described in the config: class tables, label mapping, reading, errors."""
import logging
import os

import cv2
import numpy as np
import pytest
import torch

from lib.datasets import CustomDataset, DatasetError, build_dataset, dataset_tables
from lib.datasets.custom import class_tables, distinct_palette
from tests.helpers import write_png

from .helpers import dataset_cfg

NAMES = ["background", "leaf", "fruit"]
# Raw values as an annotation tool might store them: several raw values per class, the rest void.
LABEL_MAP = [[0, 0], [40, 1], [41, 1], [200, 2], [10, 0]]


def own_cfg(root, **overrides):
    values = {"DATASET.NUM_CLASSES": 3, "DATASET.CLASS_NAMES": list(NAMES),
              "DATASET.LABEL_MAP": [list(p) for p in LABEL_MAP],
              "DATASET.TRAIN_SET": "list/orchard/train.lst",
              "DATASET.TEST_SET": "list/orchard/val.lst"}
    values.update(overrides)
    return dataset_cfg(root, "orchard", **values)


@pytest.fixture
def orchard(tmp_path):
    """``<tmp>/orchard/`` with two JPEG images, raw-value label PNGs and train/val lists."""
    rng = np.random.default_rng(0)
    raws = np.array([0, 10, 40, 41, 200, 7, 255], dtype=np.uint8)  # 7 and 255 are not mapped
    lines = []
    os.makedirs(tmp_path / "orchard" / "photos")
    for stem in ("tree_a", "tree_b"):
        image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
        assert cv2.imwrite(str(tmp_path / "orchard" / "photos" / f"{stem}.jpg"), image)
        write_png(tmp_path / "orchard" / "masks" / f"{stem}.png", rng.choice(raws, (24, 40)))
        lines.append(f"photos/{stem}.jpg\tmasks/{stem}.png\n")
    for split in ("train", "val"):
        list_file = tmp_path / "list" / "orchard" / f"{split}.lst"
        os.makedirs(list_file.parent, exist_ok=True)
        list_file.write_text("".join(lines))
    return tmp_path


def test_label_map_maps_listed_raw_values_and_ignores_the_rest():
    tables = class_tables(NAMES, LABEL_MAP)
    expected = np.full(256, 255)
    for raw, c in LABEL_MAP:
        expected[raw] = c
    np.testing.assert_array_equal(tables.label_to_train_id, expected)
    # Written label PNGs get the first raw value listed for each class.
    np.testing.assert_array_equal(tables.train_id_to_label, [0, 40, 200])
    assert tables.class_names == tuple(NAMES) and tables.num_classes == 3
    assert tables.class_weight_table is None


def test_empty_label_map_reads_raw_values_as_class_indices_and_ignores_larger_ones():
    tables = class_tables(NAMES)
    assert list(tables.label_to_train_id[:4]) == [0, 1, 2, 255]
    assert set(tables.label_to_train_id[3:]) == {255}
    np.testing.assert_array_equal(tables.train_id_to_label, [0, 1, 2])


def test_default_palette_is_distinct_fixed_and_never_black():
    palette = distinct_palette(255)
    assert len({tuple(c) for c in palette}) == 255
    assert not (palette == 0).all(axis=1).any()
    # The PASCAL VOC colours of ids 1, 2, 3, 8 (bit 3 of the id is the second-highest red bit).
    assert [tuple(palette[i]) for i in (0, 1, 2, 7)] == [(128, 0, 0), (0, 128, 0), (128, 128, 0),
                                                         (64, 0, 0)]
    np.testing.assert_array_equal(class_tables(NAMES).palette, palette[:3])


def test_given_palette_and_weights_are_used():
    tables = class_tables(NAMES, palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]],
                          class_weights=[0.5, 1, 2.0])
    np.testing.assert_array_equal(tables.palette, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert tables.class_weight_table == (0.5, 1.0, 2.0)


def test_items_are_read_from_any_image_format_and_labels_mapped(orchard):
    dataset = build_dataset(own_cfg(orchard), "val")
    assert isinstance(dataset, CustomDataset)
    assert dataset.names == ["tree_a", "tree_b"]
    assert dataset.class_names == tuple(NAMES) and dataset.conditions == ()
    assert dataset.condition("tree_a") is None
    image, label, size, name = dataset[1]
    raw = cv2.imread(str(orchard / "orchard" / "masks" / "tree_b.png"), cv2.IMREAD_UNCHANGED)
    expected = np.full(raw.shape, 255)
    for value, c in LABEL_MAP:
        expected[raw == value] = c
    np.testing.assert_array_equal(label.numpy(), expected)
    assert image.shape == (3, 24, 40) and size.tolist() == [24, 40] and name == "tree_b"
    assert {0, 1, 2, 255} <= set(np.unique(expected))


def test_ignore_label_replaces_unmapped_raw_values(orchard):
    dataset = build_dataset(own_cfg(orchard, **{"TRAIN.IGNORE_LABEL": 250}), "val")
    label = dataset[0][1].numpy()
    raw = cv2.imread(str(orchard / "orchard" / "masks" / "tree_a.png"), cv2.IMREAD_UNCHANGED)
    assert (label[(raw == 7) | (raw == 255)] == 250).all()
    assert (label[raw == 41] == 1).all()


def test_training_split_reads_class_weights(orchard):
    cfg = own_cfg(orchard, **{"DATASET.CLASS_WEIGHTS": [1.0, 2.0, 3.0],
                              "TRAIN.IMAGE_SIZE": [16, 16], "TRAIN.BASE_SIZE": 40})
    dataset = build_dataset(cfg, "train")
    assert torch.equal(dataset.class_weights, torch.tensor([1.0, 2.0, 3.0]))
    assert dataset.class_weight_table == (1.0, 2.0, 3.0)
    image, label, _, _ = dataset[(0, 0)]
    assert image.shape == (3, 16, 16) and label.shape == (16, 16)


@pytest.mark.parametrize("key, value, message", [
    ("DATASET.LABEL_MAP", [[0, 0], [40, 3], [200, 2]], r"LABEL_MAP entry 1 \[40, 3\]: class index 3"),
    ("DATASET.LABEL_MAP", [[0, 0], [256, 1], [200, 2]], r"LABEL_MAP entry 1 .*raw value 256"),
    ("DATASET.LABEL_MAP", [[0, 0], [-1, 1], [200, 2]], r"LABEL_MAP entry 1 .*raw value -1"),
    ("DATASET.LABEL_MAP", [[0, 0], [40, 1], [0, 2]], r"entry 2 \[0, 2\]: raw value 0 is listed twice"),
    ("DATASET.LABEL_MAP", [[0, 0], [40, 1]], r"LABEL_MAP gives no raw value to class\(es\) 2 \('fruit'\)"),
    ("DATASET.LABEL_MAP", [[0, 0], [40], [200, 2]], r"LABEL_MAP entry 1 must be \[raw value, class index\]"),
    ("DATASET.PALETTE", [[0, 0, 0], [1, 1, 1]], "PALETTE has 2 colours for 3 classes"),
    ("DATASET.PALETTE", [[0, 0, 0], [1, 1, 256], [2, 2, 2]], r"PALETTE entry 1 must be \[R, G, B\]"),
    ("DATASET.PALETTE", [[0, 0, 0], [1, 1], [2, 2, 2]], r"PALETTE entry 1"),
    ("DATASET.CLASS_WEIGHTS", [1.0, 1.0], "CLASS_WEIGHTS has 2 weights for 3 classes"),
    ("DATASET.CLASS_WEIGHTS", [1.0, -1.0, 1.0], "CLASS_WEIGHTS entry 1 must be a finite number"),
    ("DATASET.CLASS_NAMES", ["a", "b", "a"], r"CLASS_NAMES names a class twice: \['a'\]"),
    ("DATASET.CLASS_NAMES", ["a", "b", "c", "d"], "NUM_CLASSES is 3 but DATASET.CLASS_NAMES names 4"),
    ("DATASET.CLASS_NAMES", [], r"'orchard' is not built in .*needs DATASET.CLASS_NAMES"),
    ("DATASET.CLASS_NAMES", ["a", "", "c"], "CLASS_NAMES entry 1 must be a non-empty name"),
])
def test_bad_key_is_named(tmp_path, key, value, message):
    cfg = own_cfg(tmp_path, **{key: value})
    with pytest.raises(DatasetError, match=message):
        dataset_tables(cfg)
    with pytest.raises(DatasetError, match=message):
        build_dataset(cfg, "val")


def test_built_in_dataset_accepts_its_own_class_names_only(tmp_path):
    names = list(dataset_tables(dataset_cfg(tmp_path)).class_names)
    assert len(names) == 19 and names[0] == "road"
    dataset_tables(dataset_cfg(tmp_path, **{"DATASET.CLASS_NAMES": names}))
    swapped = [names[1], names[0], *names[2:]]
    with pytest.raises(DatasetError, match="CLASS_NAMES .* disagrees with the cityscapes"):
        dataset_tables(dataset_cfg(tmp_path, **{"DATASET.CLASS_NAMES": swapped}))
    for key, value in (("LABEL_MAP", [[7, 0]]), ("PALETTE", [[0, 0, 0]] * 19),
                       ("CLASS_WEIGHTS", [1.0] * 19)):
        with pytest.raises(DatasetError, match=f"DATASET.{key} describes a dataset of your own"):
            dataset_tables(dataset_cfg(tmp_path, **{f"DATASET.{key}": value}))


def test_conditions_are_refused_for_a_dataset_of_your_own(orchard):
    with pytest.raises(DatasetError, match="CONDITIONS .* applies to acdc only"):
        build_dataset(own_cfg(orchard, **{"DATASET.CONDITIONS": ["fog"]}), "val")


def _val_loader_log(root, caplog, batch_size=4):
    from lib.datasets.loaders import eval_loader

    dataset = build_dataset(own_cfg(str(root)), "val")
    with caplog.at_level(logging.INFO, logger="lib.datasets.loaders"):
        loader = eval_loader(dataset, batch_size, 0, False)
    return loader, caplog.text


def test_images_of_one_size_are_evaluated_in_batches(orchard, caplog):
    loader, log = _val_loader_log(orchard, caplog)
    assert loader.batch_size == 4 and "one image per batch" not in log
    images, labels, sizes, names = next(iter(loader))
    assert tuple(images.shape) == (2, 3, 24, 40) and list(names) == ["tree_a", "tree_b"]


def test_images_of_different_sizes_are_evaluated_one_per_batch_naming_one(orchard, caplog):
    wider = orchard / "orchard" / "photos" / "tree_b.jpg"
    assert cv2.imwrite(str(wider), np.zeros((24, 48, 3), np.uint8))
    write_png(orchard / "orchard" / "masks" / "tree_b.png", np.zeros((24, 48), np.uint8))
    loader, log = _val_loader_log(orchard, caplog)
    assert loader.batch_size == 1
    assert f"{wider} is 24x48 (height x width), " in log


def test_an_exif_turned_image_counts_with_the_size_it_is_read_at(orchard, caplog):
    from PIL import Image

    # tree_b stored as 40x24 with the orientation "turn by 90 degrees": read as 24x40.
    photo = orchard / "orchard" / "photos" / "tree_b.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((40, 24, 3), np.uint8)).save(photo, exif=exif)
    assert cv2.imread(str(photo)).shape == (24, 40, 3)
    loader, log = _val_loader_log(orchard, caplog)
    assert loader.batch_size == 4 and "one image per batch" not in log
