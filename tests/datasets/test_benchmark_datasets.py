"""PASCAL-Context, COCO-Stuff, LIP and PASCAL VOC: label mappings through real PNGs against the
references' tables, layouts and list lines, split names, errors, and the training transforms."""
import logging
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from lib.config import load_cfg
from lib.datasets import DatasetError, build_dataset, dataset_class
from lib.datasets.ade20k import ShortSideFirst
from lib.datasets.lip import CropSizeFirst
from lib.datasets.transforms import TrainTransform
from tests.helpers import write_png

from .helpers import REFERENCE_COCOSTUFF_MAPPING, dataset_cfg

# LIP's left/right classes of the reference loader's flip (left_idx, right_idx there).
LIP_LEFT, LIP_RIGHT = (14, 16, 18), (15, 17, 19)

EVERY_VALUE = np.arange(256, dtype=np.uint8).reshape(16, 16)  # every 8-bit value once

# Where each dataset's files go (relative to <root>/<folder>/, then the list's relative paths).
LAYOUT = {
    "pascal_ctx": ("", "", "train/image/{}.jpg", "train/label/{}.png", "train.lst"),
    "cocostuff": ("", "", "train/image/{}.jpg", "train/label/{}.png", "train.lst"),
    "lip": ("TrainVal_images", "TrainVal_parsing_annotations", "train_images/{}.jpg",
            "train_segmentations/{}.png", "trainList.txt"),
    "pascal_voc": ("", "", "VOCdevkit/VOC2012/JPEGImages/{}.jpg",
                   "VOCdevkit/VOC2012/SegmentationClassAug/{}.png", "train.lst"),
}


def write_sample(root, dataset, image, label, stem="2008_000002", extra=""):
    """One image and label PNG in ``dataset``'s layout and a list line naming them (plus
    ``extra`` fields); returns (image path, label path)."""
    image_dir, label_dir, image_rel, label_rel, list_name = LAYOUT[dataset]
    image_rel, label_rel = image_rel.format(stem), label_rel.format(stem)
    image_path = os.path.join(root, dataset, image_dir, image_rel)
    label_path = os.path.join(root, dataset, label_dir, label_rel)
    write_png(image_path, image)
    if isinstance(label, Image.Image):
        os.makedirs(os.path.dirname(label_path), exist_ok=True)
        label.save(label_path)
    else:
        write_png(label_path, label)
    list_path = os.path.join(root, "list", dataset, list_name)
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    with open(list_path, "w") as f:
        f.write(f"{image_rel} {label_rel}{extra}\n")
    return image_path, label_path


def cfg_for(root, dataset, classes, **overrides):
    list_name = LAYOUT[dataset][4]
    return dataset_cfg(root, dataset, **{"DATASET.NUM_CLASSES": classes,
                                         "DATASET.TRAIN_SET": f"list/{dataset}/{list_name}",
                                         "DATASET.TEST_SET": f"list/{dataset}/{list_name}",
                                         **overrides})


def mapped(root, dataset, classes, label):
    """The class of each pixel of ``label``, values out of range read as ignored (their error:
    tests/datasets/test_label_values.py)."""
    write_sample(root, dataset, np.full(label.shape + (3,), 90, np.uint8), label)
    cfg = cfg_for(root, dataset, classes, **{"DATASET.OUT_OF_RANGE_LABELS": "ignore"})
    return build_dataset(cfg, "val")[0][1].numpy()


def expected_from(table):
    """The class of each value of EVERY_VALUE from a {stored value: class} table (else 255)."""
    return np.vectorize(lambda v: table.get(int(v), 255))(EVERY_VALUE)


def test_cocostuff_maps_the_182_values_with_the_reference_table(tmp_path):
    table = {value: i - 1 for i, value in enumerate(REFERENCE_COCOSTUFF_MAPPING) if i > 0}
    assert len(table) == 171
    got = mapped(tmp_path, "cocostuff", 171, EVERY_VALUE)
    np.testing.assert_array_equal(got, expected_from(table))
    for unused in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91, 0, 183, 255):
        assert (got[EVERY_VALUE == unused] == 255).all()


@pytest.mark.parametrize("dataset, classes, table", [
    ("pascal_ctx", 59, {k: k - 1 for k in range(1, 60)}),  # 0 ignored, k -> k - 1
    ("pascal_ctx", 60, {k: k for k in range(60)}),  # as stored
    ("lip", 20, {k: k for k in range(20)}),  # as stored, background a class
    ("pascal_voc", 21, {k: k for k in range(21)}),  # VOC 2012, 255 ignored
    ("pascal_voc", 20, {k: k - 1 for k in range(1, 21)}),  # the object classes only
])
def test_stored_values_map_to_classes_through_a_real_png(tmp_path, dataset, classes, table):
    np.testing.assert_array_equal(mapped(tmp_path, dataset, classes, EVERY_VALUE),
                                  expected_from(table))


