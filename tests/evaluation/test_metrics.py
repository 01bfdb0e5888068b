"""Metrics against a hand-made confusion matrix and an independent NumPy computation."""
import json
import math

import numpy as np
import pytest
import torch

from lib.evaluation.metrics import class_names_of, segmentation_metrics
from lib.evaluation.results import json_safe

IGNORE = 255


def random_maps(seed, classes=5, shape=(2, 7, 9), ignore_fraction=0.2):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, shape, generator=gen)
    target[torch.rand(shape, generator=gen) < ignore_fraction] = IGNORE
    pred = torch.randint(0, classes, shape, generator=gen)
    return pred, target


def test_metrics_of_hand_made_matrix_with_absent_classes():
    # Class 2 is neither present nor predicted (left out of mIoU); class 3 is predicted once but
    # absent from the ground truth (IoU 0, counted).
    conf = np.array([[5, 1, 0, 0],
                     [2, 3, 0, 1],
                     [0, 0, 0, 0],
                     [0, 0, 0, 0]])
    m = segmentation_metrics(conf, ["a", "b", "c", "d"])
    assert m["IoU"]["a"] == pytest.approx(5 / 8)
    assert m["IoU"]["b"] == pytest.approx(3 / 7)
    assert math.isnan(m["IoU"]["c"])
    assert m["IoU"]["d"] == 0.0
    assert m["mIoU"] == pytest.approx((5 / 8 + 3 / 7 + 0) / 3)
    assert m["pixel_acc"] == pytest.approx(8 / 12)
    assert m["mean_acc"] == pytest.approx((5 / 6 + 3 / 6) / 2)


def test_metrics_accept_torch_matrix_and_default_names():
    conf = torch.tensor([[3, 1], [0, 4]])
    m = segmentation_metrics(conf)
    assert list(m["IoU"]) == ["0", "1"]
    assert m["IoU"]["1"] == pytest.approx(4 / 5)


def test_metrics_equal_numpy_computation_on_random_maps():
    classes = 5
    pred, target = random_maps(0, classes)
    p, t = pred.numpy().ravel(), target.numpy().ravel()
    valid = t != IGNORE
    p, t = p[valid], t[valid]
    conf = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(conf, (t, p), 1)
    m = segmentation_metrics(torch.from_numpy(conf), list("abcde"))
    ious, accs = [], []
    for c in range(classes):
        inter = np.sum((t == c) & (p == c))
        union = np.sum((t == c) | (p == c))
        ious.append(inter / union)
        accs.append(inter / np.sum(t == c))
    assert [m["IoU"][n] for n in "abcde"] == pytest.approx(ious)
    assert m["mIoU"] == pytest.approx(np.mean(ious))
    assert m["pixel_acc"] == pytest.approx(np.mean(p == t))
    assert m["mean_acc"] == pytest.approx(np.mean(accs))


def test_json_safe_replaces_nan_with_none():
    m = segmentation_metrics(np.array([[1, 0], [0, 0]]), ["x", "y"])
    safe = json_safe(m)
    assert safe["IoU"] == {"x": 1.0, "y": None}
    json.dumps(safe, allow_nan=False)


def test_class_names_are_checked_against_the_number_of_classes():
    assert class_names_of(None, 3) == ["0", "1", "2"]
    assert class_names_of(("road", "sky"), 2) == ["road", "sky"]
    with pytest.raises(ValueError, match="3 class names for 2 classes"):
        class_names_of(["a", "b", "c"], 2)
    with pytest.raises(ValueError, match="1 class names for 2 classes"):
        segmentation_metrics(np.eye(2), ["a"])
