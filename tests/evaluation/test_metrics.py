"""Metrics against a hand-made confusion matrix and an independent NumPy computation."""
import json
import math

import numpy as np
import pytest
import torch

from lib.evaluation.metrics import (
    SegEvaluator,
    confusion_matrix,
    format_table,
    json_safe,
    segmentation_metrics,
)

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
    m = segmentation_metrics(confusion_matrix(pred, target, classes), list("abcde"))
    p, t = pred.numpy().ravel(), target.numpy().ravel()
    valid = t != IGNORE
    p, t = p[valid], t[valid]
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


def test_confusion_matrix_counts_pairs_and_leaves_out_ignore_and_out_of_range_labels():
    target = torch.tensor([[0, 1, 2, IGNORE], [1, 7, -1, 2]])
    pred = torch.tensor([[0, 2, 2, 1], [1, 0, 1, 0]])
    conf = confusion_matrix(pred, target, num_classes=3)
    expected = torch.zeros(3, 3, dtype=torch.int64)
    for t, p in [(0, 0), (1, 2), (2, 2), (1, 1), (2, 0)]:
        expected[t, p] += 1
    assert conf.dtype == torch.int64
    assert torch.equal(conf, expected)


def test_confusion_matrix_equals_numpy_count_for_any_shape():
    pred, target = random_maps(1, classes=4, shape=(3, 2, 5, 4))
    conf = confusion_matrix(pred, target, 4)
    p, t = pred.numpy().ravel(), target.numpy().ravel()
    expected = [[np.sum((t == i) & (p == j)) for j in range(4)] for i in range(4)]
    assert conf.tolist() == expected


def test_confusion_matrix_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(3, 2), 2)


def test_json_safe_replaces_nan_with_none():
    m = segmentation_metrics(np.array([[1, 0], [0, 0]]), ["x", "y"])
    safe = json_safe(m)
    assert safe["IoU"] == {"x": 1.0, "y": None}
    json.dumps(safe, allow_nan=False)


def test_evaluator_group_matrices_sum_to_overall():
    evaluator = SegEvaluator(4)
    for seed, group in enumerate(["fog", "night", "fog", "night"]):
        evaluator.update(*random_maps(seed, classes=4), group=group)
    fog, night = evaluator.groups["fog"], evaluator.groups["night"]
    assert fog.sum() > 0 and night.sum() > 0
    assert torch.equal(fog + night, evaluator.overall)
    assert torch.equal(fog, confusion_matrix(*random_maps(0, classes=4), 4)
                       + confusion_matrix(*random_maps(2, classes=4), 4))


def test_evaluator_update_without_group_counts_overall_only():
    evaluator = SegEvaluator(3)
    evaluator.update(*random_maps(3, classes=3))
    assert evaluator.overall.sum() > 0
    assert evaluator.groups == {}


def test_evaluator_reduce_without_process_group_is_identity_with_sorted_groups():
    evaluator = SegEvaluator(4)
    evaluator.update(*random_maps(5, classes=4), group="snow")
    evaluator.update(*random_maps(6, classes=4), group="fog")
    overall, snow, fog = (evaluator.overall.clone(), evaluator.groups["snow"].clone(),
                          evaluator.groups["fog"].clone())
    assert evaluator.reduce() is evaluator
    assert list(evaluator.groups) == ["fog", "snow"]
    assert torch.equal(evaluator.overall, overall)
    assert torch.equal(evaluator.groups["snow"], snow)
    assert torch.equal(evaluator.groups["fog"], fog)


def test_evaluator_refuses_update_or_second_reduce_after_reduce():
    evaluator = SegEvaluator(2).reduce()
    with pytest.raises(RuntimeError):
        evaluator.update(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(RuntimeError):
        evaluator.reduce()


def test_evaluator_results_have_per_condition_metrics():
    names = ["road", "car", "sky"]
    evaluator = SegEvaluator(3)
    evaluator.update(*random_maps(6, classes=3), group="snow")
    evaluator.update(*random_maps(7, classes=3), group="fog")
    results = evaluator.results(names)
    assert results["mIoU"] == segmentation_metrics(evaluator.overall, names)["mIoU"]
    assert list(results["per_condition"]) == ["fog", "snow"]
    assert results["per_condition"]["fog"] == segmentation_metrics(evaluator.groups["fog"], names)
    assert "per_condition" not in SegEvaluator(3).results()


def test_format_table_lists_classes_summary_and_groups_in_percent():
    conf = np.array([[5, 1, 0, 0], [2, 3, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    results = segmentation_metrics(conf, ["road", "car", "sky", "bus"])
    results["per_condition"] = {"fog": results}
    lines = format_table(results).splitlines()
    assert lines[0].split() == ["class", "all", "fog"]
    car = next(line for line in lines if line.startswith("car"))
    assert car.split() == ["car", "42.86", "42.86"]
    sky = next(line for line in lines if line.startswith("sky"))
    assert sky.split() == ["sky", "-", "-"]
    miou = next(line for line in lines if line.startswith("mIoU"))
    assert miou.split()[1] == f"{100 * (5 / 8 + 3 / 7) / 3:.2f}"
    assert any(line.startswith("pixel acc") for line in lines)
    assert any(line.startswith("mean acc") for line in lines)


def test_format_table_rows_follow_given_class_names():
    results = segmentation_metrics(np.array([[1, 0], [0, 3]]), ["road", "car"])
    lines = format_table(results, ["car", "road"]).splitlines()
    assert [line.split()[0] for line in lines[2:4]] == ["car", "road"]
