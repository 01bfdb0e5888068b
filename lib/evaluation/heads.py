"""The predictions ("heads") of a network output, named by their ``SegOutput`` / ``OCROutput`` field.

The offset networks have S_i ``logits``, S_s ``seed_logits`` and S_f ``fused_logits``; the OCR
networks also ``region_logits`` (the soft-region head) and, with offsets, its ``region_seed_logits``
and ``region_fused_logits``; the baselines have ``logits`` only.  Each ``*fused_logits`` head is
paired with the ``*logits`` head it fuses.
"""
import torch.nn.functional as F

from ..utils.compat import unwrap_model
from ..utils.visualize import offsets_to_pixels

__all__ = ["output_heads", "fusion_pairs", "final_head", "head_label", "label_size_inputs",
           "label_size_offsets", "network_heads"]

_LABELS = {"logits": "S_i", "seed_logits": "S_s", "fused_logits": "S_f",
           "region_logits": "region S_i", "region_seed_logits": "region S_s",
           "region_fused_logits": "region S_f"}


def output_heads(output) -> list[str]:
    """Names of the class-map fields of ``output`` that are set, in field order."""
    return [name for name in output._fields
            if name.endswith("logits") and getattr(output, name) is not None]


def network_heads(model) -> tuple[str, ...]:
    """The output fields that ``model`` (or the network inside its DDP / compile wrappers)
    predicts classes in: its ``HEADS``, in field order."""
    return tuple(unwrap_model(model).HEADS)


def fusion_pairs(heads) -> dict[str, str]:
    """{fused head: the head it fuses}: "fused_logits" -> "logits", "region_fused_logits" ->
    "region_logits", for the pairs whose both heads are in ``heads``."""
    pairs = {}
    for head in heads:
        if head.endswith("fused_logits"):
            base = head[:-len("fused_logits")] + "logits"
            if base in heads:
                pairs[head] = base
    return pairs


def final_head(heads) -> str:
    """The head that ``.final`` evaluates: "fused_logits" when present, else "logits"."""
    return "fused_logits" if "fused_logits" in heads else "logits"


def head_label(head: str) -> str:
    """Short name for tables and figures: "S_i", "S_f", "region S_s", ...; else the field name."""
    return _LABELS.get(head, head)


def label_size_inputs(output, size, align_corners: bool) -> dict:
    """What ``SegAccumulator.update`` takes, from one network output, at the label size (H, W).

    output: ``SegOutput`` / ``OCROutput``, maps at any resolution (the networks give H/4 x W/4).
    Every class map is resized bilinearly with ``align_corners`` (MODEL.ALIGN_CORNERS) and
    reduced to its argmax, one at a time; the final head's is the evaluated prediction.
    Returns {"preds": {head: N x H x W int64}, "offsets": N x 2 x H x W (x, y) in pixels of
    the label map, or None, "confidence": N x 1 x H x W in [0, 1], or None}.  Offsets are in
    normalised align_corners=True units,
    which do not depend on the map's size: they are resized, then scaled by (W - 1) / 2 and
    (H - 1) / 2 (``offsets_to_pixels``).
    """
    # max().indices is argmax (the first of equal maxima; NaN counts as the maximum), several
    # times faster on the CPU for this channel reduction.
    preds = {head: _resize(getattr(output, head), size, align_corners).max(dim=1).indices
             for head in output_heads(output)}
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

