"""What a person reads of an evaluation: text tables for the log (values in %, "-" where
undefined) and the figures (``figures.evaluation_figures``); ``report`` makes both."""
import math
from collections.abc import Mapping, Sequence

from .figures import evaluation_figures
from .predictions import fusion_pairs, prediction_label
from .results import final_metrics

__all__ = ["report", "final_table", "predictions_table", "boundary_table", "fusion_table",
           "analysis_tables", "text_table", "percent", "points"]


def report(evaluation, *, figures: bool = True) -> tuple[str, dict]:
    """(tables, {file name: Figure}) of an ``loop.Evaluation`` of a labelled set: the final
    prediction's table (``final_table``) and ``analysis_tables``; with ``figures``, the figures
    (else {}: drawing them takes a while)."""
    results = evaluation.results
    tables = f"{final_table(results)}\n\n{analysis_tables(results)}"
    if not figures:
        return tables, {}
    names = list(final_metrics(results)["IoU"])
    return tables, evaluation_figures(results, evaluation.confusion, names)


def percent(value) -> str:
    """A fraction as a percentage with two decimals; "-" for None or NaN."""
    return "-" if value is None or not math.isfinite(value) else f"{100.0 * value:.2f}"


def points(a, b) -> str:
    """a - b of two fractions in percentage points, signed; "-" when either is undefined."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return "-"
    return f"{100.0 * (a - b):+.2f}"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]],
               rule_before: int | None = None) -> str:
    """Aligned columns: the first left, the others right; a rule under the header and, with
    ``rule_before``, above that row."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        cells = [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([str(row[0]).ljust(widths[0]), *cells]).rstrip()

    rule = "-" * len(line(header))
    lines = [line(header), rule]
    for i, row in enumerate(rows):
        if i == rule_before:
            lines.append(rule)
        lines.append(line(row))
    return "\n".join(lines)


def final_table(results: Mapping) -> str:
    """The final prediction's IoU per class, then mIoU, pixel accuracy and mean accuracy; a column
    "all", and one a condition on ACDC."""
    final = final_metrics(results)
    columns = {"all": final, **final.get("per_condition", {})}
    names = list(final["IoU"])
    rows = [[name, *(percent(m["IoU"][name]) for m in columns.values())] for name in names]
    rows += [[label, *(percent(m[key]) for m in columns.values())]
             for label, key in (("mIoU", "mIoU"), ("pixel acc", "pixel_acc"),
                                ("mean acc", "mean_acc"))]
    return text_table(["class", *columns], rows, rule_before=len(names))


def predictions_table(results: Mapping) -> str:
    """IoU per class of every prediction, and "S_f - S_i" (points) for every fused prediction; then
    mIoU, pixel accuracy and mean accuracy."""
    predictions = results["predictions"]
    pairs = fusion_pairs(list(predictions))
    names = list(next(iter(predictions.values()))["IoU"])
    header = ["class", *(prediction_label(p) for p in predictions),
              *(f"{prediction_label(f)} - {prediction_label(b)}" for f, b in pairs.items())]

    def row(label, get):
        return [label, *(percent(get(predictions[p])) for p in predictions),
                *(points(get(predictions[f]), get(predictions[b])) for f, b in pairs.items())]

    rows = [row(name, lambda m, name=name: m["IoU"][name]) for name in names]
    rows += [row(label, lambda m, key=key: m[key])
             for label, key in (("mIoU", "mIoU"), ("pixel acc", "pixel_acc"),
                                ("mean acc", "mean_acc"))]
    return text_table(header, rows, rule_before=len(names))


def boundary_table(results: Mapping) -> str:
    """Per prediction: trimap mIoU at each band width and Boundary mIoU."""
    boundary = results["boundary"]
    widths = list(next(iter(boundary.values()))["trimap_mIoU"])
    header = ["prediction", *(f"trimap {w}px" for w in widths), "boundary IoU"]
    rows = [[prediction_label(p), *(percent(b["trimap_mIoU"][w]) for w in widths),
             percent(b["boundary_mIoU"])] for p, b in boundary.items()]
    return text_table(header, rows)


def fusion_table(results: Mapping) -> str:
    """Per fused prediction (and condition): labelled pixels, shares that differ, fixed, broken,
    changed, and fixed - broken (points)."""
    header = ["fusion", "pixels", "differ", "fixed", "broken", "changed", "fixed - broken"]
    rows = []
    for fused, block in results["fusion"].items():
        name = f"{prediction_label(fused)} vs {prediction_label(block['against'])}"
        for label, entry in [(name, block), *((f"{name} {condition}", entry) for condition, entry
                                              in block.get("per_condition", {}).items())]:
            rows.append([label, f"{entry['pixels']:,}",
                         *(percent(entry[k]) for k in ("differ", "fixed", "broken", "changed")),
                         points(entry["fixed"], entry["broken"])])
    return text_table(header, rows)


def analysis_tables(results: Mapping) -> str:
    """The three tables with a title each (the fusion table only with a fused prediction)."""
    parts = [("IoU of every prediction (%)", predictions_table(results)),
             ("boundaries (mIoU, %)", boundary_table(results))]
    if results.get("fusion"):
        parts.append(("what the fusion changed (% of the labelled pixels)",
                      fusion_table(results)))
    return "\n\n".join(f"{title}:\n{table}" for title, table in parts)
