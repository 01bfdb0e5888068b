"""Figures render to PNG with every label inside the picture and readable with 19 and 150 classes."""
import cv2
import numpy as np
import pytest

from lib.datasets.ade20k import CLASS_NAMES as ADE20K_NAMES
from lib.datasets.cityscapes import CLASS_NAMES as CITYSCAPES_NAMES
from lib.evaluation.figures import (
    confusion_figure,
    evaluation_figures,
    figure_image,
    iou_bars_figure,
    most_confused,
    save_figure,
)
from lib.evaluation.heads import final_head
from tests.evaluation.synthetic import OFFSET_HEADS, analysed


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
@pytest.mark.parametrize("heads", [OFFSET_HEADS, ("logits",)], ids=["offset", "baseline"])
def test_the_evaluation_figures_are_pngs_with_every_label_inside(tmp_path, names, heads):
    analysis = analysed(names, heads)
    figures = evaluation_figures(analysis.results(names),
                                 analysis.confusion(final_head(heads)), names)
    expected = {"confusion.png", "iou.png", "trimap.png"} | (
        {"fusion.png"} if len(heads) > 1 else set())
    assert set(figures) == expected
    for name, fig in figures.items():
        assert_nothing_clipped(fig)
        save_figure(fig, tmp_path / "figures" / name)
        png = cv2.imread(str(tmp_path / "figures" / name))
        assert png.shape[:2][::-1] == fig.canvas.get_width_height()
        assert png.std() > 10  # something is drawn
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
    conf[5, 77] = conf[140, 5] = conf[33, 34] = 900
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


def test_iou_bars_of_many_classes_keep_those_where_the_series_differ_most():
    names = [f"class {i}" for i in range(100)]
    first = {n: 0.5 for n in names}
    second = dict(first, **{"class 7": 0.9, "class 42": 0.1, "class 99": 0.45})
    fig = iou_bars_figure({"A": first, "B": second}, max_classes=2)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["class 7", "class 42"]
    assert "differ most" in fig.axes[0].get_title()


def test_figure_image_gives_the_rgb_pixels_of_the_figure():
    fig = iou_bars_figure({"A": {"x": 0.3, "y": None}})
    image = figure_image(fig)
    width, height = fig.canvas.get_width_height()
    assert image.dtype == np.uint8 and image.shape == (height, width, 3)
    assert (image == 255).all(axis=2).mean() > 0.3  # a white background
    assert (image != 255).any()