def test_class_tables_of_the_new_datasets():
    lip = dataset_class("lip")
    assert lip.class_names[14:] == ("left-arm", "right-arm", "left-leg", "right-leg",
                                    "left-shoe", "right-shoe")
    assert lip.palette[14].tolist() == [51, 170, 221] and lip.palette[19].tolist() == [255, 170, 0]
    voc = dataset_class("pascal_voc")
    assert voc is dataset_class("pascal_voc", 21) and voc.class_names[15] == "person"
    # The VOC colour map: 1 aeroplane (128, 0, 0), 15 person (192, 128, 128).
    assert voc.palette[1].tolist() == [128, 0, 0] and voc.palette[15].tolist() == [192, 128, 128]
    assert dataset_class("pascal_voc", 20).palette[14].tolist() == [192, 128, 128]
    ctx59, ctx60 = dataset_class("pascal_ctx", 59), dataset_class("pascal_ctx", 60)
    assert ctx59 is dataset_class("pascal_ctx") and ctx60.class_names[1:] == ctx59.class_names
    assert ctx59.class_names[36] == "person" and ctx60.train_id_to_label[37] == 37
    coco = dataset_class("cocostuff")
    assert (coco.class_names[0], coco.class_names[79], coco.class_names[80]) == (
        "person", "toothbrush", "banner")
    assert coco.train_id_to_label[79] == 90 and coco.train_id_to_label[170] == 182
    for cls in (lip, voc, ctx59, ctx60, coco):
        assert cls.palette.shape == (cls.num_classes, 3) == (len(cls.class_weight_table), 3)
        assert cls.eval_protocol == ("lip" if cls is lip else "ade20k")
    with pytest.raises(DatasetError, match=r"NUM_CLASSES is 20 but pascal_ctx has 59 .*60"):
        dataset_class("pascal_ctx", 20)


def test_a_palette_png_is_read_as_its_indices(tmp_path):
    # VOC's SegmentationClass files: indexed colour with the VOC palette; 255 is the void outline.
    indices = np.array([[0, 15, 15, 255], [1, 20, 255, 0]], np.uint8)
    png = Image.fromarray(indices, mode="P")
    png.putpalette(dataset_class("pascal_voc").palette.flatten().tolist() + [224, 224, 192] * 235)
    write_sample(tmp_path, "pascal_voc", np.zeros((2, 4, 3), np.uint8), png)
    label = build_dataset(cfg_for(tmp_path, "pascal_voc", 21), "val")[0][1].numpy()
    np.testing.assert_array_equal(label, indices)


def test_lip_reads_images_and_labels_from_the_two_release_folders_and_long_lines(tmp_path):
    # The reference's training lists carry the mirrored annotation and a fourth field.
    image_path, label_path = write_sample(
        tmp_path, "lip", np.full((8, 6, 3), 50, np.uint8), np.full((8, 6), 3, np.uint8),
        stem="100034_483681", extra=" train_segmentations_reversed/100034_483681.png 1")
    assert "/lip/TrainVal_images/train_images/" in image_path
    assert "/lip/TrainVal_parsing_annotations/train_segmentations/" in label_path
    data = build_dataset(cfg_for(tmp_path, "lip", 20), "val")
    _, label, size, name = data[0]
    assert name == "100034_483681" and size.tolist() == [8, 6] and (label == 3).all()
    os.remove(label_path)
    with pytest.raises(DatasetError, match="trainList.txt:1: label not found") as info:
        build_dataset(cfg_for(tmp_path, "lip", 20), "val")
    assert label_path in str(info.value)


def test_a_line_with_too_many_fields_names_the_list_line(tmp_path):
    write_sample(tmp_path, "lip", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8),
                 extra=" a b c")
    with pytest.raises(DatasetError, match=r"trainList.txt:1: .*at most 4 fields.*got 5"):
        build_dataset(cfg_for(tmp_path, "lip", 20), "val")
    write_sample(tmp_path, "cocostuff", np.zeros((4, 4, 3), np.uint8),
                 np.zeros((4, 4), np.uint8), extra=" x")
    with pytest.raises(DatasetError, match=r"train.lst:1: expected 'image label' or 'image', got 3"):
        build_dataset(cfg_for(tmp_path, "cocostuff", 171), "val")


