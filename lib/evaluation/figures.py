"""Figures of an evaluation, with matplotlib's Agg canvas (no pyplot, no display, no global state).

Every function takes plain data, as ``SegAccumulator.results`` gives it and results.json stores it
(fractions in [0, 1], None or NaN where undefined; class names in class order), and returns a
``matplotlib.figure.Figure``; ``save_figure`` writes a PNG and ``figure_image`` gives the
H x W x 3 uint8 RGB array that TensorBoard's ``add_image(..., dataformats="HWC")`` takes.
Values are drawn in %.  Many classes (ADE20K's 150) are shown as the subset that matters,
said in the title: the most confused classes, or those where the series differ most, never a
class without confused pixels or where the series agree.  A value of 0 is drawn apart from an
undefined one (a class in neither the ground truth nor the prediction).
"""
import io
import math
import os
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..utils.atomic import write_bytes
from .predictions import fusion_pairs, prediction_label

__all__ = ["most_confused", "confusion_figure", "iou_classes", "iou_bars_figure",
           "curve_differences", "trimap_figure", "occupied_slots", "fusion_histograms_figure",
           "evaluation_figures", "training_history_figure", "figure_image", "save_figure"]

_DPI = 100


def _figure(width_in, height_in):
    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _number(value):
    return math.nan if value is None else float(value)


def most_confused(conf: np.ndarray, count: int) -> list[int]:
    """Indices (in class order) of at most ``count`` classes with confused pixels (their own
    pixels predicted as another class plus other pixels predicted as them), the most confused
    chosen first.  A class with no confused pixel is never chosen, so fewer may come back."""
    off = conf.sum(axis=1) + conf.sum(axis=0) - 2 * np.diag(conf)
    order = np.argsort(-off, kind="stable")[:count]
    return sorted(order[off[order] > 0].tolist())


def _row_shares(conf, shown):
    """``(shares, empty)`` of the rows ``shown`` of the K x K counts ``conf``: the share of each
    row's pixels given to each class of ``shown``, and, when ``shown`` leaves classes out, a
    last column with the share given to those ("other"), NaN for a row without pixels
    (``empty``, a bool per row)."""
    rows = conf[shown]
    totals = rows.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals[:, None] > 0, rows / totals[:, None], np.nan)
    matrix = share[:, shown]
    if len(shown) < conf.shape[0]:
        matrix = np.concatenate([matrix, 1.0 - np.nansum(matrix, axis=1, keepdims=True)], axis=1)
        matrix[totals == 0, -1] = np.nan
    return matrix, totals == 0


def confusion_figure(conf, class_names: Sequence[str], *, max_classes: int = 30,
                     title: str = "confusion matrix") -> Figure:
    """Row-normalised confusion matrix (rows = ground truth): each row is the share of that
    class's pixels given to each predicted class.

    conf: K x K counts (array or tensor).  With more than ``max_classes`` classes only the
    ``most_confused`` ones are drawn (fewer when fewer classes have confused pixels), and a
    last column "other" holds the share of each row predicted as a class not drawn, so that
    rows still add up to 100%.  A row without ground-truth pixels is undefined: hatched grey,
    where a share of 0 is white.  The numbers (shares of 1% and more) are sized to the cells.
    """
    conf = np.asarray(conf.cpu() if hasattr(conf, "cpu") else conf, dtype=np.float64)
    names = list(class_names)
    shown = list(range(len(names)))
    if len(names) > max_classes:
        shown = most_confused(conf, max_classes)
        title = (f"{title}: the {len(shown)} most confused of {len(names)} classes"
                 if len(shown) == max_classes else
                 f"{title}: the {len(shown)} of {len(names)} classes with confused pixels")
        if not shown:
            return _message_figure(f"{title}: no pixel is predicted as another class")
    matrix, empty = _row_shares(conf, shown)
    columns = [names[c] for c in shown] + (["other"] if len(shown) < len(names) else [])
    n = len(shown)
    cell = 0.42
    fig = _figure(len(columns) * cell + 3.6, n * cell + 2.6)
    ax = fig.add_subplot()
    image = ax.imshow(100 * matrix, cmap="Blues", vmin=0, vmax=100, aspect="equal")
    for i in np.flatnonzero(empty):
        ax.add_patch(Rectangle((-0.5, i - 0.5), len(columns), 1, facecolor="0.88",
                               edgecolor="0.55", hatch="///", linewidth=0))
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=9)
    ax.set_yticks(range(n), [names[c] for c in shown], fontsize=9)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    if columns[-1] == "other":
        ax.axvline(n - 0.5, color="0.3", linewidth=1)
    fig.colorbar(image, ax=ax, shrink=0.6,
                 label="% of the ground-truth class (hatched: none in the ground truth)")
    size = _cell_font_size(ax, len(columns))
    for (i, j), value in np.ndenumerate(matrix):
        if np.isfinite(value) and value >= 0.01:
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=size,
                    color="white" if value > 0.6 else "black")
    return fig


