"""Several evaluations side by side (``tools/compare.py``): headline table and figures.

A run is the content of one results.json in the layout of ``results`` (older files are read
through ``results.upgrade``): its final prediction's figures ("mIoU", "pixel_acc", "mean_acc",
"IoU"), every prediction's mIoU, and the final prediction's "boundary" and "fusion" figures
when the evaluation made them.  Differences are against the first run.  ``read_run`` says which
file is not such a run, ``class_set_mismatch`` when runs score different classes.
"""
import os
from collections.abc import Mapping, Sequence

from ..utils.errors import ProjectError
from .figures import iou_bars_figure, trimap_figure
from .predictions import prediction_label
from .report import percent, points
from .results import final_metrics, upgrade

__all__ = ["ResultsError", "read_run", "class_set_mismatch", "short_labels", "run_labels",
           "headline", "headline_table", "comparison_figures"]

# What the comparison reads of a run, as nested {key: spec}; "*" stands for every key of an
# object, _FIGURE for a fraction (null where undefined: json_safe writes NaN so), _NAME for a
# string.
_FIGURE = "a number or null"
_NAME = "a string"
_REQUIRED = {"final_prediction": _NAME,
             "predictions": {"*": {"IoU": {"*": _FIGURE}, "mIoU": _FIGURE}}}
_OPTIONAL = {"boundary": {"*": {"boundary_mIoU": _FIGURE, "trimap_mIoU": {"*": _FIGURE}}},
             "fusion": {"*": {key: _FIGURE for key in ("differ", "fixed", "broken", "changed")}}}


class ResultsError(ProjectError, ValueError):
    """A file that is not a results.json of tools/test.py; the message names it and the field."""


def read_run(content, source: str) -> dict:
    """The run of a parsed results.json (``upgrade``d), or a ResultsError naming ``source`` and
    the first field that the comparison cannot read: "final_prediction", naming one of "predictions"
    (each with "IoU", {class: IoU} not empty, and "mIoU"), is required, "boundary" and "fusion" are
    checked where present."""
    run = upgrade(content)
    spec = dict(_REQUIRED)
    if isinstance(run, dict):
        spec.update((key, value) for key, value in _OPTIONAL.items() if key in run)
    problem = _mismatch(run, spec, "")
    if problem is None and run["final_prediction"] not in run["predictions"]:
        problem = (f"final_prediction {run['final_prediction']!r} is not one of predictions "
                   f"{sorted(run['predictions'])}")
    if problem is None and not final_metrics(run)["IoU"]:
        problem = f"predictions.{run['final_prediction']}.IoU names no class"
    if problem is not None:
        raise ResultsError(f"{source} is not a results.json of tools/test.py: {problem}")
    return run


def _mismatch(value, spec, path):
    """The first place where ``value`` does not have the shape ``spec``, or None."""
    if spec is _FIGURE:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return None
        return f"{path} is {value!r}, not {_FIGURE}"
    if spec is _NAME:
        return None if isinstance(value, str) else f"{path} is {value!r}, not {_NAME}"
    if not isinstance(value, dict):
        return f"{path or 'the file'} holds {type(value).__name__}, not an object"
    if "*" in spec:
        items = [(key, spec["*"]) for key in value]
    else:
        missing = [key for key in spec if key not in value]
        if missing:
            return f"{path or 'the file'} has no {missing[0]!r}"
        items = spec.items()
    for key, sub in items:
        problem = _mismatch(value[key], sub, f"{path}.{key}" if path else key)
        if problem is not None:
            return problem
    return None


def class_set_mismatch(runs: Mapping[str, Mapping]) -> str | None:
    """A warning when the runs' per-class IoU tables name different classes (their means then
    average different classes), else None."""
    names = {label: set(final_metrics(run)["IoU"]) for label, run in runs.items()}
    if len({frozenset(n) for n in names.values()}) == 1:
        return None
    first = next(iter(runs))
    shared = set.intersection(*names.values())
    counts = ", ".join(f"{label} {len(n)}" for label, n in names.items())
    return (f"the runs have different classes ({counts}; {len(shared)} in all of them): their "
            f"mIoU and accuracies average different classes, and iou.png shows the classes of "
            f"{first}")


