"""Figures of an evaluation, with matplotlib's Agg canvas (no pyplot, no display, no global state).

Every function takes plain data, as ``SegAnalysis.results`` gives it and results.json stores it
(fractions in [0, 1], None or NaN where undefined; class names in class order), and returns a
``matplotlib.figure.Figure``; ``save_figure`` writes a PNG and ``figure_image`` gives the
H x W x 3 uint8 RGB array that TensorBoard's ``add_image(..., dataformats="HWC")`` takes.
Values are drawn in %.  Many classes (ADE20K's 150) are shown as the subset that matters,
said in the title: the most confused classes, or those where the series differ most.
"""
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .heads import final_head, fusion_pairs, head_label

__all__ = ["most_confused", "confusion_figure", "iou_bars_figure", "trimap_figure",
           "fusion_histograms_figure", "evaluation_figures", "training_history_figure",
           "figure_image", "save_figure"]

_DPI = 100


def _figure(width_in, height_in):
    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _number(value):
    return math.nan if value is None else float(value)


def most_confused(conf: np.ndarray, count: int) -> list[int]:
    """Indices (in class order) of the ``count`` classes with the most confused pixels: their
    own pixels predicted as another class plus other pixels predicted as them."""
    off = conf.sum(axis=1) + conf.sum(axis=0) - 2 * np.diag(conf)
    return sorted(np.argsort(-off, kind="stable")[:count].tolist())


def confusion_figure(conf, class_names: Sequence[str], *, max_classes: int = 30,
                     title: str = "confusion matrix") -> Figure:
    """Row-normalised confusion matrix (rows = ground truth): each row is the share of that
    class's pixels given to each predicted class.

    conf: K x K counts (array or tensor).  With more than ``max_classes`` classes only the
    ``most_confused`` ones are drawn, and a last column "other" holds the share of each row
    predicted as a class not drawn, so that rows still add up to 100%.
    """
    conf = np.asarray(conf.cpu() if hasattr(conf, "cpu") else conf, dtype=np.float64)
    names = list(class_names)
    shown = list(range(len(names)))
    if len(names) > max_classes:
        shown = most_confused(conf, max_classes)
        title = f"{title}: the {max_classes} most confused of {len(names)} classes"
    rows = conf[shown]
    totals = rows.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, rows / totals, np.nan)
    columns = [names[c] for c in shown]
    matrix = share[:, shown]
    if len(shown) < len(names):
        matrix = np.concatenate([matrix, 1.0 - np.nansum(matrix, axis=1, keepdims=True)], axis=1)
        matrix[totals[:, 0] == 0, -1] = np.nan
        columns.append("other")
    n = len(shown)
    cell = 0.42
    fig = _figure(len(columns) * cell + 3.6, n * cell + 2.6)
    ax = fig.add_subplot()
    image = ax.imshow(100 * matrix, cmap="Blues", vmin=0, vmax=100, aspect="equal")
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=9)
    ax.set_yticks(range(n), [names[c] for c in shown], fontsize=9)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    for (i, j), value in np.ndenumerate(matrix):
        if np.isfinite(value) and value >= 0.01:
            ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.6 else "black")
    if columns[-1] == "other":
        ax.axvline(n - 0.5, color="0.3", linewidth=1)
    fig.colorbar(image, ax=ax, shrink=0.6, label="% of the ground-truth class")
    return fig