def _cell_font_size(ax, columns):
    """Font size (points) at which "100" fills at most 3/4 of a cell of the laid-out axes,
    9 pt at most (the tick labels' size)."""
    ax.figure.canvas.draw()  # lays the figure out: the cells have their final size
    cell_points = ax.get_window_extent().width / columns * 72 / ax.figure.dpi
    # DejaVu Sans digits are 0.64 em wide: "100" is 1.9 em.
    return min(9.0, 0.75 * cell_points / 1.9)


def _message_figure(text):
    fig = _figure(7.5, 1.2)
    fig.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def iou_classes(table: np.ndarray) -> list[int]:
    """The classes an IoU figure of many classes can choose from, best first.

    table: S series x K classes, IoU with NaN where undefined (the class is in neither the
    ground truth nor the prediction).  With two or more series: the classes where the series
    differ, that is whose defined IoUs are not all equal, largest max - min first, then those
    defined in some series only (and equal where defined), in class order.  With one series:
    the classes where it is defined, the lowest IoU first.
    """
    table = np.asarray(table, dtype=np.float64)
    defined = np.isfinite(table)
    if len(table) == 1:
        present = np.flatnonzero(defined[0])
        return present[np.argsort(table[0, present], kind="stable")].tolist()
    some = defined.any(axis=0)
    spread = np.zeros(table.shape[1])
    high = np.where(defined, table, -np.inf).max(axis=0)
    low = np.where(defined, table, np.inf).min(axis=0)
    spread[some] = high[some] - low[some]
    differ = some & ((spread > 0) | ~defined.all(axis=0))
    candidates = np.flatnonzero(differ)
    return candidates[np.argsort(-spread[candidates], kind="stable")].tolist()


def iou_bars_figure(series: Mapping[str, Mapping[str, float]], *, max_classes: int = 40,
                    title: str = "IoU per class") -> Figure:
    """Horizontal bars of IoU per class, one bar per series (e.g. S_i and S_f, or two runs).

    series: {label: {class: IoU}}, the classes of the first in that order.  With more than
    ``max_classes`` classes, only ``max_classes`` of the ``iou_classes`` are drawn, in that
    order: where the series differ most, or, with one series, the lowest.  An IoU of 0 is
    marked "0" in the series' colour, an undefined one "n/a" in grey.  The legend, under the
    title, gives each series' mean over its defined classes.
    """
    labels = list(series)
    names = list(series[labels[0]])
    table = np.array([[_number(series[s].get(c)) for c in names] for s in labels])
    order = list(range(len(names)))
    if len(names) > max_classes:
        candidates = iou_classes(table)
        order = candidates[:max_classes]
        title = (f"{title}: the {len(order)} of {len(names)} classes "
                 + (f"where they differ most ({len(candidates)} differ)" if len(labels) > 1
                    else f"with the lowest IoU ({len(candidates)} present)"))
        if not order:
            return _message_figure(f"{title}: no class to show")
    height = 0.8 / len(labels)
    fig = _figure(8.0, len(order) * (0.16 * len(labels) + 0.12) + 1.8)
    ax = fig.add_subplot()
    positions = np.arange(len(order))
    for i, label in enumerate(labels):
        values = 100 * table[i, order]
        mean = np.nanmean(table[i]) if np.isfinite(table[i]).any() else math.nan
        y = positions + (i - (len(labels) - 1) / 2) * height
        bars = ax.barh(y, np.nan_to_num(values), height=height,
                       label=f"{label} (mean {100 * mean:.2f})")
        for position, value in zip(y, values, strict=True):
            if not value > 0:
                ax.text(0.8, position, "n/a" if math.isnan(value) else "0", va="center",
                        fontsize=7, color="0.45" if math.isnan(value)
                        else bars.patches[0].get_facecolor())
    ax.set_yticks(positions, [names[c] for c in order], fontsize=9)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("IoU (%); n/a: the class is in neither the ground truth nor the prediction")
    ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    _legend_below_title(ax, *ax.get_legend_handles_labels())
    return fig


