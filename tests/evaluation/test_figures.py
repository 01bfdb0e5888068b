"""Figures render to PNG with every label inside the picture and readable with 19 and 150 classes;
they show the classes, bins and differences that matter."""
import math

import cv2
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from lib.datasets.ade20k import CLASS_NAMES as ADE20K_NAMES
from lib.datasets.cityscapes import CLASS_NAMES as CITYSCAPES_NAMES
from lib.evaluation.figures import (
    confusion_figure,
    curve_differences,
    evaluation_figures,
    figure_image,
    fusion_histograms_figure,
    iou_bars_figure,
    iou_classes,
    most_confused,
    occupied_slots,
    save_figure,
    trimap_figure,
)
from lib.evaluation.predictions import final_prediction, fusion_pairs
from lib.models.seg_hrnet_ocr import BranchedSegHRNetOCR
from tests.evaluation.synthetic import OFFSET_PREDICTIONS, analysed


def assert_nothing_clipped(fig):
    """Everything drawn (texts, tick labels, legends, colour bars) lies inside the canvas."""
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    assert box.x0 >= -0.01 and box.y0 >= -0.01 and box.x1 <= width + 0.01 \
        and box.y1 <= height + 0.01, f"drawn {box} outside the {width} x {height} in figure"


def assert_tick_labels_readable(ax, axis="y"):
    """At least 7 pt, and no two tick labels of the axis overlap."""
    renderer = ax.figure.canvas.get_renderer()
    labels = [t for t in (ax.get_yticklabels() if axis == "y" else ax.get_xticklabels())
              if t.get_text()]
    assert labels and min(t.get_fontsize() for t in labels) >= 7
    boxes = sorted((t.get_window_extent(renderer) for t in labels),
                   key=lambda b: b.y0 if axis == "y" else b.x0)
    for a, b in zip(boxes, boxes[1:]):
        assert (b.y0 >= a.y1 - 0.5) if axis == "y" else (b.x0 >= a.x1 - 0.5)


@pytest.mark.parametrize("names", [CITYSCAPES_NAMES, ADE20K_NAMES], ids=["19", "150"])
@pytest.mark.parametrize("predictions", [OFFSET_PREDICTIONS, ("logits",), BranchedSegHRNetOCR.PREDICTIONS],
                         ids=["offset", "baseline", "offset_ocr"])
def test_the_evaluation_figures_are_pngs_with_every_label_inside(tmp_path, names, predictions):
    analysis = analysed(names, predictions)
    figures = evaluation_figures(analysis.results(names),
                                 analysis.confusion(final_prediction(predictions)), names)
    expected = {"confusion.png", "iou.png", "trimap.png"} | (
        {"fusion.png"} if len(predictions) > 1 else set())
    assert set(figures) == expected
    for name, fig in figures.items():
        assert_nothing_clipped(fig)
        save_figure(fig, tmp_path / "figures" / name)
        png = cv2.imread(str(tmp_path / "figures" / name))
        assert png.shape[:2][::-1] == fig.canvas.get_width_height()
        assert png.std() > 10  # something is drawn
    if "fusion.png" in figures:  # one row of two panels a fused pair: S_f, and region S_f
        assert len(figures["fusion.png"].axes) == 2 * len(fusion_pairs(predictions))
    confusion_axes = figures["confusion.png"].axes[0]
    assert_tick_labels_readable(confusion_axes, "y")
    assert_tick_labels_readable(confusion_axes, "x")
    assert_tick_labels_readable(figures["iou.png"].axes[0], "y")


def test_a_small_confusion_matrix_is_normalised_by_rows():
    conf = np.array([[8, 2, 0], [0, 0, 0], [1, 1, 2]])
    fig = confusion_figure(conf, ["a", "b", "c"])
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown[[0, 2]], [[80, 20, 0], [25, 25, 50]])
    assert np.ma.getmaskarray(shown)[1].all()  # no pixel of class b: nothing drawn
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"80", "20", "25", "50"} <= texts and "0" not in texts


def test_many_classes_show_the_most_confused_and_the_rest_as_other():
    rng = np.random.default_rng(0)
    conf = np.diag(rng.integers(1000, 2000, size=150))
    confused = rng.choice(150, size=45, replace=False)
    conf[confused, (confused + 1) % 150] = rng.integers(10, 900, size=45)
    conf[5, 77] = conf[140, 5] = conf[33, 34] = 5000
    assert {5, 77, 140, 33, 34} <= set(most_confused(conf, 30))
    fig = confusion_figure(conf, ADE20K_NAMES, max_classes=30)
    ax = fig.axes[0]
    assert "30 most confused of 150" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "other"
    rows = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert rows.shape == (30, 31)
    np.testing.assert_allclose(np.nansum(rows, axis=1), 100)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert ADE20K_NAMES[5] in names and ADE20K_NAMES[140] in names


