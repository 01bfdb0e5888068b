"""The study's summary statistics, re-derived by hand on fixed numbers."""
import math

import pytest

from lib.evaluation.comparison import short_labels
from lib.evaluation.study import (
    class_differences,
    describe,
    mean_results,
    paired_difference,
    study_differences,
    study_markdown,
    variant_summary,
)

# t(0.975, df) from a printed table of Student's t distribution.
T975 = {1: 12.706, 2: 4.303, 3: 3.182}


def test_describe_gives_mean_sample_std_and_count():
    s = describe([0.70, 0.72, 0.74])
    assert s["mean"] == pytest.approx(0.72)
    # deviations -0.02, 0, 0.02: sum of squares 0.0008 over n - 1 = 2 -> 0.0004 -> 0.02
    assert s["std"] == pytest.approx(0.02)
    assert s["n"] == 3 and s["values"] == pytest.approx([0.70, 0.72, 0.74])


def test_describe_of_one_value_has_no_std_and_leaves_out_undefined_values():
    assert describe([0.5, None, float("nan")]) == {"mean": 0.5, "std": None, "n": 1,
                                                   "values": [0.5]}
    assert describe([])["mean"] is None


def test_paired_difference_is_a_t_interval_on_the_per_seed_differences():
    a = {0: 0.70, 1: 0.72, 2: 0.68}
    b = {0: 0.71, 1: 0.75, 2: 0.70}  # differences 0.01, 0.03, 0.02
    d = paired_difference(a, b)
    assert d["n"] == 3 and d["seeds"] == [0, 1, 2]
    assert d["mean"] == pytest.approx(0.02)
    half = T975[2] * 0.01 / math.sqrt(3)  # sample std of (0.01, 0.03, 0.02) is 0.01
    assert d["ci95"] == pytest.approx([0.02 - half, 0.02 + half], abs=1e-5)


def test_paired_difference_uses_only_seeds_both_variants_have():
    d = paired_difference({0: 0.5, 1: 0.6, 2: 0.7}, {1: 0.65, 2: 0.70, 3: 0.9})
    assert d["seeds"] == [1, 2] and d["mean"] == pytest.approx(0.025)
    half = T975[1] * (0.05 / math.sqrt(2)) / math.sqrt(2)  # std of (0.05, 0.0)
    assert d["ci95"] == pytest.approx([0.025 - half, 0.025 + half], abs=1e-4)
    assert paired_difference({0: 0.5}, {0: 0.6})["ci95"] is None


def _results(miou, si, sf, road):
    return {"final_prediction": "fused_logits",
            "predictions": {"logits": {"mIoU": si},
                            "fused_logits": {"IoU": {"road": road, "sky": None}, "mIoU": sf,
                                             "pixel_acc": 0.9, "mean_acc": 0.8}},
            "boundary": {"fused_logits": {"boundary_mIoU": miou / 2,
                                          "trimap_mIoU": {"1": miou / 4}}},
            "fusion": {"fused_logits": {"differ": 0.1, "fixed": 0.02, "broken": 0.03,
                                        "changed": 0.05}}}


def test_variant_summary_describes_every_block():
    runs = [_results(0.6, 0.5, 0.6, 0.9), _results(0.8, 0.7, 0.8, 0.95)]
    s = variant_summary(runs)
    final = s["predictions"][s["final_prediction"]]
    assert s["final_prediction"] == "fused_logits"
    assert final["mIoU"]["mean"] == pytest.approx(0.7)
    assert final["mIoU"]["std"] == pytest.approx(math.sqrt(0.02))
    assert s["predictions"]["logits"]["mIoU"]["mean"] == pytest.approx(0.6)
    assert s["predictions"]["logits"]["pixel_acc"]["n"] == 0
    assert final["IoU"]["road"]["mean"] == pytest.approx(0.925) and final["IoU"]["sky"]["n"] == 0
    assert final["pixel_acc"]["mean"] == pytest.approx(0.9)
    assert s["boundary"]["fused_logits"]["trimap_mIoU"]["1"]["mean"] == pytest.approx(0.175)
    assert s["fusion"]["fused_logits"]["broken"]["mean"] == pytest.approx(0.03)


