"""ADE20K: label mapping through real files, JPEG images, the training transform, make_lists and
the synthetic generator."""
import glob
import os

import cv2
import numpy as np
import pytest

from lib.datasets import DatasetError, build_dataset, dataset_class
from lib.datasets.ade20k import ShortSideFirst
from lib.datasets.lists import make_lists
from lib.datasets.synthetic import ade20k as ade20k_scenes
from lib.datasets.transforms import TrainTransform
from tests.helpers import write_png
from tools import make_synthetic_dataset as synthetic

from .helpers import dataset_cfg, touch, unnormalize

STEM = "ADE_train_00000001"


def ade_cfg(root, **overrides):
    return dataset_cfg(root, "ade20k", **{"DATASET.NUM_CLASSES": 150, **overrides})


def write_sample(root, image, label, split="training", stem=STEM, list_name="train.lst"):
    """One ADE20K-named JPEG image and PNG annotation, and a list holding them."""
    image_rel = f"images/{split}/{stem}.jpg"
    label_rel = f"annotations/{split}/{stem}.png"
    write_png(os.path.join(root, "ade20k", image_rel), image)
    write_png(os.path.join(root, "ade20k", label_rel), label)
    list_path = os.path.join(root, "list", "ade20k", list_name)
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    with open(list_path, "w") as f:
        f.write(f"{image_rel}\t{label_rel}\n")
    return os.path.join(root, "ade20k", image_rel)


def test_raw_0_is_ignored_and_raw_k_is_class_k_minus_1_through_a_real_png(tmp_path):
    # Every 8-bit value once: 0 ("other") and 151..255 (not ADE20K classes) -> 255; 151..254
    # are out of range, read here as ignored (tests/datasets/test_label_values.py: the error).
    raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
    write_sample(tmp_path, np.full((16, 16, 3), 128, np.uint8), raw, split="validation",
                 list_name="val.lst")
    cfg = ade_cfg(tmp_path, **{"DATASET.OUT_OF_RANGE_LABELS": "ignore"})
    _, label, _, name = build_dataset(cfg, "val")[0]
    expected = np.where((raw >= 1) & (raw <= 150), raw.astype(np.int64) - 1, 255)
    np.testing.assert_array_equal(label.numpy(), expected)
    assert name == STEM


def test_class_k_is_written_back_as_raw_k_plus_1():
    ade = dataset_class("ade20k")
    assert ade.train_id_to_label.tolist() == list(range(1, 151))
    assert ade.label_to_train_id[ade.train_id_to_label].tolist() == list(range(150))
    assert (len(ade.class_names), ade.num_classes, ade.palette.shape) == (150, 150, (150, 3))
    assert ade.class_names[:3] == ("wall", "building", "sky") and ade.class_names[-1] == "flag"
    assert ade.palette[0].tolist() == [120, 120, 120] and ade.palette[-1].tolist() == [92, 0, 255]
    assert ade.eval_protocol == "ade20k" and ade.conditions == ()
    with pytest.raises(ValueError):
        ade.palette[0, 0] = 1


def test_jpeg_images_are_decoded_and_normalised(tmp_path):
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    path = write_sample(tmp_path, bgr, np.ones((24, 40), np.uint8), split="validation",
                        list_name="val.lst")
    data = build_dataset(ade_cfg(tmp_path), "val")
    image, label, size, _ = data[0]
    decoded = cv2.imread(path, cv2.IMREAD_COLOR)  # JPEG is lossy: compare with its decoding
    assert size.tolist() == [24, 40] and (label.numpy() == 0).all()
    np.testing.assert_allclose(unnormalize(image), decoded[:, :, ::-1], atol=1e-3)
    assert len(data.class_weights) == 150 and data.class_weights.eq(1).all()