def test_many_classes_show_only_the_classes_with_confused_pixels():
    conf = np.diag(np.arange(1000, 1150))
    conf[5, 77] = conf[140, 5] = conf[33, 34] = 900
    conf[60, 60] = 0  # absent from the ground truth and never predicted: never shown
    assert most_confused(conf, 30) == [5, 33, 34, 77, 140]
    ax = confusion_figure(conf, ADE20K_NAMES, max_classes=30).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        ADE20K_NAMES[c] for c in (5, 33, 34, 77, 140)]
    assert "the 5 of 150 classes with confused pixels" in ax.get_title()
    rows = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert rows.shape == (5, 6)
    np.testing.assert_allclose(rows[0], [100 * 1005 / 1905, 0, 0, 100 * 900 / 1905, 0, 0])


def test_a_class_without_ground_truth_is_hatched_where_a_zero_share_is_not():
    conf = np.array([[8, 2, 0], [0, 0, 0], [1, 1, 2]])  # class b: predicted, never in the truth
    ax = confusion_figure(conf, ["a", "b", "c"]).axes[0]
    hatched = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(hatched) == 1
    assert hatched[0].get_y() == pytest.approx(0.5) and hatched[0].get_height() == 1
    assert hatched[0].get_width() == 3  # the whole row b, and nothing of row a's zero share
    shown = ax.images[0].get_array()
    assert shown[0, 2] == 0 and not np.ma.getmaskarray(shown)[0, 2]


@pytest.mark.parametrize("classes, confused", [(19, 19), (150, 30)], ids=["19", "150"])
def test_confusion_numbers_are_readable_and_fit_their_cells(classes, confused):
    rng = np.random.default_rng(1)
    conf = rng.integers(0, 40, size=(classes, classes)) + np.diag(np.full(classes, 1000))
    conf[np.arange(classes), (np.arange(classes) + 1) % classes] = 1000  # 49% off the diagonal
    names = (CITYSCAPES_NAMES if classes == 19 else ADE20K_NAMES)
    fig = confusion_figure(conf, names, max_classes=30)
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    columns = len(ax.get_xticklabels())
    cell = ax.get_window_extent(renderer).width / columns  # pixels
    numbers = [t for t in ax.texts if t.get_text()]
    assert len(numbers) >= confused  # at least one number a row
    assert min(t.get_fontsize() for t in numbers) >= 8
    for text in numbers:
        box = text.get_window_extent(renderer)
        assert box.width <= cell and box.height <= cell, text.get_text()


def test_iou_classes_of_two_series_are_those_that_differ_largest_first():
    nan = math.nan
    table = np.array([[0.5, 0.5, nan, 0.3, nan, 0.0, 0.2],
                      [0.5, 0.9, nan, 0.1, 0.0, 0.0, 0.8]])
    # 0 equal, 1 by 0.4, 2 undefined in both, 3 by 0.2, 4 defined in one only, 5 both 0,
    # 6 by 0.6.
    assert iou_classes(table) == [6, 1, 3, 4]
    assert iou_classes(table[:1]) == [5, 6, 3, 0, 1]  # one series: present, lowest first


def test_iou_bars_of_many_classes_keep_those_where_the_series_differ_most():
    names = [f"class {i}" for i in range(100)]
    first = {n: 0.5 for n in names}
    second = dict(first, **{"class 7": 0.9, "class 42": 0.1, "class 99": 0.45})
    fig = iou_bars_figure({"A": first, "B": second}, max_classes=2)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["class 7", "class 42"]
    assert "differ most" in fig.texts[0].get_text()


def test_iou_bars_of_many_classes_leave_out_absent_and_equal_classes():
    names = [f"class {i}" for i in range(150)]
    first = {n: (0.5 if i < 100 else None) for i, n in enumerate(names)}
    second = dict(first, **{"class 3": 0.0, "class 120": 0.0, "class 50": 0.7})
    fig = iou_bars_figure({"A": first, "B": second}, max_classes=40)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["class 3", "class 50", "class 120"]
    assert "the 3 of 150 classes" in fig.texts[0].get_text()
    # Zero and undefined are marked apart, in the row of their series' bar.
    marks = {(t.get_text(), round(t.get_position()[1], 3)) for t in ax.texts}
    height = 0.8 / 2
    assert marks == {("0", round(0 + height / 2, 3)), ("0", round(2 + height / 2, 3)),
                     ("n/a", round(2 - height / 2, 3))}


def _boxes_overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("labels", [("S_i", "S_f"), (
    "seg_hrnet_tiny_baseline_64x128_sgd_lr2e-2_bs_8_epoch40",
    "seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch40",
    "seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch80")], ids=["short", "long"])
def test_iou_and_trimap_legends_fit_the_figure_under_the_title(labels):
    iou = {label: {n: 0.1 * i + 0.01 * j for j, n in enumerate(CITYSCAPES_NAMES)}
           for i, label in enumerate(labels)}
    curves = {label: {"1": 0.4 + 0.01 * i, "4": 0.6} for i, label in enumerate(labels)}
    for fig in (iou_bars_figure(iou), trimap_figure(curves, {label: 0.7 for label in labels})):
        assert_nothing_clipped(fig)
        renderer = fig.canvas.get_renderer()
        legend = fig.axes[0].get_legend().get_window_extent(renderer)
        title = fig.texts[0].get_window_extent(renderer)  # the figure's title
        assert not _boxes_overlap(legend, title) and title.y0 >= legend.y1


