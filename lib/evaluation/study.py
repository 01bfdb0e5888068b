"""Repeated runs summarised as researchers report them (``tools/study.py``).

A study is several variants (an experiment file, optionally with KEY VALUE overrides), each
trained with the same seeds.  Per variant: the mean, the sample standard deviation and the
values over seeds of every figure of its results.json files.  Between variants: differences
*paired by seed* against the first variant, with a two-sided 95 % Student-t interval on the mean
of the per-seed differences.

Why paired and why Student-t: a seed fixes the data order, the crops and the flips of every
variant it trains (``TRAIN.SEED``), so the seed-to-seed spread that two variants share cancels in
their per-seed difference; with the three to five seeds a CPU study affords, the mean of those
differences divided by its standard error follows a t distribution with n - 1 degrees of
freedom if the differences are roughly normal, which is the usual assumption at such n (a
bootstrap of three values says nothing).  An interval that excludes 0 is what the tables call
significant; with n = 3, t(0.975, 2) = 4.30, so only differences well above their spread are.

Figures stay fractions (as in results.json); ``study_markdown`` prints them in %.
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from .comparison import headline
from .predictions import prediction_label
from .report import percent
from .results import final_metrics

__all__ = ["describe", "paired_difference", "significant", "variant_summary", "measures_by_seed",
           "study_differences", "class_differences", "mean_results", "study_markdown"]


def describe(values: Sequence[float]) -> dict:
    """{"mean", "std", "n", "values"} of finite ``values``: ``std`` is the sample standard
    deviation (ddof 1), None for fewer than two values; ``mean`` is None for none."""
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(values)
    return {"mean": float(np.mean(values)) if n else None,
            "std": float(np.std(values, ddof=1)) if n > 1 else None,
            "n": n, "values": values}


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> dict:
    """b - a over the seeds both have a finite value for: {"mean", "ci95", "n", "seeds"}.

    ``ci95`` is [low, high] of the mean difference, ``mean -/+ t(0.975, n - 1) * s / sqrt(n)``
    with s the sample standard deviation of the differences; None for fewer than two pairs.
    """
    seeds = sorted(s for s in a if s in b and _finite(a[s]) and _finite(b[s]))
    diffs = np.array([b[s] - a[s] for s in seeds], dtype=np.float64)
    n = len(seeds)
    result = {"mean": float(diffs.mean()) if n else None, "ci95": None, "n": n, "seeds": seeds}
    if n > 1:
        half = stats.t.ppf(0.975, n - 1) * diffs.std(ddof=1) / math.sqrt(n)
        result["ci95"] = [float(diffs.mean() - half), float(diffs.mean() + half)]
    return result


def _finite(value):
    return value is not None and math.isfinite(value)


def significant(difference: Mapping) -> bool:
    """Whether the 95 % interval of a ``paired_difference`` excludes 0."""
    ci = difference.get("ci95")
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


def variant_summary(results: Sequence[Mapping]) -> dict:
    """Summary of one variant's results.json contents (one per seed, in the layout of
    ``results``), in that layout: {"final_prediction": the first run's, "predictions": {field:
    {"IoU": {class: ...}, "mIoU", "pixel_acc", "mean_acc"}}, "boundary": {field:
    {"boundary_mIoU": ..., "trimap_mIoU": {width: ...}}}, "fusion": {fused field: {"differ",
    "fixed", "broken", "changed": ...}}}, each leaf a ``describe``."""

    def over(*path):
        return describe([_get(r, path) for r in results])

    summary = {"final_prediction": results[0]["final_prediction"] if results else None}
    summary["predictions"] = {
        field: {"IoU": {name: over("predictions", field, "IoU", name)
                        for name in _keys(results, ("predictions", field, "IoU"))},
                **{key: over("predictions", field, key)
                   for key in ("mIoU", "pixel_acc", "mean_acc")}}
        for field in _keys(results, ("predictions",))}
    summary["boundary"] = {
        field: {"boundary_mIoU": over("boundary", field, "boundary_mIoU"),
                "trimap_mIoU": {w: over("boundary", field, "trimap_mIoU", w)
                                for w in _keys(results, ("boundary", field, "trimap_mIoU"))}}
        for field in _keys(results, ("boundary",))}
    summary["fusion"] = {field: {key: over("fusion", field, key)
                                 for key in ("differ", "fixed", "broken", "changed")}
                         for field in _keys(results, ("fusion",))}
    return summary


def _get(mapping, path):
    for key in path:
        if not isinstance(mapping, Mapping) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def _keys(results, path):
    """The keys of the mapping at ``path``, in first-seen order over ``results``."""
    keys = {}
    for r in results:
        keys.update(dict.fromkeys(_get(r, path) or {}))
    return list(keys)


def measures_by_seed(runs: Mapping[int, Mapping]) -> dict[str, dict[int, float]]:
    """{measure: {seed: value}} of the headline figures (``comparison.headline``: mIoU, each
    prediction's mIoU, the final prediction's Boundary IoU, trimap and fusion shares) of one
    variant's runs, ``runs`` being {seed: results}."""
    table: dict[str, dict[int, float]] = {}
    for seed, results in runs.items():
        for measure, value in headline(results).items():
            if _finite(value):
                table.setdefault(measure, {})[seed] = value
    return table


