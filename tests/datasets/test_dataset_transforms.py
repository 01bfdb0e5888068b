import cv2
import numpy as np
import pytest
import torch

from lib.datasets import Cityscapes, DatasetError, TrainTransform, build_dataset
from lib.datasets.transforms import random_scaled_crop
from tests.helpers import CITYSCAPES_LABEL_IDS, CITYSCAPES_TRAIN_IDS, make_cityscapes_tree

from .helpers import dataset_cfg, unnormalize

COLOURS = np.array([((37 * k) % 256, (91 * k + 40) % 256, (53 * k + 200) % 256)
                    for k in range(19)], np.float64)  # RGB colour of each trainId


def blocks_sample(h=64, w=128, block=16):
    """(BGR image, label ids, trainIds): blocks of trainIds, each painted its colour."""
    rows, cols = np.indices((h, w))
    train_ids = ((rows // block) * 5 + (cols // block) * 3) % 19
    label = np.array(CITYSCAPES_LABEL_IDS, np.uint8)[train_ids]
    rgb = COLOURS[train_ids].astype(np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1]), label, train_ids


def uniform_interior(label, radius=2):
    """Pixels whose (2r+1)^2 neighbourhood holds one label (bilinear blur cannot reach them).

    Pixels near the crop edge are left out: their neighbours outside the crop are unknown.
    """
    k = np.ones((2 * radius + 1,) * 2, np.uint8)
    lab = label.astype(np.uint8)
    same = cv2.erode(lab, k) == cv2.dilate(lab, k)
    same[:radius], same[-radius:], same[:, :radius], same[:, -radius:] = False, False, False, False
    return same & (label != 255)


@pytest.fixture
def blocks_root(tmp_path):
    image, label, _ = blocks_sample()
    make_cityscapes_tree(tmp_path, [("blocks", image, label)])
    return tmp_path


def train_set(root, **overrides):
    settings = {"TRAIN.BASE_SIZE": 128, "TRAIN.IMAGE_SIZE": [96, 48], "TRAIN.SEED": 0}
    settings.update(overrides)
    return build_dataset(dataset_cfg(root, **settings), "train")


def test_image_and_label_stay_aligned_under_random_scale_crop_and_flip(blocks_root):
    dataset = train_set(blocks_root)
    checked = 0
    for epoch in range(30):
        image, label, size, name = dataset[(0, epoch)]
        label = label.numpy()
        rgb = unnormalize(image)
        inside = uniform_interior(label)
        checked += inside.sum()
        np.testing.assert_allclose(rgb[inside], COLOURS[label[inside]], atol=0.5)
        assert size.tolist() == [64, 128] and name == "blocks"
    assert checked > 30 * 48 * 96 * 0.2


def test_training_crop_has_exactly_the_configured_size(blocks_root):
    dataset = train_set(blocks_root, **{"TRAIN.IMAGE_SIZE": [70, 30]})
    for epoch in range(20):
        image, label, _, _ = dataset[(0, epoch)]
        assert image.shape == (3, 30, 70) and image.dtype == torch.float32
        assert label.shape == (30, 70) and label.dtype == torch.int64


def test_padding_writes_ignore_label_and_black_and_the_scaled_size_follows_the_reference_rule(
        blocks_root):
    # base 64: the 64x128 image becomes at most 67x134 (scale 2.1), smaller than the crop.
    dataset = train_set(blocks_root, **{"TRAIN.BASE_SIZE": 64, "TRAIN.IMAGE_SIZE": [160, 80],
                                        "TRAIN.FLIP": False})
    expected = {(int(32 * (64 * (0.5 + k / 10) + 0.5) / 64 + 0.5), int(64 * (0.5 + k / 10) + 0.5))
                for k in range(17)}
    seen = set()
    for epoch in range(40):
        image, label, _, _ = dataset[(0, epoch)]
        label = label.numpy()
        valid = label != 255
        h, w = valid.any(1).sum(), valid.any(0).sum()
        assert valid[:h, :w].all() and not valid[h:].any() and not valid[:, w:].any()
        np.testing.assert_allclose(unnormalize(image)[~valid], 0, atol=1e-3)
        seen.add((int(h), int(w)))
    assert seen <= expected and len(seen) >= 5


def test_both_flipped_and_unflipped_samples_occur_and_flip_moves_image_with_label(blocks_root):
    dataset = train_set(blocks_root, **{"TRAIN.MULTI_SCALE": False})
    original, _, train_ids = blocks_sample()
    outcomes = set()
    for epoch in range(20):
        image, label, _, _ = dataset[(0, epoch)]
        flipped = np.array_equal(label.numpy(), train_ids[:, ::-1])
        assert flipped or np.array_equal(label.numpy(), train_ids)
        reference = original[:, ::-1, ::-1] if flipped else original[:, :, ::-1]
        np.testing.assert_allclose(unnormalize(image), reference, atol=1e-3)
        outcomes.add(flipped)
    assert outcomes == {True, False}


def test_without_multi_scale_the_training_sample_is_the_whole_image_as_in_the_reference(
        blocks_root):
    image, label, _, _ = train_set(blocks_root, **{"TRAIN.MULTI_SCALE": False,
                                                   "TRAIN.FLIP": False})[0]
    assert image.shape == (3, 64, 128) and label.shape == (64, 128)


def test_downsample_rate_resizes_the_label_by_nearest_after_cropping(blocks_root):
    full = train_set(blocks_root)
    half = train_set(blocks_root, **{"TRAIN.DOWNSAMPLERATE": 2})
    for epoch in range(5):
        image_full, label_full, _, _ = full[(0, epoch)]
        image_half, label_half, _, _ = half[(0, epoch)]
        assert image_half.shape == (3, 48, 96) and label_half.shape == (24, 48)
        assert torch.equal(image_full, image_half)
        assert torch.equal(label_half, label_full[::2, ::2])


def test_evaluation_item_is_the_full_image_normalised_with_imagenet_statistics(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 72, 3), dtype=np.uint8)
    label = rng.choice(np.array([0, 7, 26, 33, 255], np.uint8), (40, 72))
    make_cityscapes_tree(tmp_path, [("x", image, label)], "val.lst", "val")
    item, mapped, size, _ = build_dataset(dataset_cfg(tmp_path), "val")[0]
    rgb = image[:, :, ::-1].astype(np.float64) / 255
    expected = ((rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)
    assert item.dtype == torch.float32
    np.testing.assert_allclose(item.numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(mapped.numpy(), np.vectorize(
        lambda v: CITYSCAPES_TRAIN_IDS.get(int(v), 255))(label))
    assert size.tolist() == [40, 72]


@pytest.mark.parametrize("shape", [(64, 128), (100, 60), (37, 53)])
def test_scaled_crop_equals_resizing_the_whole_image_then_padding_and_cropping(shape):
    h, w = shape
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)
    label = rng.integers(0, 19, (h, w), dtype=np.uint8)
    crop = (40, 56)
    for k in range(17):
        long_size = int(64 * (0.5 + k / 10) + 0.5)
        new_h, new_w = ((long_size, int(w * long_size / h + 0.5)) if h > w
                        else (int(h * long_size / w + 0.5), long_size))
        ref_image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        ref_label = cv2.resize(label, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
        pad_h, pad_w = max(crop[0] - new_h, 0), max(crop[1] - new_w, 0)
        ref_image = cv2.copyMakeBorder(ref_image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        ref_label = cv2.copyMakeBorder(ref_label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                       value=255)
        draws = np.random.default_rng(k)
        x = draws.integers(0, ref_label.shape[1] - crop[1] + 1)
        y = draws.integers(0, ref_label.shape[0] - crop[0] + 1)
        out_image, out_label = random_scaled_crop(image, label, long_size, crop, 255,
                                                  np.random.default_rng(k))
        np.testing.assert_array_equal(out_label, ref_label[y:y + crop[0], x:x + crop[1]])
        diff = np.abs(out_image.astype(int) - ref_image[y:y + crop[0], x:x + crop[1]].astype(int))
        assert diff.max() <= 1, (shape, k)


def test_a_dataset_can_add_a_step_before_the_reference_transform(blocks_root):
    dataset = train_set(blocks_root, **{"TRAIN.MULTI_SCALE": False, "TRAIN.FLIP": False})
    reference = dataset.train_transform

    def halve_first(image, label, rng):
        half = (image.shape[1] // 2, image.shape[0] // 2)
        return reference(cv2.resize(image, half, interpolation=cv2.INTER_NEAREST),
                         cv2.resize(label, half, interpolation=cv2.INTER_NEAREST), rng)

    dataset.train_transform = halve_first
    image, label, size, _ = dataset[(0, 3)]
    original, _, train_ids = blocks_sample()
    assert image.shape == (3, 32, 64) and size.tolist() == [64, 128]
    np.testing.assert_array_equal(label.numpy(), train_ids[::2, ::2])
    np.testing.assert_allclose(unnormalize(image), original[::2, ::2, ::-1], atol=1e-3)


def test_the_training_transform_names_the_setting_at_fault(blocks_root):
    with pytest.raises(DatasetError, match=r"crop_size .*\(0, 5\)"):
        TrainTransform(crop_size=(0, 5))
    with pytest.raises(DatasetError, match="downsample_rate 0"):
        TrainTransform(downsample_rate=0)
    with pytest.raises(DatasetError, match="pads with label 250 but ignore_label is 255"):
        Cityscapes(str(blocks_root), "list/cityscapes/train.lst", "train",
                   transform=TrainTransform(ignore_label=250))
    assert TrainTransform(crop_size=[8.0, 4]).crop_size == (8, 4)
