"""The log tables: values in %, the S_f - S_i column in points, conditions as rows."""
from lib.evaluation.report import analysis_tables, boundary_table, fusion_table, heads_table


def _metrics(road, sky):
    return {"IoU": {"road": road, "sky": sky}, "mIoU": (road + sky) / 2 if sky is not None
            else road, "pixel_acc": 0.9, "mean_acc": float("nan")}


RESULTS = {
    "heads": {"logits": _metrics(0.5, 0.25), "fused_logits": _metrics(0.625, None)},
    "boundary": {"logits": {"trimap_mIoU": {"1": 0.125, "4": 0.25}, "boundary_mIoU": 0.1},
                 "fused_logits": {"trimap_mIoU": {"1": 0.5, "4": None}, "boundary_mIoU": 0.2}},
    "fusion": {"fused_logits": {
        "against": "logits", "pixels": 12345, "differ": 0.1, "fixed": 0.07, "broken": 0.02,
        "changed": 0.01,
        "per_condition": {"fog": {"pixels": 10, "differ": 0.5, "fixed": 0.1, "broken": 0.3,
                                  "changed": 0.1}}}},
}


def _cells(table, first):
    return next(line.split() for line in table.splitlines() if line.startswith(first))


def test_the_heads_table_has_a_column_a_head_and_the_fusion_difference():
    table = heads_table(RESULTS)
    assert table.splitlines()[0].split() == ["class", "S_i", "S_f", "S_f", "-", "S_i"]
    assert _cells(table, "road") == ["road", "50.00", "62.50", "+12.50"]
    assert _cells(table, "sky") == ["sky", "25.00", "-", "-"]
    assert _cells(table, "mIoU") == ["mIoU", "37.50", "62.50", "+25.00"]
    assert _cells(table, "mean acc") == ["mean", "acc", "-", "-", "-"]


def test_the_boundary_table_has_a_row_a_head():
    table = boundary_table(RESULTS)
    assert table.splitlines()[0].split() == ["head", "trimap", "1px", "trimap", "4px",
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