def _legend_below_title(ax, handles, labels):
    """A legend just above ``ax`` (under the figure's title: constrained layout counts it as
    part of the axes), in as many columns (3 at most) as fit the figure's width; labels longer
    than 72 characters are wrapped."""
    labels = [textwrap.fill(label, 72) for label in labels]
    renderer = ax.figure.canvas.get_renderer()
    for ncols in range(min(len(labels), 3), 0, -1):
        legend = ax.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                           ncols=ncols, fontsize=9)
        if legend.get_window_extent(renderer).width <= ax.figure.bbox.width:
            break


def curve_differences(curves: Mapping[str, Mapping[str, float]],
                      reference: str) -> dict[str, dict[int, float]]:
    """{label: {width: points}} of every curve but ``reference``: 100 x (curve - reference) at
    each band width that both have, NaN where either is undefined.

    curves: {label: {"width": fraction}} (None or NaN where undefined), as trimap_figure takes.
    """
    base = {int(w): _number(v) for w, v in curves[reference].items()}
    return {label: {int(w): 100 * (_number(v) - base[int(w)]) for w, v in curve.items()
                    if int(w) in base}
            for label, curve in curves.items() if label != reference}


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def trimap_figure(curves: Mapping[str, Mapping[str, float]],
                  plain: Mapping[str, float] | None = None,
                  title: str = "mIoU near the boundaries", reference: str | None = None) -> Figure:
    """Trimap mIoU against band width, one line a series ({label: {"width": mIoU}}), and below,
    with two or more series, each series' difference from ``reference`` (default: the first)
    in points (``curve_differences``), where differences of tenths of a point show.

    plain: {label: mIoU over all pixels}, drawn as a dashed line of the same colour (in the
    lower panel: its difference).  Hollow markers of different shapes keep series that lie on
    top of each other visible.  Widths on a log2 axis.
    """
    reference = next(iter(curves)) if reference is None else reference
    plain = {label: value for label, value in (plain or {}).items() if value is not None}
    fig = _figure(7.5, 4.8 if len(curves) == 1 else 7.6)
    axes = fig.subplots(1 if len(curves) == 1 else 2, 1, sharex=True, squeeze=False,
                        height_ratios=None if len(curves) == 1 else (3, 2))[:, 0]
    widths = sorted({int(w) for curve in curves.values() for w in curve})
    colours = {}
    for i, (label, curve) in enumerate(curves.items()):
        xs = sorted(int(w) for w in curve)
        ys = [100 * _number(curve[str(w)]) for w in xs]
        name = label if label not in plain else f"{label} (all pixels {100 * plain[label]:.2f})"
        line, = axes[0].plot(xs, ys, marker=_MARKERS[i % len(_MARKERS)], fillstyle="none",
                             label=name)
        colours[label] = line.get_color()
        if label in plain:
            axes[0].axhline(100 * plain[label], color=line.get_color(), linestyle="--",
                            linewidth=1)
    axes[0].set_ylabel("mIoU of the pixels in the band (%)")
    fig.suptitle(title)
    _legend_below_title(axes[0], *axes[0].get_legend_handles_labels())
    if len(curves) > 1:
        _difference_panel(axes[1], curves, plain, reference, colours)
    axes[-1].set_xscale("log", base=2)
    axes[-1].set_xticks(widths, [str(w) for w in widths])
    axes[-1].minorticks_off()
    axes[-1].set_xlabel("band width (pixels of the label map)")
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def _difference_panel(ax, curves, plain, reference, colours):
    ax.axhline(0, color=colours[reference], linewidth=1.5)
    labels = list(curves)
    for label, points in curve_differences(curves, reference).items():
        xs = sorted(points)
        i = labels.index(label)
        ax.plot(xs, [points[w] for w in xs], marker=_MARKERS[i % len(_MARKERS)],
                fillstyle="none", color=colours[label])
        if label in plain and reference in plain:
            ax.axhline(100 * (plain[label] - plain[reference]), color=colours[label],
                       linestyle="--", linewidth=1)
    ax.set_title(textwrap.fill(f"difference from {reference}", 90), fontsize=10)
    ax.set_ylabel("points")


def _range(edges, a, b):
    """Text of the values of bins a..b-1: edges[i] is the lower edge of bin i; edges[-1] the
    upper edge of the last bin (inf: open above)."""
    if math.isinf(edges[b]):
        return f"≥{_short(edges[a])}"
    return f"{_short(edges[a])}–{_short(edges[b])}"