@pytest.mark.parametrize("dataset, classes, split_name, list_name", [
    ("pascal_ctx", 59, "train", "train.lst"),
    ("pascal_voc", 21, "val", "val.lst"),
    ("pascal_voc", 21, "testval", "val.lst"),
    ("lip", 20, "val", "valList.txt"),
    ("lip", 20, "train", "trainList.txt"),
])
def test_a_split_name_stands_for_the_list_of_the_split(tmp_path, dataset, classes, split_name,
                                                       list_name):
    write_sample(tmp_path, dataset, np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), np.uint8))
    os.replace(os.path.join(tmp_path, "list", dataset, LAYOUT[dataset][4]),
               os.path.join(tmp_path, "list", dataset, list_name))
    cfg = cfg_for(tmp_path, dataset, classes, **{"DATASET.TRAIN_SET": split_name,
                                                 "DATASET.TEST_SET": split_name})
    for split in ("train", "val"):
        assert build_dataset(cfg, split).list_file == os.path.join(
            str(tmp_path), "list", dataset, list_name)


def test_ignore_label_minus_one_of_a_reference_file_is_read_as_255(tmp_path, caplog):
    path = tmp_path / "reference.yaml"
    path.write_text("DATASET: {DATASET: pascal_ctx, NUM_CLASSES: 59, TRAIN_SET: train}\n"
                    "TRAIN: {IGNORE_LABEL: -1}\n")
    with caplog.at_level(logging.WARNING):
        cfg = load_cfg(str(path))
    assert cfg.TRAIN.IGNORE_LABEL == 255 and "IGNORE_LABEL -1" in caplog.text
    assert load_cfg(str(path), ["TRAIN.IGNORE_LABEL", "-1"]).TRAIN.IGNORE_LABEL == 255


@pytest.mark.parametrize("dataset, classes", [("pascal_ctx", 59), ("cocostuff", 171)])
def test_pascal_context_and_coco_stuff_resize_the_short_side_before_the_random_scale(
        tmp_path, dataset, classes):
    # 30 x 60 with BASE_SIZE 40: short side -> 40 x 80 (nearest), then scale 0.5 (SCALE_FACTOR
    # 0) sets the long side to 20: 10 x 20, padded to the 16 x 24 crop with 255.
    label = np.random.default_rng(1).integers(1, 50, (30, 60), dtype=np.uint8)
    write_sample(tmp_path, dataset, np.full((30, 60, 3), 50, np.uint8), label)
    cfg = cfg_for(tmp_path, dataset, classes, **{
        "TRAIN.BASE_SIZE": 40, "TRAIN.SCALE_FACTOR": 0, "TRAIN.IMAGE_SIZE": [24, 16],
        "TRAIN.FLIP": False})
    data = build_dataset(cfg, "train")
    assert isinstance(data.train_transform, ShortSideFirst)
    first = cv2.resize(label, (80, 40), interpolation=cv2.INTER_NEAREST)
    second = cv2.resize(first, (20, 10), interpolation=cv2.INTER_NEAREST)
    expected = np.full((16, 24), 255)
    expected[:10, :20] = data.label_to_train_id[second]
    np.testing.assert_array_equal(data[0][1].numpy(), expected)


