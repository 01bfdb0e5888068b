"""The layout of an evaluation's results: results.json of ``tools/test.py`` and the validation
records (``validation/iter<k>.json``).

- "final_head": the output field that ``.final`` evaluates ("fused_logits" for the offset
  networks, else "logits"): the head of the benchmark figures, the confusion matrix and the
  prediction files.
- "heads": {head: {"IoU": {class: IoU}, "mIoU", "pixel_acc", "mean_acc"}} of every head the
  network predicts classes in (``metrics.segmentation_metrics``), each with "per_condition"
  {condition: the same} on ACDC; "boundary" and "fusion" (``SegAccumulator.results``).
- results.json adds "model_file", "test_set", "scales", "flip", "num_images" and
  "confusion_matrix" (K x K counts of the final head, rows = ground truth); a validation record
  adds "iteration".

Fractions in [0, 1], null where undefined.  Files written before "final_head" existed held the
final head's figures (and "per_condition") on top as well as in "heads", or, older still, on top
only; ``upgrade`` reads them in this layout.
"""
import math
from collections.abc import Mapping

from .heads import final_head

__all__ = ["final_metrics", "json_safe", "upgrade"]

# The final head's figures that old files held on top.
_OLD_TOP = ("IoU", "mIoU", "pixel_acc", "mean_acc", "per_condition")


def final_metrics(results: Mapping) -> Mapping:
    """{"IoU", "mIoU", "pixel_acc", "mean_acc"(, "per_condition")} of the final head."""
    return results["heads"][results["final_head"]]


def upgrade(results):
    """``results`` in the current layout: a file written before "final_head" existed has its
    top-level figures moved into "heads" (they were the final head's: ``heads.final_head`` of its
    heads, or, in a file from before "heads" existed, a head named "final").  Anything else
    comes back unchanged, to be checked by its reader."""
    if not isinstance(results, Mapping) or "final_head" in results or "mIoU" not in results:
        return results
    current = {key: value for key, value in results.items() if key not in _OLD_TOP}
    heads = results.get("heads")
    if isinstance(heads, Mapping) and heads:
        current["final_head"] = final_head(heads)
    else:
        current["final_head"] = "final"
        current["heads"] = {"final": {key: results[key] for key in _OLD_TOP if key in results}}
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