def _short(value):
    return f"{value:g}"


def occupied_slots(counts: Sequence[int]) -> list[tuple[int, int]]:
    """Bins [start, stop) of a histogram to draw one slot each: every bin with pixels on its
    own, every run of empty bins between two such bins as one slot, and the empty runs at
    either end left out ([] when every bin is empty).  So the drawn axis spans the data, and
    a network whose confidence sits in 3 of 20 bins fills the panel with those 3."""
    filled = np.flatnonzero(np.asarray(counts) > 0).tolist()
    slots = []
    for a, b in zip(filled, filled[1:] + [None]):
        slots.append((a, a + 1))
        if b is not None and b > a + 1:
            slots.append((a + 1, b))
    return slots


_OUTCOME_COLOURS = (("fixed", "tab:green"), ("broken", "tab:red"), ("changed", "tab:orange"))


def fusion_histograms_figure(blocks: Mapping[str, Mapping],
                             title: str = "what the fusion changed") -> Figure:
    """Histograms of offset length and confidence of the fixed, broken and changed pixels, one
    row a fused pair.

    blocks: {row title, e.g. "S_f vs S_i": one entry of the "fusion" results
    (``fusion.fusion_summary``)}.  Each outcome is drawn as the share of its own pixels in each
    slot, so that their shapes compare; the grey line is all labelled pixels.  The stored bins
    are drawn one a slot, side by side, along ``occupied_slots`` of all labelled pixels: empty
    bins at the ends are left out (the axis label says where) and runs of empty bins between
    are merged into one hatched slot.
    """
    fig = _figure(12.0, 1.4 + 3.8 * len(blocks))
    axes = fig.subplots(len(blocks), 2, squeeze=False)
    for row, (name, block) in zip(axes, blocks.items(), strict=True):
        lengths, confidences = block["offset_length"], block["confidence"]
        _histogram_panel(row[0], lengths, [*lengths["edges"], math.inf],
                         "offset length, pixels of the label map")
        _histogram_panel(row[1], confidences, [*confidences["edges"], 1.0], "confidence F")
        counts = ", ".join(f"{key} {sum(block['confidence'][key]):,}"
                           for key, _ in _OUTCOME_COLOURS)
        row[0].set_title(f"{name}: {sum(confidences['all']):,} labelled px; {counts}",
                         loc="left", fontsize=10)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=4,
               fontsize=9)
    fig.suptitle(title)
    return fig