def test_differences_are_paired_against_the_first_variant():
    base = {0: _results(0.6, 0.6, 0.6, 0.90), 1: _results(0.7, 0.7, 0.7, 0.92)}
    other = {0: _results(0.62, 0.5, 0.62, 0.95), 1: _results(0.72, 0.6, 0.72, 0.97)}
    diffs = study_differences({"base": base, "other": other})
    by_metric = {d["metric"]: d for d in diffs}
    assert {d["a"] for d in diffs} == {"base"} and {d["b"] for d in diffs} == {"other"}
    assert by_metric["mIoU"]["mean"] == pytest.approx(0.02)
    # identical differences: zero spread, so the interval is the point itself
    assert by_metric["mIoU"]["ci95"] == pytest.approx([0.02, 0.02])
    assert by_metric["mIoU S_i"]["mean"] == pytest.approx(-0.1)
    classes = class_differences({"base": base, "other": other})
    assert [(d["class"], round(d["mean"], 6)) for d in classes] == [("road", 0.05)]


def test_differences_against_a_chosen_reference_pair_every_other_variant_with_it():
    base = {0: _results(0.6, 0.6, 0.6, 0.90), 1: _results(0.7, 0.7, 0.7, 0.92)}
    other = {0: _results(0.62, 0.5, 0.62, 0.95), 1: _results(0.72, 0.6, 0.72, 0.97)}
    third = {0: _results(0.64, 0.5, 0.64, 0.95), 1: _results(0.70, 0.6, 0.70, 0.97)}
    variants = {"base": base, "other": other, "third": third}
    diffs = study_differences(variants, ["base", "other"])
    pairs = {(d["a"], d["b"]) for d in diffs}
    assert pairs == {("base", "other"), ("base", "third"), ("other", "base"), ("other", "third")}
    d = next(d for d in diffs if (d["a"], d["b"], d["metric"]) == ("other", "third", "mIoU"))
    assert d["mean"] == pytest.approx((0.02 - 0.02) / 2)  # per seed: +0.02, -0.02
    half = T975[1] * (0.04 / math.sqrt(2)) / math.sqrt(2)
    assert d["ci95"] == pytest.approx([-half, half], rel=1e-4)
    with pytest.raises(ValueError, match="nope"):
        study_differences(variants, ["nope"])


def test_class_differences_leave_out_intervals_that_contain_zero():
    base = {0: _results(0.6, 0.6, 0.6, 0.90), 1: _results(0.7, 0.7, 0.7, 0.92)}
    other = {0: _results(0.6, 0.6, 0.6, 0.95), 1: _results(0.7, 0.7, 0.7, 0.90)}
    assert class_differences({"base": base, "other": other}) == []


def test_mean_results_averages_numbers_and_keeps_the_shape():
    m = mean_results([_results(0.6, 0.5, 0.6, 0.9), _results(0.8, 0.7, 0.8, 0.7)])
    assert m["final_prediction"] == "fused_logits"
    final = m["predictions"]["fused_logits"]
    assert final["mIoU"] == pytest.approx(0.7) and final["IoU"]["road"] == pytest.approx(0.8)
    assert m["boundary"]["fused_logits"]["trimap_mIoU"]["1"] == pytest.approx(0.175)


def test_study_markdown_shows_mean_std_and_marks_significant_differences():
    base = {0: _results(0.6, 0.6, 0.6, 0.90), 1: _results(0.7, 0.7, 0.7, 0.92)}
    other = {0: _results(0.62, 0.5, 0.62, 0.95), 1: _results(0.72, 0.6, 0.72, 0.97)}
    variants = {"base": base, "other": other}
    summary = {k: variant_summary(list(v.values())) for k, v in variants.items()}
    text = study_markdown(summary, study_differences(variants), class_differences(variants),
                          [{"name": "x", "seed": 3, "error": "train exited with 1: boom"}])
    assert "| base | 2 | 65.00 ± 7.07 |" in text
    assert "| other | mIoU | +2.00 * | [+2.00, +2.00] | 2 |" in text
    assert "| other | base | road | +5.00 |" in text
    assert "`x` seed 3: train exited with 1: boom" in text


def test_short_labels_drop_the_words_all_names_share():
    assert short_labels(["seg_hrnet_tiny_baseline_64x128_sgd", "seg_hrnet_tiny_offset_64x128_sgd"]) \
        == ["baseline", "offset"]
    assert short_labels(["a_x_b", "a_y_z_b"]) == ["x", "y_z"]
    assert short_labels(["same", "same"]) == ["same", "same"]
    assert short_labels(["only_one"]) == ["only_one"]