def study_differences(variants: Mapping[str, Mapping[int, Mapping]],
                      references: Sequence[str] = ()) -> list[dict]:
    """Paired differences of every headline measure, every variant against each of
    ``references`` (default: the first variant): [{"a", "b", "metric", "mean", "ci95", "n"}],
    ``variants`` being {name: {seed: results}}."""
    out = []
    for ref, name in _pairs(variants, references):
        reference, measures = measures_by_seed(variants[ref]), measures_by_seed(variants[name])
        for metric, values in measures.items():
            if metric in reference:
                d = paired_difference(reference[metric], values)
                if d["n"]:
                    out.append({"a": ref, "b": name, "metric": metric, "mean": d["mean"],
                                "ci95": d["ci95"], "n": d["n"]})
    return out


def _pairs(variants, references):
    """(reference, variant) for every reference (default: the first variant) and every other
    variant."""
    names = list(variants)
    refs = list(references) or names[:1]
    unknown = [r for r in refs if r not in variants]
    if unknown:
        raise ValueError(f"reference variants {unknown} are not among {names}")
    return [(ref, name) for ref in refs for name in names if name != ref]


def class_differences(variants: Mapping[str, Mapping[int, Mapping]],
                      references: Sequence[str] = ()) -> list[dict]:
    """Per-class paired differences of the final prediction's IoU against each of ``references``
    (default: the first variant), only those whose 95 % interval excludes 0:
    [{"a", "b", "class", "mean", "ci95", "n"}]."""

    def by_class(runs):
        table: dict[str, dict[int, float]] = {}
        for seed, results in runs.items():
            for cls, value in final_metrics(results)["IoU"].items():
                if _finite(value):
                    table.setdefault(cls, {})[seed] = value
        return table

    out = []
    for ref, name in _pairs(variants, references):
        reference = by_class(variants[ref])
        for cls, values in by_class(variants[name]).items():
            if cls in reference:
                d = paired_difference(reference[cls], values)
                if significant(d):
                    out.append({"a": ref, "b": name, "class": cls, "mean": d["mean"],
                                "ci95": d["ci95"], "n": d["n"]})
    return out


def mean_results(results: Sequence[Mapping]) -> dict:
    """A results.json-shaped mapping whose numbers are the means over ``results`` of the
    numbers every one of them has, and whose strings are those all of them share (lists and
    other strings are dropped): what the comparison figures draw for a variant."""
    if not results:
        return {}
    first = results[0]
    out = {}
    for key, value in first.items():
        values = [r.get(key) for r in results]
        if isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in values):
            out[key] = mean_results(values)
        elif isinstance(value, str) and all(v == value for v in values):
            out[key] = value
        elif isinstance(value, int | float) and not isinstance(value, bool) and \
                all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            finite = [float(v) for v in values if math.isfinite(v)]
            out[key] = float(np.mean(finite)) if len(finite) == len(values) else float("nan")
    return out