def iou_bars_figure(series: Mapping[str, Mapping[str, float]], *, max_classes: int = 40,
                    title: str = "IoU per class") -> Figure:
    """Horizontal bars of IoU per class, one bar per series (e.g. S_i and S_f, or two runs).

    series: {label: {class: IoU}}, the classes of the first in that order.  With more than
    ``max_classes`` classes and two or more series, only the classes where the series differ
    most (largest max - min) are drawn, largest first.  The legend gives each series' mean
    over its defined classes.
    """
    labels = list(series)
    names = list(series[labels[0]])
    table = np.array([[_number(series[s].get(c)) for c in names] for s in labels])
    order = list(range(len(names)))
    if len(names) > max_classes and len(labels) > 1:
        defined = np.isfinite(table)
        spread = np.where(defined.all(axis=0), np.ptp(np.where(defined, table, 0), axis=0), -1)
        order = np.argsort(-spread, kind="stable")[:max_classes].tolist()
        title = f"{title}: the {max_classes} of {len(names)} classes where they differ most"
    height = 0.8 / len(labels)
    fig = _figure(8.0, len(order) * (0.16 * len(labels) + 0.12) + 1.6)
    ax = fig.add_subplot()
    positions = np.arange(len(order))
    for i, label in enumerate(labels):
        values = 100 * table[i, order]
        mean = np.nanmean(table[i]) if np.isfinite(table[i]).any() else math.nan
        ax.barh(positions + (i - (len(labels) - 1) / 2) * height, np.nan_to_num(values),
                height=height, label=f"{label} (mean {100 * mean:.2f})")
    ax.set_yticks(positions, [names[c] for c in order], fontsize=9)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("IoU (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    fig.legend(loc="outside upper center", ncols=min(len(labels), 3), fontsize=9)
    return fig


def trimap_figure(curves: Mapping[str, Mapping[str, float]],
                  plain: Mapping[str, float] | None = None,
                  title: str = "mIoU near the boundaries") -> Figure:
    """Trimap mIoU against band width, one line a series ({label: {"width": mIoU}}).

    plain: {label: mIoU over all pixels}, drawn as a dashed line of the same colour (the limit
    of a band wider than the image).  Widths on a log2 axis.
    """
    fig = _figure(7.5, 4.8)
    ax = fig.add_subplot()
    widths = sorted({int(w) for curve in curves.values() for w in curve})
    for label, curve in curves.items():
        xs = sorted(int(w) for w in curve)
        ys = [100 * _number(curve[str(w)]) for w in xs]
        line, = ax.plot(xs, ys, marker="o", label=label)
        if plain is not None and label in plain and plain[label] is not None:
            ax.axhline(100 * plain[label], color=line.get_color(), linestyle="--", linewidth=1)
            line.set_label(f"{label} (all pixels {100 * plain[label]:.2f})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.minorticks_off()
    ax.set_xlabel("band width (pixels of the label map)")
    ax.set_ylabel("mIoU of the pixels in the band (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(title)
    return fig


def _short(value):
    return f"{value:g}"


def fusion_histograms_figure(block: Mapping, title: str = "what the fusion changed") -> Figure:
    """Histograms of offset length and confidence of the fixed and of the broken pixels.

    block: one entry of the "fusion" results (``fusion.fusion_summary``).  Each outcome is
    drawn as the share of its own pixels in each bin, so that their shapes compare; the grey
    line is all labelled pixels.  Length bins are drawn one a slot (they double), confidence
    bins at their values.
    """
    fig = _figure(12.0, 4.6)
    axes = fig.subplots(1, 2)
    edges = block["offset_length"]["edges"]
    _histogram_panel(axes[0], block["offset_length"], np.arange(len(edges)), 1.0,
                     "offset length (pixels of the label map)")
    axes[0].set_xticks(np.arange(len(edges)),
                       [f"{_short(a)}–{_short(b)}" for a, b in zip(edges, edges[1:])]
                       + [f"≥{_short(edges[-1])}"], rotation=45, ha="right")
    edges = np.asarray(block["confidence"]["edges"])
    width = 1.0 / len(edges)
    _histogram_panel(axes[1], block["confidence"], edges + width / 2, width, "confidence F")
    axes[1].set_xlim(0, 1)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3,
               fontsize=9)
    fig.suptitle(title)
    return fig


def _histogram_panel(ax, hist, centres, width, xlabel):
    for name, colour, shift in (("fixed", "tab:green", -0.25), ("broken", "tab:red", 0.25)):
        share = _shares_of(hist[name])
        if share is not None:
            ax.bar(centres + shift * width, share, width=width / 2, color=colour,
                   label=f"{name} ({sum(hist[name]):,} px)")
    share = _shares_of(hist["all"])
    if share is not None:
        ax.step(centres, share, where="mid", color="0.4", linewidth=1.2,
                label=f"all labelled ({sum(hist['all']):,} px)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("% of the outcome's pixels")
    ax.grid(axis="y", alpha=0.3)


def _shares_of(counts):
    counts = np.asarray(counts, dtype=np.float64)
    return 100 * counts / counts.sum() if counts.sum() > 0 else None


def evaluation_figures(results: Mapping, confusion, class_names: Sequence[str]) -> dict:
    """{file name: Figure} of one evaluation, as tools/test.py writes them next to results.json.

    results: ``SegAnalysis.results``; confusion: K x K counts of the final head.
    "confusion.png" (final head), "iou.png" (S_i and S_f bars, or S_i alone), "trimap.png"
    (every head), and "fusion.png" (histograms) when there is a fused head.
    """
    heads = list(results["heads"])
    final = final_head(heads)
    pairs = fusion_pairs(heads)
    shown = [pairs[final], final] if final in pairs else [final]
    figures = {
        "confusion.png": confusion_figure(confusion, class_names,
                                          title=f"confusion matrix of {head_label(final)}"),
        "iou.png": iou_bars_figure({head_label(h): results["heads"][h]["IoU"] for h in shown}),
        "trimap.png": trimap_figure(
            {head_label(h): results["boundary"][h]["trimap_mIoU"] for h in heads},
            {head_label(h): results["heads"][h]["mIoU"] for h in heads}),
    }
    if final in results.get("fusion", {}):
        figures["fusion.png"] = fusion_histograms_figure(
            results["fusion"][final],
            title=f"{head_label(final)} against {head_label(pairs[final])}: pixels fixed "
                  f"and broken")
    return figures


def training_history_figure(records: Sequence[Mapping]) -> Figure:
    """How an offset network's validation changed over training: each head's mIoU, the fusion
    split of the final head, and the histograms of offset length and confidence of all labelled
    pixels (share of the pixels per bin, one column a validation).

    records: results of each validation with their "iteration" (``Validator`` records), in
    order; the network must have a fused head.
    """
    iterations = [r["iteration"] for r in records]
    final = final_head(records[-1]["heads"])
    fig = _figure(13.0, 8.0)
    (ax_miou, ax_split), (ax_len, ax_conf) = fig.subplots(2, 2)
    for head in records[-1]["heads"]:
        ax_miou.plot(iterations, [100 * _nan(r["heads"][head]["mIoU"]) for r in records],
                     marker="o", label=head_label(head))
    ax_miou.set_ylabel("mIoU (%)")
    ax_miou.legend(fontsize=9)
    blocks = [r["fusion"][final] for r in records]
    for key, colour in (("fixed", "tab:green"), ("broken", "tab:red"),
                        ("changed", "tab:orange")):
        ax_split.plot(iterations, [100 * _nan(b[key]) for b in blocks], marker="o",
                      color=colour, label=key)
    ax_split.set_ylabel(f"% of labelled pixels ({head_label(final)} vs "
                        f"{head_label(fusion_pairs(records[-1]['heads'])[final])})")
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
    """Write ``fig`` as a PNG at ``path``, making the parent folders."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=_DPI)

