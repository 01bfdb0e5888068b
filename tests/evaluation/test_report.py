"""The log tables: values in %, the S_f - S_i column in points, conditions as rows or columns;
``report`` of an evaluation."""
import numpy as np

from lib.datasets.cityscapes import CLASS_NAMES
from lib.evaluation.loop import Evaluation
from lib.evaluation.metrics import segmentation_metrics
from lib.evaluation.report import (
    analysis_tables,
    boundary_table,
    final_table,
    fusion_table,
    predictions_table,
    report,
)
from tests.evaluation.synthetic import analysed


def _metrics(road, sky):
    return {"IoU": {"road": road, "sky": sky}, "mIoU": (road + sky) / 2 if sky is not None
            else road, "pixel_acc": 0.9, "mean_acc": float("nan")}


RESULTS = {
    "final_prediction": "fused_logits",
    "predictions": {"logits": _metrics(0.5, 0.25), "fused_logits": _metrics(0.625, None)},
    "boundary": {"logits": {"trimap_mIoU": {"1": 0.125, "4": 0.25}, "boundary_mIoU": 0.1},
                 "fused_logits": {"trimap_mIoU": {"1": 0.5, "4": None}, "boundary_mIoU": 0.2}},
    "fusion": {"fused_logits": {
        "against": "logits", "pixels": 12345, "differ": 0.1, "fixed": 0.07, "broken": 0.02,
        "changed": 0.01,
        "per_condition": {"fog": {"pixels": 10, "differ": 0.5, "fixed": 0.1, "broken": 0.3,
                                  "changed": 0.1}}}},
}


def _cells(table, first):
    lines = table.splitlines() if isinstance(table, str) else table
    return next(line.split() for line in lines if line.startswith(first))


def test_the_predictions_table_has_a_column_a_prediction_and_the_fusion_difference():
    table = predictions_table(RESULTS)
    assert table.splitlines()[0].split() == ["class", "S_i", "S_f", "S_f", "-", "S_i"]
    assert _cells(table, "road") == ["road", "50.00", "62.50", "+12.50"]
    assert _cells(table, "sky") == ["sky", "25.00", "-", "-"]
    assert _cells(table, "mIoU") == ["mIoU", "37.50", "62.50", "+25.00"]
    assert _cells(table, "mean acc") == ["mean", "acc", "-", "-", "-"]


def test_the_boundary_table_has_a_row_a_prediction():
    table = boundary_table(RESULTS)
    assert table.splitlines()[0].split() == ["prediction", "trimap", "1px", "trimap", "4px",
                                             "boundary", "IoU"]
    assert _cells(table, "S_i") == ["S_i", "12.50", "25.00", "10.00"]
    assert _cells(table, "S_f") == ["S_f", "50.00", "-", "20.00"]


def test_the_fusion_table_has_the_overall_split_and_one_row_a_condition():
    table = fusion_table(RESULTS)
    assert _cells(table, "S_f vs S_i  ")[3:] == ["12,345", "10.00", "7.00", "2.00", "1.00",
                                                 "+5.00"]
    assert _cells(table, "S_f vs S_i fog")[4:] == ["10", "50.00", "10.00", "30.00", "10.00",
                                                   "-20.00"]
    assert "what the fusion changed" in analysis_tables(RESULTS)
    assert "what the fusion changed" not in analysis_tables(dict(RESULTS, fusion={}))


def test_the_final_table_lists_classes_summary_and_conditions_in_percent():
    conf = np.array([[5, 1, 0, 0], [2, 3, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    metrics = segmentation_metrics(conf, ["road", "car", "sky", "bus"])
    results = {"final_prediction": "logits",
               "predictions": {"logits": {**metrics, "per_condition": {"fog": metrics}}}}
    lines = final_table(results).splitlines()
    assert lines[0].split() == ["class", "all", "fog"]
    assert _cells(lines, "car") == ["car", "42.86", "42.86"]
    assert _cells(lines, "sky") == ["sky", "-", "-"]
    assert _cells(lines, "mIoU")[1] == f"{100 * (5 / 8 + 3 / 7) / 3:.2f}"
    assert _cells(lines, "pixel acc")[2:] == [f"{100 * 8 / 12:.2f}"] * 2
    assert _cells(lines, "mean acc")[2:] == [f"{100 * (5 / 6 + 3 / 6) / 2:.2f}"] * 2


def test_the_final_table_is_the_final_predictions():
    lines = final_table(RESULTS).splitlines()
    assert lines[0].split() == ["class", "all"]
    assert _cells(lines, "road") == ["road", "62.50"]


def test_the_report_has_every_table_and_the_figures_only_when_asked():
    accumulator = analysed(CLASS_NAMES, ("logits",))
    results = accumulator.results(CLASS_NAMES)
    evaluation = Evaluation(results, accumulator.confusion("logits"), 0)
    tables, figures = report(evaluation, figures=False)
    assert figures == {}
    assert tables == f"{final_table(results)}\n\n{analysis_tables(results)}"
    assert list(report(evaluation)[1]) == ["confusion.png", "iou.png", "trimap.png"]