def _mean_std(stat: Mapping | None) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    std = stat.get("std")
    return percent(stat["mean"]) + ("" if std is None else f" ± {100 * std:.2f}")


# Measures of the markdown's difference tables (study.json has every headline measure, the
# trimap bands too): the final mIoU, each prediction's, Boundary IoU and the fusion shares.
_SHOWN_PREFIXES = ("mIoU", "boundary IoU", "fusion: fixed", "fusion: broken")


def _shown(metric):
    return metric.startswith(_SHOWN_PREFIXES)


def _interval(ci) -> str:
    return "-" if ci is None else f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]"


def study_markdown(summary: Mapping[str, Mapping], differences: Sequence[Mapping],
                   class_diffs: Sequence[Mapping], failed: Sequence[Mapping] = (),
                   figures: Sequence[str] = ()) -> str:
    """study.md: one table of every variant (mean ± std over seeds, in %), the paired
    differences against the first variant (points, with their 95 % interval), the per-class
    differences whose interval excludes 0, the runs that failed, and links to ``figures``."""
    predictions = list(dict.fromkeys(p for s in summary.values() for p in s.get("predictions", {})))
    header = ["variant", "n", "mIoU (final)", *(f"mIoU {prediction_label(p)}" for p in predictions),
              "Boundary IoU (final)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] *
                                                              (len(header) - 1)) + "|"]
    for name, s in summary.items():
        final = s["predictions"].get(s["final_prediction"], {}).get("mIoU", describe([]))
        boundary = s.get("boundary", {}).get(s["final_prediction"], {})
        row = [name, str(final["n"]), _mean_std(final),
               *(_mean_std(s["predictions"].get(p, {}).get("mIoU")) for p in predictions),
               _mean_std(boundary.get("boundary_mIoU"))]
        lines.append("| " + " | ".join(row) + " |")
    text = ["## Variants (mean ± sample std over seeds, %)", "", *lines, ""]
    for ref in dict.fromkeys(d["a"] for d in differences):
        text += [f"## Paired differences against `{ref}` (points; 95 % Student-t interval "
                 "over seeds; * = the interval excludes 0)", "",
                 "| variant | measure | mean | 95 % interval | n |", "|---|---|---:|---:|---:|"]
        for d in differences:
            if d["a"] == ref and _shown(d["metric"]):
                mark = " *" if significant(d) else ""
                text.append(f"| {d['b']} | {d['metric']} | {100 * d['mean']:+.2f}{mark} | "
                            f"{_interval(d['ci95'])} | {d['n']} |")
        text.append("")
    text += ["## Per-class IoU differences whose 95 % interval excludes 0", "",
             "Each interval is a separate test, not corrected for the number of classes: with "
             "K classes about K / 20 of them exclude 0 by chance alone.", ""]
    if class_diffs:
        text += ["| variant | against | class | mean (points) | 95 % interval | n |",
                 "|---|---|---|---:|---:|---:|"]
        text += [f"| {d['b']} | {d['a']} | {d['class']} | {100 * d['mean']:+.2f} | "
                 f"{_interval(d['ci95'])} | {d['n']} |" for d in class_diffs]
    else:
        text.append("None.")
    text.append("")
    if failed:
        text += ["## Runs that did not finish", ""]
        text += [f"- `{r['name']}` seed {r['seed']}: {r['error']}" for r in failed]
        text.append("")
    if figures:
        text += ["## Figures (means over seeds)", ""]
        text += [f"![{f}]({f})" for f in figures]
        text.append("")
    return "\n".join(text)
