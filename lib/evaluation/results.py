"""The layout of an evaluation's results: results.json of ``tools/test.py`` and the validation
records (``validation/iter<k>.json``).

- "final_prediction": the output field that ``.final`` evaluates ("fused_logits", S_f, for the
  offset networks, else "logits", S_i): the prediction of the benchmark figures, the confusion
  matrix and the prediction files.
- "predictions": {field: {"IoU": {class: IoU}, "mIoU", "pixel_acc", "mean_acc"}} of every
  prediction the network makes (S_i, S_s, S_f, ...: ``predictions``; the figures of
  ``metrics.segmentation_metrics``), each with "per_condition" {condition: the same} on ACDC;
  "boundary" and "fusion" (``SegAccumulator.results``).
- results.json adds "model_file", "test_set", "scales", "flip", "num_images" and
  "confusion_matrix" (K x K counts of the final prediction, rows = ground truth); a validation
  record adds "iteration".

Fractions in [0, 1], null where undefined.  ``upgrade`` reads the files of earlier releases in
this layout: they named the predictions "heads" ("final_head", "heads"); before "final_head"
existed they held the final prediction's figures (and "per_condition") on top as well as in
"heads", or, older still, on top only.
"""
import math
from collections.abc import Mapping

from .predictions import final_prediction

__all__ = ["final_metrics", "json_safe", "upgrade"]

# The final prediction's figures that old files held on top.
_OLD_TOP = ("IoU", "mIoU", "pixel_acc", "mean_acc", "per_condition")


def final_metrics(results: Mapping) -> Mapping:
    """{"IoU", "mIoU", "pixel_acc", "mean_acc"(, "per_condition")} of the final prediction."""
    return results["predictions"][results["final_prediction"]]


def upgrade(results):
    """``results`` in the current layout.  "final_head" and "heads" of earlier releases become
    "final_prediction" and "predictions"; a file from before "final_head" existed has its
    top-level figures moved into "predictions" (they were the final prediction's:
    ``final_prediction`` of its "heads", or, in a file from before "heads" existed, a
    prediction named "final").  Anything else comes back unchanged, to be checked by its
    reader."""
    if not isinstance(results, Mapping) or "final_prediction" in results:
        return results
    if "final_head" in results:
        renamed = {"final_head": "final_prediction", "heads": "predictions"}
        return {renamed.get(key, key): value for key, value in results.items()}
    if "mIoU" not in results:
        return results
    current = {key: value for key, value in results.items() if key not in _OLD_TOP + ("heads",)}
    heads = results.get("heads")
    if isinstance(heads, Mapping) and heads:
        current["final_prediction"] = final_prediction(heads)
        current["predictions"] = dict(heads)
    else:
        current["final_prediction"] = "final"
        current["predictions"] = {"final": {key: results[key] for key in _OLD_TOP
                                            if key in results}}
    return current


def json_safe(obj):
    """A copy of nested dicts / lists / tuples with NaN and infinities replaced by None."""
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