def short_labels(names: Sequence[str], sep: str = "_") -> list[str]:
    """``names`` without the ``sep``-separated words that all of them start or end with, when
    the rest still tells them apart: "seg_hrnet_tiny_baseline_64x128_..." and
    "seg_hrnet_tiny_offset_64x128_..." become "baseline" and "offset".  A single name, or names
    that the shortening would make equal or empty, come back unchanged."""
    words = [name.split(sep) for name in names]
    if len(words) < 2:
        return list(names)
    shortest = min(len(w) for w in words)
    head = 0
    while head < shortest and len({w[head] for w in words}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head and len({w[len(w) - 1 - tail] for w in words}) == 1:
        tail += 1
    short = [sep.join(w[head:len(w) - tail]) for w in words]
    if any(not s for s in short) or len(set(short)) < len(short):
        return list(names)
    return short


def _label_choices(path):
    """Labels of a results file, shortest first: for an evaluation in a run folder
    (``<config>/<run>/eval/<evaluation>/results.json``, as tools/test.py writes) the
    configuration, then with the evaluation, then with the run too; otherwise its folder, then
    with its parent, then with theirs."""
    parts = os.path.abspath(path).split(os.sep)[1:-1]
    if len(parts) >= 4 and parts[-2] == "eval":
        config, run, evaluation = parts[-4], parts[-3], parts[-1]
        return [config, f"{config}/{evaluation}", f"{config}/{run}/{evaluation}"]
    return [os.path.join(*parts[-depth:]) if parts else path for depth in (1, 2, 3)]


def run_labels(paths: Sequence[str]) -> list[str]:
    """A short, distinct label per results file: the name of its configuration's folder (for
    an evaluation in a run folder) or of its folder, less the words that all of them share
    (``short_labels``), so that ".../seg_hrnet_tiny_baseline_64x128_.../..." and
    ".../seg_hrnet_tiny_offset_64x128_.../..." become "baseline" and "offset"; where two are
    the same, the evaluation's and then the run's name are added (or, outside run folders,
    more of the path), else a number."""
    choices = [_label_choices(p) for p in paths]
    for depth in range(3):
        labels = [c[depth] for c in choices]
        if len(set(labels)) == len(labels):
            return short_labels(labels) if depth == 0 else labels
    return [f"{label} #{i + 1}" for i, label in enumerate(labels)]


def headline(run: Mapping) -> dict:
    """{measure: fraction} of one run: the final prediction's mIoU and accuracies, Boundary IoU,
    trimap mIoU and fusion shares (named without the prediction, so that runs whose final
    predictions differ line up); each prediction's mIoU."""
    final = final_metrics(run)
    values = {"mIoU": final.get("mIoU"), "pixel acc": final.get("pixel_acc"),
              "mean acc": final.get("mean_acc")}
    field = run["final_prediction"]
    if field in run.get("boundary", {}):
        boundary = run["boundary"][field]
        values["boundary IoU"] = boundary["boundary_mIoU"]
        for width, value in boundary["trimap_mIoU"].items():
            values[f"trimap {width}px"] = value
    if field in run.get("fusion", {}):
        for key in ("differ", "fixed", "broken", "changed"):
            values[f"fusion: {key}"] = run["fusion"][field][key]
    for name, metrics in run["predictions"].items():
        values[f"mIoU {prediction_label(name)}"] = metrics["mIoU"]
    return values


def headline_table(runs: Mapping[str, Mapping]) -> str:
    """Markdown table: one row a measure (in %), one column a run, and after each run but the
    first its difference from the first in points ("-" where a run lacks the measure); a line
    below names each run's final prediction."""
    figures = {label: headline(run) for label, run in runs.items()}
    labels = list(figures)
    measures = sorted(dict.fromkeys(m for values in figures.values() for m in values),
                      key=_measure_group)
    first = figures[labels[0]]
    header = ["measure (%)", labels[0]]
    for label in labels[1:]:
        header += [label, f"{label} - {labels[0]}"]
    rows = []
    for measure in measures:
        row = [measure, percent(first.get(measure))]
        for label in labels[1:]:
            value = figures[label].get(measure)
            row += [percent(value), points(value, first.get(measure))]
        rows.append(row)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    finals = [f"{label} {prediction_label(run['final_prediction'])}" for label, run in runs.items()]
    lines += ["", "The rows without a prediction's name are each run's final prediction: "
              + ", ".join(finals) + "."]
    return "\n".join(lines) + "\n"


# Rows in the order of ``headline``: the final prediction's mIoU and accuracies (0), boundary,
# fusion, predictions.
_GROUPS = (("boundary IoU", 1), ("trimap", 1), ("fusion:", 2), ("mIoU ", 3))


def _measure_group(measure):
    return next((rank for prefix, rank in _GROUPS if measure.startswith(prefix)), 0)


def comparison_figures(runs: Mapping[str, Mapping]) -> dict:
    """{"iou.png": per-class IoU of each run's final prediction, "trimap.png": trimap curves of each
    run's final prediction (with its mIoU over all pixels)}; the trimap figure only when a run has
    boundary figures."""
    figures = {"iou.png": iou_bars_figure({label: final_metrics(run)["IoU"]
                                           for label, run in runs.items()},
                                          title="IoU per class")}
    curves, plain = {}, {}
    for label, run in runs.items():
        field = run["final_prediction"]
        if field in run.get("boundary", {}):
            name = f"{label} ({prediction_label(field)})"
            curves[name] = run["boundary"][field]["trimap_mIoU"]
            plain[name] = final_metrics(run).get("mIoU")
    if curves:
        figures["trimap.png"] = trimap_figure(curves, plain)
    return figures