def _histogram_panel(ax, hist, edges, xlabel):
    """hist: a histogram block (counts per stored bin); edges: its lower edges and the upper
    edge of the last bin."""
    slots = occupied_slots(hist["all"])
    if not slots:
        ax.text(0.5, 0.5, "no labelled pixels", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        return
    centres = np.arange(len(slots))
    for i, (name, colour) in enumerate(_OUTCOME_COLOURS):
        share = _shares_of(_slot_sums(hist[name], slots))
        if share is not None:
            ax.bar(centres + (i - 1) * 0.28, share, width=0.28, color=colour, label=name)
    ax.stairs(_shares_of(_slot_sums(hist["all"], slots)), np.arange(len(slots) + 1) - 0.5,
              baseline=None, color="0.4", linewidth=1.2, label="all labelled")
    for i, (a, b) in enumerate(slots):
        if b > a + 1:
            ax.axvspan(i - 0.5, i + 0.5, facecolor="none", edgecolor="0.75", hatch="//",
                       linewidth=0)
    ax.set_xticks(centres, [_range(edges, a, b) for a, b in slots], rotation=45, ha="right")
    ax.set_xlim(-0.5, len(slots) - 0.5)
    left_out = [f"none < {_short(edges[slots[0][0]])}"] if slots[0][0] > 0 else []
    if slots[-1][1] < len(edges) - 1:
        left_out.append(f"none ≥ {_short(edges[slots[-1][1]])}")
    ax.set_xlabel(xlabel + (f" ({'; '.join(left_out)})" if left_out else ""))
    ax.set_ylabel("% of the outcome's pixels")
    ax.grid(axis="y", alpha=0.3)


def _slot_sums(counts, slots):
    return [sum(counts[a:b]) for a, b in slots]


def _shares_of(counts):
    counts = np.asarray(counts, dtype=np.float64)
    return 100 * counts / counts.sum() if counts.sum() > 0 else None


def evaluation_figures(results: Mapping, confusion, class_names: Sequence[str]) -> dict:
    """{file name: Figure} of one evaluation, as tools/test.py writes them next to results.json.

    results: ``SegAccumulator.results``; confusion: K x K counts of the final prediction.
    "confusion.png" (final prediction), "iou.png" (S_i and S_f bars, or S_i alone), "trimap.png"
    (every prediction, and their differences from the first, S_i), and "fusion.png" (histograms,
    one row a fused prediction: S_f, and the OCR networks' region S_f) when there is a fused
    prediction.
    """
    predictions = list(results["predictions"])
    final = results["final_prediction"]
    pairs = fusion_pairs(predictions)
    shown = [pairs[final], final] if final in pairs else [final]
    figures = {
        "confusion.png": confusion_figure(confusion, class_names,
                                          title=f"confusion matrix of {prediction_label(final)}"),
        "iou.png": iou_bars_figure({prediction_label(p): results["predictions"][p]["IoU"]
                                    for p in shown}),
        "trimap.png": trimap_figure(
            {prediction_label(p): results["boundary"][p]["trimap_mIoU"] for p in predictions},
            {prediction_label(p): results["predictions"][p]["mIoU"] for p in predictions}),
    }
    fusion = results.get("fusion", {})
    if fusion:
        figures["fusion.png"] = fusion_histograms_figure(
            {f"{prediction_label(fused)} vs {prediction_label(block['against'])}": block
             for fused, block in fusion.items()},
            title="what the fusion changed: pixels fixed, broken and changed")
    return figures


def training_history_figure(records: Sequence[Mapping]) -> Figure:
    """How an offset network's validation changed over training: each prediction's mIoU, the fusion
    split of the final prediction, and the histograms of offset length and confidence of all
    labelled pixels (share of the pixels per bin, one column a validation).

    records: results of each validation with their "iteration" (``Validator`` records), in
    order; the network must have a fused prediction.
    """
    iterations = [r["iteration"] for r in records]
    final = records[-1]["final_prediction"]
    fig = _figure(13.0, 8.0)
    (ax_miou, ax_split), (ax_len, ax_conf) = fig.subplots(2, 2)
    for field in records[-1]["predictions"]:
        ax_miou.plot(iterations, [100 * _nan(r["predictions"][field]["mIoU"]) for r in records],
                     marker="o", label=prediction_label(field))
    ax_miou.set_ylabel("mIoU (%)")
    ax_miou.legend(fontsize=9)
    blocks = [r["fusion"][final] for r in records]
    for key, colour in (("fixed", "tab:green"), ("broken", "tab:red"),
                        ("changed", "tab:orange")):
        ax_split.plot(iterations, [100 * _nan(b[key]) for b in blocks], marker="o",
                      color=colour, label=key)
    ax_split.set_ylabel(f"% of labelled pixels ({prediction_label(final)} vs "
                        f"{prediction_label(fusion_pairs(records[-1]['predictions'])[final])})")
    ax_split.legend(fontsize=9)
    for ax, key, label in ((ax_len, "offset_length", "offset length bin (pixels)"),
                           (ax_conf, "confidence", "confidence F bin")):
        edges = blocks[-1][key]["edges"]
        shares = np.stack([_shares_of(b[key]["all"]) if _shares_of(b[key]["all"]) is not None
                           else np.zeros(len(edges)) for b in blocks], axis=1)
        image = ax.imshow(shares, aspect="auto", origin="lower", cmap="viridis",
                          extent=(-0.5, len(blocks) - 0.5, -0.5, len(edges) - 0.5))
        ax.set_yticks(np.arange(len(edges)), [_short(e) for e in edges], fontsize=7)
        ax.set_xticks(np.arange(len(blocks)), [str(i) for i in iterations], rotation=45,
                      fontsize=7)
        ax.set_ylabel(f"{label}, lower edge")
        fig.colorbar(image, ax=ax, label="% of labelled pixels")
    for ax in (ax_miou, ax_split):
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    for ax in (ax_len, ax_conf):
        ax.set_xlabel("validation at iteration")
    fig.suptitle("over training")
    return fig


def _nan(value):
    return float("nan") if value is None else value


def figure_image(fig: Figure) -> np.ndarray:
    """H x W x 3 uint8 RGB of the figure drawn at its size and dpi."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Figure, path) -> None:
    """Write ``fig`` as a PNG at ``path`` (whole or not at all), making the parent folders."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    write_bytes(os.fspath(path), buffer.getbuffer())