def test_trimap_differences_are_the_points_between_each_curve_and_the_reference():
    curves = {"S_i": {"1": 0.5, "2": 0.6, "4": 0.7},
              "S_s": {"1": 0.503, "2": None, "4": 0.7},
              "S_f": {"1": 0.498, "2": 0.61, "4": 0.6994}}
    differences = curve_differences(curves, "S_i")
    assert list(differences) == ["S_s", "S_f"]
    assert differences["S_s"][1] == pytest.approx(0.3) and math.isnan(differences["S_s"][2])
    assert differences["S_s"][4] == 0
    assert differences["S_f"] == pytest.approx({1: -0.2, 2: 1.0, 4: -0.06})
    plain = {"S_i": 0.72, "S_s": 0.7175, "S_f": 0.7231}
    fig = trimap_figure(curves, plain)
    lower = fig.axes[1]
    drawn = [line for line in lower.get_lines() if len(line.get_xdata()) == 3]
    assert [list(line.get_xdata()) for line in drawn] == [[1, 2, 4], [1, 2, 4]]
    np.testing.assert_allclose(drawn[0].get_ydata(), [0.3, math.nan, 0.0], atol=1e-9)
    np.testing.assert_allclose(drawn[1].get_ydata(), [-0.2, 1.0, -0.06], atol=1e-9)
    levels = sorted(line.get_ydata()[0] for line in lower.get_lines()
                    if len(line.get_xdata()) == 2)  # horizontal: zero and the all-pixel gaps
    np.testing.assert_allclose(levels, [-0.25, 0.0, 0.31], atol=1e-9)
    assert "S_i" in lower.get_title()
    assert len(trimap_figure({"S_i": curves["S_i"]}).axes) == 1  # nothing to subtract


def test_occupied_slots_leave_out_empty_ends_and_merge_empty_runs():
    assert occupied_slots([0, 0, 5, 0, 0, 3, 2, 0, 0]) == [(2, 3), (3, 5), (5, 6), (6, 7)]
    assert occupied_slots([1, 2, 3]) == [(0, 1), (1, 2), (2, 3)]
    assert occupied_slots([0, 0, 0]) == []
    assert occupied_slots([0, 0, 4]) == [(2, 3)]


def _fusion_block(conf_counts, length_counts):
    """A fusion block whose outcomes split each bin's pixels fixed 1/2, broken 1/4, changed 1/4
    (counts multiples of 4), the rest "same"."""
    def histograms(counts, edges, unit):
        counts = np.asarray(counts)
        return {"unit": unit, "edges": edges, "all": (2 * counts).tolist(),
                "same": counts.tolist(), "fixed": (counts // 2).tolist(),
                "broken": (counts // 4).tolist(), "changed": (counts // 4).tolist()}
    return {"confidence": histograms(conf_counts, [i / 20 for i in range(20)], "F"),
            "offset_length": histograms(length_counts, [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0,
                                                        32.0, 64.0, 128.0, 256.0, 512.0],
                                        "pixels")}


def test_fusion_histograms_follow_the_data_and_draw_every_outcome():
    saturated = [0] * 17 + [4, 40, 400]  # F in [0.85, 1): 17 of 20 bins empty
    lengths = [0, 0, 8, 0, 80, 8, 0, 0, 0, 0, 0, 0]
    fig = fusion_histograms_figure({"S_f vs S_i": _fusion_block(saturated, lengths),
                                    "region S_f vs region S_i": _fusion_block(saturated,
                                                                              lengths)})
    assert len(fig.axes) == 4  # two rows, one a fused pair
    length_ax, conf_ax = fig.axes[:2]
    assert [t.get_text() for t in conf_ax.get_xticklabels()] == ["0.85–0.9", "0.9–0.95",
                                                                  "0.95–1"]
    assert "none < 0.85" in conf_ax.get_xlabel()
    # [2, 4) is empty between two bins with pixels: one slot, kept.
    assert [t.get_text() for t in length_ax.get_xticklabels()] == ["1–2", "2–4", "4–8",
                                                                    "8–16"]
    assert "none < 1" in length_ax.get_xlabel() and "none ≥ 16" in length_ax.get_xlabel()
    bars = {c.get_label(): [p.get_height() for p in c] for c in conf_ax.containers}
    shares = 100 * np.array([4, 40, 400]) / 444
    for outcome in ("fixed", "broken", "changed"):
        np.testing.assert_allclose(bars[outcome], shares, rtol=1e-12)
    assert "S_f vs S_i" in length_ax.get_title(loc="left")
    assert "region S_f vs region S_i" in fig.axes[2].get_title(loc="left")


def test_figure_image_gives_the_rgb_pixels_of_the_figure():
    fig = iou_bars_figure({"A": {"x": 0.3, "y": None}})
    image = figure_image(fig)
    width, height = fig.canvas.get_width_height()
    assert image.dtype == np.uint8 and image.shape == (height, width, 3)
    assert (image == 255).all(axis=2).mean() > 0.3  # a white background
    assert (image != 255).any()