@pytest.mark.parametrize("damage,message", [
    (lambda data: data[:len(data) // 2], "truncated or damaged"),
    (lambda data: b"GIF89a" + data[6:], "not a JPEG file"),
])
def test_a_damaged_jpeg_is_reported_with_its_file_and_list_line(tmp_path, damage, message):
    path = write_sample(tmp_path, np.full((32, 48, 3), 100, np.uint8),
                        np.ones((32, 48), np.uint8))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    dataset = build_dataset(ade_cfg(tmp_path), "train")
    with pytest.raises(DatasetError, match=message) as info:
        dataset[0]
    assert "train.lst:1: image" in str(info.value) and path in str(info.value)


def test_training_resizes_the_short_side_before_the_random_scale(tmp_path):
    # 30 x 60 with BASE_SIZE 40: short side first -> 40 x 80 (nearest for labels), then the
    # scale 0.5 (SCALE_FACTOR 0) sets the long side to 20: 10 x 20, padded to the 16 x 24 crop.
    label = np.random.default_rng(1).integers(1, 151, (30, 60), dtype=np.uint8)
    write_sample(tmp_path, np.full((30, 60, 3), 50, np.uint8), label)
    cfg = ade_cfg(tmp_path, **{"TRAIN.BASE_SIZE": 40, "TRAIN.SCALE_FACTOR": 0,
                               "TRAIN.IMAGE_SIZE": [24, 16], "TRAIN.FLIP": False})
    data = build_dataset(cfg, "train")
    assert isinstance(data.train_transform, ShortSideFirst)
    _, got, _, _ = data[0]
    first = cv2.resize(label, (80, 40), interpolation=cv2.INTER_NEAREST)
    second = cv2.resize(first, (20, 10), interpolation=cv2.INTER_NEAREST).astype(np.int64) - 1
    expected = np.full((16, 24), 255)
    expected[:10, :20] = second
    np.testing.assert_array_equal(got.numpy(), expected)


def test_short_side_first_leaves_the_draws_to_the_wrapped_transform():
    inner = TrainTransform(base_size=32, crop_size=(16, 16))
    image = np.random.default_rng(2).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    label = np.random.default_rng(3).integers(0, 150, (32, 48), dtype=np.uint8)
    got = ShortSideFirst(inner)(image, label, np.random.default_rng(7))
    want = inner(image, label, np.random.default_rng(7))  # short side already 32
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_make_lists_pairs_the_official_folders_sorted(tmp_path, caplog):
    touch(tmp_path / "ade20k",
          "images/training/ADE_train_00000002.jpg", "images/training/ADE_train_00000001.jpg",
          "annotations/training/ADE_train_00000001.png",
          "annotations/training/ADE_train_00000002.png",
          "images/validation/ADE_val_00000001.jpg", "annotations/validation/ADE_val_00000001.png",
          "objectInfo150.txt", "sceneCategories.txt")
    assert make_lists(str(tmp_path), "ade20k") == {"train": 2, "val": 1, "trainval": 3}
    with open(tmp_path / "list" / "ade20k" / "train.lst") as f:
        assert f.read().splitlines() == [f"images/training/ADE_train_0000000{i}.jpg\t"
                                         f"annotations/training/ADE_train_0000000{i}.png"
                                         for i in (1, 2)]
    assert "2 images; the official release has 20210" in caplog.text


def test_make_lists_reports_an_image_without_its_annotation(tmp_path):
    touch(tmp_path / "ade20k", "images/validation/ADE_val_00000001.jpg",
          "images/validation/ADE_val_00000002.jpg", "annotations/validation/ADE_val_00000001.png")
    with pytest.raises(DatasetError, match="image without a label.*ADE_val_00000002.jpg"):
        make_lists(str(tmp_path), "ade20k")


def test_synthetic_constants_are_the_ade20k_raw_values():
    names = dataset_class("ade20k").class_names
    constants = {name: value for name, value in vars(ade20k_scenes).items()
                 if name.startswith("ADE_") and isinstance(value, int)}
    assert len(constants) == 20
    for name, value in constants.items():
        assert names[value - 1] == name[4:].lower(), name


@pytest.fixture(scope="module")
def synthetic_ade(tmp_path_factory):
    root = tmp_path_factory.mktemp("ade")
    synthetic.make_synthetic_dataset(str(root), "ade20k", {"train": 4, "val": 2}, (48, 64), 0)
    return root


def test_synthetic_set_has_the_official_layout_and_raw_labels(synthetic_ade):
    base = synthetic_ade / "ade20k"
    images = sorted(glob.glob(str(base / "images/*/*.jpg")))
    assert [os.path.relpath(p, base) for p in images] == [
        f"images/training/ADE_train_0000000{i}.jpg" for i in (1, 2, 3, 4)] + [
        f"images/validation/ADE_val_0000000{i}.jpg" for i in (1, 2)]
    present = set()
    for path in images:
        with open(path, "rb") as f:
            assert f.read(3) == b"\xff\xd8\xff"
        label_path = path.replace("images", "annotations").replace(".jpg", ".png")
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
        assert label.dtype == np.uint8 and label.shape == (48, 64)
        values = set(np.unique(label).tolist())
        assert 0 in values and values <= set(range(151)) and len(values) >= 6
        present |= values
    assert 10 <= len(present - {0}) <= 20  # a modest number of the 150 classes


def test_synthetic_set_loads_through_the_lists(synthetic_ade):
    cfg = ade_cfg(synthetic_ade, **{"TRAIN.BASE_SIZE": 48, "TRAIN.IMAGE_SIZE": [32, 32]})
    for split, count in (("train", 4), ("val", 2)):
        data = build_dataset(cfg, split, list_path=f"list/ade20k/{split}.lst")
        assert len(data) == count
        image, label, _, _ = data[0]
        assert set(np.unique(label.numpy()).tolist()) <= set(range(150)) | {255}
        assert image.shape == ((3, 32, 32) if split == "train" else (3, 48, 64))


def test_synthetic_set_is_deterministic_for_a_seed(tmp_path, synthetic_ade):
    def files(root):
        paths = sorted(glob.glob(os.path.join(root, "**", "*.*"), recursive=True))
        return {os.path.relpath(p, root): open(p, "rb").read() for p in paths}

    for name, seed in (("again", 0), ("other", 1)):
        synthetic.make_synthetic_dataset(str(tmp_path / name), "ade20k", {"train": 4, "val": 2},
                                         (48, 64), seed)
    first, again, other = files(synthetic_ade), files(tmp_path / "again"), files(tmp_path / "other")
    assert first == again
    assert all(first[k] != other[k] for k in first if k.endswith(".jpg"))
    with pytest.raises(ValueError, match="ade20k has the splits"):
        synthetic.make_synthetic_dataset(str(tmp_path / "t"), "ade20k", {"test": 1}, (8, 8), 0)
