"""The predictions of a network output, each named by its ``SegOutput`` / ``OCROutput`` field.

A prediction is a map of class logits: the offset networks make S_i ``logits``, S_s
``seed_logits`` and S_f ``fused_logits``; the OCR networks also ``region_logits`` (S_i of the
soft-region classifier) and, with offsets, its ``region_seed_logits`` and
``region_fused_logits``; the baselines ``logits`` only (the networks list theirs in
``PREDICTIONS``).  Each ``*fused_logits`` prediction is paired with the ``*logits`` one it fuses.
"""
import torch.nn.functional as F

from ..utils.compat import unwrap_model
from ..utils.visualize import offsets_to_pixels

__all__ = ["output_predictions", "network_predictions", "fusion_pairs", "final_prediction",
           "prediction_label", "label_size_inputs", "label_size_offsets"]

_LABELS = {"logits": "S_i", "seed_logits": "S_s", "fused_logits": "S_f",
           "region_logits": "region S_i", "region_seed_logits": "region S_s",
           "region_fused_logits": "region S_f"}


def output_predictions(output) -> list[str]:
    """Names of the class-map fields of ``output`` that are set, in field order."""
    return [name for name in output._fields
            if name.endswith("logits") and getattr(output, name) is not None]


def network_predictions(model) -> tuple[str, ...]:
    """The output fields that ``model`` (or the network inside its DDP / compile wrappers)
    predicts classes in: its ``PREDICTIONS``, in field order."""
    return tuple(unwrap_model(model).PREDICTIONS)


def fusion_pairs(predictions) -> dict[str, str]:
    """{fused prediction: the prediction it fuses}: "fused_logits" -> "logits",
    "region_fused_logits" -> "region_logits", for the pairs whose both predictions are in
    ``predictions``."""
    pairs = {}
    for field in predictions:
        if field.endswith("fused_logits"):
            base = field[:-len("fused_logits")] + "logits"
            if base in predictions:
                pairs[field] = base
    return pairs


def final_prediction(predictions) -> str:
    """The prediction that ``.final`` evaluates: "fused_logits" when present, else "logits"."""
    return "fused_logits" if "fused_logits" in predictions else "logits"


def prediction_label(field: str) -> str:
    """Short name for tables and figures: "S_i", "S_f", "region S_s", ...; else the field name."""
    return _LABELS.get(field, field)


def label_size_inputs(output, size, align_corners: bool) -> dict:
    """What ``SegAccumulator.update`` takes, from one network output, at the label size (H, W).

    output: ``SegOutput`` / ``OCROutput``, maps at any resolution (the networks give H/4 x W/4).
    Every prediction's logits are resized bilinearly with ``align_corners``
    (MODEL.ALIGN_CORNERS) and reduced to their argmax, one prediction at a time.
    Returns {"preds": {field: N x H x W int64}, "offsets": N x 2 x H x W (x, y) in pixels of
    the label map, or None, "confidence": N x 1 x H x W in [0, 1], or None}.  Offsets are in
    normalised align_corners=True units, which do not depend on the map's size: they are resized,
    then scaled by (W - 1) / 2 and (H - 1) / 2 (``offsets_to_pixels``).
    """
    # max().indices is argmax (the first of equal maxima; NaN counts as the maximum), several
    # times faster on the CPU for this channel reduction.
    preds = {field: _resize(getattr(output, field), size, align_corners).max(dim=1).indices
             for field in output_predictions(output)}
    return {"preds": preds, **label_size_offsets(output, size, align_corners)}


def label_size_offsets(output, size, align_corners: bool) -> dict:
    """{"offsets": N x 2 x H x W in pixels of the label map, "confidence": N x 1 x H x W} of an
    offset network's output at the label size (H, W), as ``label_size_inputs`` makes them;
    both None for a network without offsets."""
    if output.offsets is None:
        return {"offsets": None, "confidence": None}
    offsets = _resize(output.offsets, size, align_corners)
    return {"offsets": offsets_to_pixels(offsets, *size),
            "confidence": _resize(output.confidence, size, align_corners)}


def _resize(x, size, align_corners):
    """Bilinear, in float32, also where the map has the size already (interpolating there is
    not the identity next to a NaN or an infinity)."""
    return F.interpolate(x.float(), size=tuple(size), mode="bilinear",
                         align_corners=align_corners)

