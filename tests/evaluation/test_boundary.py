"""Trimap bands and Boundary IoU against pixel loops, OpenCV erosions and analytic cases."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from lib.evaluation.accumulator import MeasureSettings, SegAccumulator
from lib.evaluation.boundary import (
    band_levels,
    boundary_radius,
    label_regions,
    trimap_boundary,
    window_max,
    window_min,
)
from tests.evaluation import references as ref

K = 4


def blocky_labels(rng, h, w, ignore_share=0.1):
    """Regions of a coarse random grid, some pixel noise, and ignored pixels."""
    coarse = rng.integers(0, K, size=(h // 4 + 1, w // 5 + 1))
    label = np.kron(coarse, np.ones((4, 5), np.int64))[:h, :w]
    noise = rng.random((h, w)) < 0.03
    label[noise] = rng.integers(0, K, size=noise.sum())
    label[rng.random((h, w)) < ignore_share] = 255
    label[h // 3:h // 3 + 3, w // 2:w // 2 + 4] = 255
    return label


def noisy_prediction(rng, label):
    pred = np.where(label == 255, rng.integers(0, K, size=label.shape), label)
    pred = np.roll(pred, 1, axis=1)
    flip = rng.random(label.shape) < 0.15
    pred[flip] = rng.integers(0, K, size=flip.sum())
    return pred


def sample_set(seed=0):
    """Two batches of different sizes: [(preds N x H x W, labels N x H x W)]."""
    rng = np.random.default_rng(seed)
    batches = []
    for n, h, w in ((2, 17, 23), (1, 20, 31)):
        labels = np.stack([blocky_labels(rng, h, w) for _ in range(n)])
        preds = np.stack([noisy_prediction(rng, label) for label in labels])
        batches.append((preds, labels))
    return batches


def boundary_of(labels):
    return trimap_boundary(label_regions(torch.from_numpy(labels), K), K)


def analyse(batches, bands=(1, 2, 3, 5), ratio=0.02):
    analysis = SegAccumulator(K, ["logits"],
                              measures=MeasureSettings(bands=bands, boundary_ratio=ratio))
    for preds, labels in batches:
        analysis.update({"logits": torch.from_numpy(preds)}, torch.from_numpy(labels))
    return analysis.reduce().results()


def images(batches):
    preds = [p for batch in batches for p in batch[0]]
    labels = [t for batch in batches for t in batch[1]]
    return preds, labels


def values(iou_by_class):
    return np.array([math.nan if v is None else v for v in iou_by_class.values()])


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 4, 7, 12])
def test_window_max_and_min_are_scipy_filters_with_the_fill_outside(radius):
    x = torch.randint(-50, 50, (2, 13, 29), dtype=torch.int16)
    size = (1, 2 * radius + 1, 2 * radius + 1)
    high = ndimage.maximum_filter(x.numpy(), size=size, mode="constant", cval=60)
    low = ndimage.minimum_filter(x.numpy(), size=size, mode="constant", cval=-3)
    np.testing.assert_array_equal(window_max(x, radius, fill=60).numpy(), high)
    np.testing.assert_array_equal(window_min(x, radius, fill=-3).numpy(), low)


def test_boundary_radius_is_the_ratio_of_the_diagonal_rounded_and_at_least_one():
    assert boundary_radius(1024, 2048, 0.02) == 46  # 45.79
    assert boundary_radius(128, 256, 0.02) == 6  # 5.72
    assert boundary_radius(64, 128, 0.02) == 3  # 2.86
    assert boundary_radius(10, 10, 0.02) == 1  # 0.28
    assert boundary_radius(3, 4, 0.5) == 2  # 2.5 rounds half to even, as Python's round


def test_boundary_pixels_match_the_pixel_loop():
    for _, labels in sample_set(1):
        got = boundary_of(labels).numpy()
        for image, label in zip(got, labels, strict=True):
            np.testing.assert_array_equal(image, ref.boundary_pixels(label, K))


def test_ignored_pixels_make_no_boundary():
    label = np.zeros((9, 12), np.int64)
    label[3:6, 4:8] = 255  # an ignored blob inside one class
    assert not boundary_of(label[None]).any()
    label = np.zeros((9, 12), np.int64)
    label[:, 6] = 255  # an ignored column between two classes, two pixels apart
    label[:, 7:] = 2
    assert not boundary_of(label[None]).any()
    label[4, 6] = 1  # one labelled pixel in the gap touches both sides
    boundary = boundary_of(label[None])[0].numpy()
    assert set(zip(*np.nonzero(boundary))) == {(4, 6)} | {(y, x) for y in (3, 4, 5)
                                                             for x in (5, 7)}


def test_band_levels_give_the_loop_bands():
    widths = [1, 2, 3, 6]
    for _, labels in sample_set(2):
        boundary = boundary_of(labels)
        levels = band_levels(boundary, widths).numpy()
        for image, label in zip(levels, labels, strict=True):
            loop_boundary = ref.boundary_pixels(label, K)
            for i, width in enumerate(widths):
                np.testing.assert_array_equal(image <= i, ref.band(loop_boundary, width))


def test_trimap_miou_matches_the_pixel_loop():
    batches = sample_set(3)
    widths = (1, 2, 3, 5)
    results = analyse(batches, bands=widths)["boundary"]["logits"]
    preds, labels = images(batches)
    for width in widths:
        iou = ref.trimap_miou(preds, labels, K, width)
        np.testing.assert_allclose(values(results["trimap_IoU"][str(width)]), iou)
        assert results["trimap_mIoU"][str(width)] == pytest.approx(ref.mean_defined(iou))


@pytest.mark.parametrize("ratio", [0.02, 0.1, 0.3])
def test_boundary_iou_matches_the_opencv_erosions(ratio):
    batches = sample_set(4)
    results = analyse(batches, ratio=ratio)["boundary"]["logits"]
    preds, labels = images(batches)
    iou = ref.boundary_iou(preds, labels, K, dilation_ratio=ratio)
    np.testing.assert_allclose(values(results["boundary_IoU"]), iou)
    assert results["boundary_mIoU"] == pytest.approx(ref.mean_defined(iou))


def test_a_perfect_prediction_scores_one_everywhere():
    batches = [(np.where(labels == 255, 0, labels), labels) for _, labels in sample_set(5)]
    results = analyse(batches)
    boundary = results["boundary"]["logits"]
    assert set(boundary["trimap_mIoU"].values()) == {1.0}
    assert boundary["boundary_mIoU"] == 1.0
    assert set(values(boundary["boundary_IoU"])) == {1.0}
    assert results["predictions"]["logits"]["mIoU"] == 1.0


def test_a_band_wider_than_the_image_gives_the_plain_miou():
    batches = sample_set(6)
    results = analyse(batches, bands=(1, 31, 40))
    preds, labels = images(batches)
    plain = ref.plain_iou(preds, labels, K)
    trimap = results["boundary"]["logits"]
    for width in ("31", "40"):  # 31 covers the 20 x 31 image from any boundary pixel
        np.testing.assert_allclose(values(trimap["trimap_IoU"][width]), plain)
        assert trimap["trimap_mIoU"][width] == pytest.approx(results["predictions"]["logits"]["mIoU"])
    assert results["predictions"]["logits"]["mIoU"] == pytest.approx(ref.mean_defined(plain))


def _rect_band(rows, cols, d):
    """Pixels of a rows x cols rectangular mask within d of its outside: all less the inset."""
    return rows * cols - max(0, rows - 2 * d) * max(0, cols - 2 * d)


@pytest.mark.parametrize("width", [1, 2, 5])
def test_a_prediction_shifted_by_one_pixel(width):
    h, w, edge = 24, 40, 17  # class 0 in columns < edge, class 1 from edge on
    label = np.where(np.arange(w) < edge, 0, 1)[None].repeat(h, 0)
    pred = np.where(np.arange(w) < edge + 1, 0, 1)[None].repeat(h, 0)  # column `edge` wrong
    ratio = 0.1  # d = round(0.1 * 46.65) = 5
    d = 5
    results = analyse([(pred[None], label[None])], bands=(width,), ratio=ratio)
    boundary = results["boundary"]["logits"]
    # The band holds columns edge-1-width .. edge+width; only column `edge` is misclassified.
    trimap = [(width + 1) / (width + 2), width / (width + 1)]
    np.testing.assert_allclose(values(boundary["trimap_IoU"][str(width)])[:2], trimap)
    assert boundary["trimap_mIoU"][str(width)] == pytest.approx(sum(trimap) / 2)
    # Class 0: ground truth h x edge, prediction h x (edge + 1); the prediction's inset contains
    # the ground truth's, and inside the ground truth it spans columns d .. edge - d.
    gt0, pred0 = _rect_band(h, edge, d), _rect_band(h, edge + 1, d)
    inter0 = h * edge - (h - 2 * d) * (edge + 1 - 2 * d)
    gt1, pred1 = _rect_band(h, w - edge, d), _rect_band(h, w - edge - 1, d)
    inter1 = h * (w - edge - 1) - (h - 2 * d) * (w - edge - 2 * d)
    biou = [inter0 / (gt0 + pred0 - inter0), inter1 / (gt1 + pred1 - inter1)]
    np.testing.assert_allclose(values(boundary["boundary_IoU"])[:2], biou)
    np.testing.assert_allclose(biou, ref.boundary_iou([pred], [label], 2, ratio))


def test_predictions_at_ignored_pixels_change_nothing():
    batches = sample_set(7)
    rng = np.random.default_rng(0)
    scrambled = [(np.where(labels == 255, rng.integers(0, K, size=labels.shape), preds), labels)
                 for preds, labels in batches]
    assert analyse(batches) == analyse(scrambled)


def test_seventy_bands_count_each_pixel_in_its_narrowest_band():
    label = np.where(np.arange(200) < 100, 0, 1)[None].repeat(8, 0)
    label[:, 150:153] = 255
    analysis = SegAccumulator(K, ["logits"], measures=MeasureSettings(bands=range(1, 71)))
    analysis.update({"logits": torch.from_numpy(np.roll(label.clip(max=1), 3, axis=1))[None]},
                    torch.from_numpy(label)[None])
    trimap = analysis.reduce().results()["boundary"]["logits"]["trimap_IoU"]
    for width in (1, 40, 70):
        inside = ref.band(ref.boundary_pixels(label, K), width) & (label != 255)
        pred = np.roll(label.clip(max=1), 3, axis=1)
        tp = ((pred == 0) & (label == 0) & inside).sum()
        union = (((pred == 0) | (label == 0)) & inside).sum()
        assert trimap[str(width)]["0"] == pytest.approx(tp / union)
