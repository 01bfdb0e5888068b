"""Rules that make published experiment files build the network they were written for.

They apply to the raw YAML mapping of a file, before its keys are checked and merged, and never to
command-line overrides.

The name clash: the official HRNet-OCR files say ``MODEL.NAME seg_hrnet_ocr`` for HRNetV2 + OCR,
while the OVeNet repository uses the same name for its offset-vector network and describes its
offset path in ``MODEL.EXTRA`` (OFFSET_BRANCH, STAGE2_2..STAGE4_2).  Rule: a file that says
``seg_hrnet_ocr`` and sets any of those keys builds ``branched_seg_hrnet_ocr``, with a warning;
one that sets none of them builds ``seg_hrnet_ocr``.

Both codes also fixed two settings that our defaults choose differently: their bilinear resizes
used align_corners=True (MODEL.ALIGN_CORNERS) and their batch norms momentum 0.1
(MODEL.BN_MOMENTUM).  A ``seg_hrnet_ocr`` file that does not set a key gets that value.
"""
import copy
import logging

logger = logging.getLogger(__name__)

_CLASHING_NAME = "seg_hrnet_ocr"
_OFFSET_NETWORK = "branched_seg_hrnet_ocr"
_OFFSET_KEYS = ("OFFSET_BRANCH", "STAGE2_2", "STAGE3_2", "STAGE4_2")
_OCR_CODE_SETTINGS = {"ALIGN_CORNERS": True, "BN_MOMENTUM": 0.1}


def resolve_published(raw: dict, source: str) -> dict:
    """The mapping of the YAML file ``source`` with the rules above applied (a new dict)."""
    model = raw.get("MODEL")
    if not isinstance(model, dict) or model.get("NAME") != _CLASHING_NAME:
        return raw
    resolved = copy.deepcopy(raw)
    model = resolved["MODEL"]
    extra = model.get("EXTRA") if isinstance(model.get("EXTRA"), dict) else {}
    offset_keys = [k for k in _OFFSET_KEYS if k in extra]
    if offset_keys:
        model["NAME"] = _OFFSET_NETWORK
        logger.warning(
            "%s: MODEL.NAME %s with MODEL.EXTRA.%s is an OVeNet-repository file: building %s "
            "(the offset-vector HRNet-OCR); write MODEL.NAME %s to say so", source,
            _CLASHING_NAME, ", ".join(offset_keys), _OFFSET_NETWORK, _OFFSET_NETWORK)
    else:
        logger.warning(
            "%s: MODEL.NAME %s without MODEL.EXTRA.OFFSET_BRANCH or STAGE*_2 is an HRNet-OCR file: "
            "building %s (HRNetV2 + OCR, no offset path); OVeNet-repository files use the same "
            "name for %s and set those keys", source, _CLASHING_NAME, _CLASHING_NAME,
            _OFFSET_NETWORK)
    for key, value in _OCR_CODE_SETTINGS.items():
        if key not in model:
            model[key] = value
            logger.info("%s: MODEL.%s not set, %s as in the HRNet-OCR code", source, key, value)
    return resolved