def test_voc_trains_on_the_random_scale_alone_as_the_ovenet_loader(tmp_path):
    label = np.random.default_rng(2).integers(0, 21, (30, 60), dtype=np.uint8)
    write_sample(tmp_path, "pascal_voc", np.full((30, 60, 3), 50, np.uint8), label)
    cfg = cfg_for(tmp_path, "pascal_voc", 21, **{
        "TRAIN.BASE_SIZE": 40, "TRAIN.SCALE_FACTOR": 0, "TRAIN.IMAGE_SIZE": [24, 16],
        "TRAIN.FLIP": False})
    data = build_dataset(cfg, "train")
    assert isinstance(data.train_transform, TrainTransform)
    expected = np.full((16, 24), 255)
    expected[:10, :20] = cv2.resize(label, (20, 10), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(data[0][1].numpy(), expected)


def test_lip_resizes_to_the_crop_whatever_the_aspect_ratio_first(tmp_path):
    # 30 x 60 -> the 16 x 24 crop (nearest), then scale 0.5 of BASE_SIZE 24: 8 x 12, padded.
    label = np.random.default_rng(3).integers(0, 20, (30, 60), dtype=np.uint8)
    write_sample(tmp_path, "lip", np.full((30, 60, 3), 50, np.uint8), label)
    cfg = cfg_for(tmp_path, "lip", 20, **{"TRAIN.BASE_SIZE": 24, "TRAIN.SCALE_FACTOR": 0,
                                          "TRAIN.IMAGE_SIZE": [24, 16], "TRAIN.FLIP": False})
    data = build_dataset(cfg, "train")
    assert isinstance(data.train_transform, CropSizeFirst)
    first = cv2.resize(label, (24, 16), interpolation=cv2.INTER_NEAREST)
    expected = np.full((16, 24), 255)
    expected[:8, :12] = cv2.resize(first, (12, 8), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(data[0][1].numpy(), expected)


def test_a_lip_training_flip_mirrors_the_image_and_swaps_left_and_right_parts(tmp_path):
    # Left arm, leg and shoe on the image's right, right ones on its left, background between.
    label = np.zeros((6, 8), np.uint8)
    for row, (left, right) in enumerate(zip(LIP_LEFT, LIP_RIGHT, strict=True)):
        label[2 * row, 6:] = left
        label[2 * row + 1, :2] = right
    label[:, 3] = 5  # upper clothes, not a left/right class
    bgr = np.random.default_rng(4).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    write_sample(tmp_path, "lip", bgr, label)
    swap = {**dict(zip(LIP_LEFT, LIP_RIGHT, strict=True)),
            **dict(zip(LIP_RIGHT, LIP_LEFT, strict=True))}
    flipped = np.vectorize(lambda v: swap.get(int(v), int(v)))(label[:, ::-1])
    # Crop = image size and no random scale: the only draw left is the flip.
    cfg = cfg_for(tmp_path, "lip", 20, **{"TRAIN.MULTI_SCALE": False, "TRAIN.IMAGE_SIZE": [8, 6]})
    data = build_dataset(cfg, "train")
    image0 = build_dataset(cfg_for(tmp_path, "lip", 20), "val")[0][0]
    seen = set()
    for epoch in range(12):
        image, got, _, _ = data[(0, epoch)]
        if np.array_equal(got.numpy(), flipped):
            assert image.flip(-1).equal(image0)
            seen.add("flipped")
        else:
            np.testing.assert_array_equal(got.numpy(), label)
            assert image.equal(image0)
            seen.add("unflipped")
    assert seen == {"flipped", "unflipped"}
    assert (flipped[0, :2] == 15).all() and (flipped[1, 6:] == 14).all()


def test_a_lip_training_flip_comes_before_the_scale_so_the_padding_stays_bottom_right(tmp_path):
    # The reference (HRNet-OCR lib/datasets/lip.py): flip the image as read (swapping left and
    # right parts), resize it to the crop, then scale and crop with gen_sample(is_flip=False).
    # 30 x 60 -> the 16 x 24 crop, then scale 0.5 of BASE_SIZE 24: 8 x 12, padded at the
    # bottom/right to 16 x 24 whether the sample was flipped or not.
    label = np.random.default_rng(5).integers(0, 20, (30, 60), dtype=np.uint8)
    label[:, :20] = LIP_LEFT[0]  # left arm in the image's left third: flipping moves it
    write_sample(tmp_path, "lip", np.full((30, 60, 3), 200, np.uint8), label)
    cfg = cfg_for(tmp_path, "lip", 20, **{"TRAIN.BASE_SIZE": 24, "TRAIN.SCALE_FACTOR": 0,
                                          "TRAIN.IMAGE_SIZE": [24, 16], "TRAIN.FLIP": True})
    data = build_dataset(cfg, "train")
    swap = np.arange(256, dtype=np.uint8)
    for left, right in zip(LIP_LEFT, LIP_RIGHT, strict=True):
        swap[left], swap[right] = right, left

    def reference_order(raw):
        first = cv2.resize(raw, (24, 16), interpolation=cv2.INTER_NEAREST)
        expected = np.full((16, 24), 255)
        expected[:8, :12] = cv2.resize(first, (12, 8), interpolation=cv2.INTER_NEAREST)
        return expected

    unflipped = reference_order(label)
    flipped = reference_order(swap[label[:, ::-1]])
    black = torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]).view(3, 1, 1)
    seen = set()
    for epoch in range(12):
        image, got, _, _ = data[(0, epoch)]
        got = got.numpy()
        if np.array_equal(got, flipped):
            seen.add("flipped")
        else:
            np.testing.assert_array_equal(got, unflipped)
            seen.add("unflipped")
        # The image's padding (black) is where the label's is.
        assert torch.allclose(image[:, 8:, :], black.expand(3, 8, 24), atol=1e-6)
        assert torch.allclose(image[:, :, 12:], black.expand(3, 16, 12), atol=1e-6)
        assert not torch.allclose(image[:, :8, :12], black.expand(3, 8, 12), atol=1e-3)
    assert seen == {"flipped", "unflipped"}
    assert (flipped[:8, 8:12] == LIP_RIGHT[0]).all() and (unflipped[:8, :4] == LIP_LEFT[0]).all()
