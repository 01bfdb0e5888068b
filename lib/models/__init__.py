"""Networks: ``build_model(cfg)`` and the output types ``SegOutput`` and ``OCROutput``."""
import logging
import os

import torch

from ..utils.compat import unwrap_model
from ..utils.normalization import ImageNormalization
from .branched_seg_hrnet import BranchedSegHRNet
from .hrnet import StageSpec, set_bn_momentum
from .ocr import OCRSettings
from .offset_path import OffsetSettings
from .output import OCROutput, SegOutput
from .seg_hrnet import SegHRNet
from .seg_hrnet_ocr import BranchedSegHRNetOCR, SegHRNetOCR
from .weights import CheckpointError, check_finite, load_state_dict, read_state_dict
from .weights import load_pretrained as load_pretrained_weights

__all__ = ["MODELS", "build_model", "build_eval_model", "apply_speed_flags",
           "input_normalization", "SegOutput",
           "OCROutput", "SegHRNet",
           "BranchedSegHRNet", "SegHRNetOCR", "BranchedSegHRNetOCR", "StageSpec"]

logger = logging.getLogger(__name__)


def _main_stages(extra):
    return [StageSpec.from_config(extra[f"STAGE{k}"]) for k in range(1, 5)]


def _build_seg_hrnet(cfg):
    return SegHRNet(_main_stages(cfg.MODEL.EXTRA), cfg.DATASET.NUM_CLASSES,
                    cfg.MODEL.EXTRA.FINAL_CONV_KERNEL, cfg.MODEL.ALIGN_CORNERS)


def _offset_stages(extra):
    return {k: StageSpec.from_config(extra[f"STAGE{k}_2"]) for k in range(2, 5)}


def _offset_settings(cfg):
    extra = cfg.MODEL.EXTRA
    return OffsetSettings(
        offset_branch=extra.OFFSET_BRANCH, offset_threshold=extra.OFFSET_THRESHOLD,
        iterative_refinement=extra.ITERATIVE_REFINEMENT, logits=extra.LOGITS,
        grid_align_corners=extra.GRID_ALIGN_CORNERS, freeze_shared=cfg.MODEL.FREEZED_PAR)


def _ocr_settings(cfg):
    ocr = cfg.MODEL.OCR
    return OCRSettings(mid_channels=ocr.MID_CHANNELS, key_channels=ocr.KEY_CHANNELS,
                       dropout=ocr.DROPOUT, scale=ocr.SCALE)


def _build_branched_seg_hrnet(cfg):
    extra = cfg.MODEL.EXTRA
    return BranchedSegHRNet(
        _main_stages(extra), _offset_stages(extra), cfg.DATASET.NUM_CLASSES,
        final_conv_kernel=extra.FINAL_CONV_KERNEL, align_corners=cfg.MODEL.ALIGN_CORNERS,
        offset=_offset_settings(cfg))


def _build_seg_hrnet_ocr(cfg):
    return SegHRNetOCR(_main_stages(cfg.MODEL.EXTRA), cfg.DATASET.NUM_CLASSES,
                       align_corners=cfg.MODEL.ALIGN_CORNERS, ocr=_ocr_settings(cfg))


def _build_branched_seg_hrnet_ocr(cfg):
    extra = cfg.MODEL.EXTRA
    return BranchedSegHRNetOCR(
        _main_stages(extra), _offset_stages(extra), cfg.DATASET.NUM_CLASSES,
        align_corners=cfg.MODEL.ALIGN_CORNERS, ocr=_ocr_settings(cfg),
        offset=_offset_settings(cfg))


# Networks by MODEL.NAME; the config's MODEL_NAMES (lib/config/choices.py) lists the same names.
MODELS = {
    "seg_hrnet": _build_seg_hrnet,
    "branched_seg_hrnet": _build_branched_seg_hrnet,
    "seg_hrnet_ocr": _build_seg_hrnet_ocr,
    "branched_seg_hrnet_ocr": _build_branched_seg_hrnet_ocr,
}


def build_model(cfg, load_pretrained=True):
    """The network named by MODEL.NAME, initialised from MODEL.PRETRAINED / OFFSET_PRETRAINED.

    ``load_pretrained=False`` skips those files (evaluation loads TEST.MODEL_FILE instead).
    """
    name = cfg.MODEL.NAME
    if name not in MODELS:
        raise KeyError(f"unknown MODEL.NAME {name!r}; valid names: {sorted(MODELS)}")
    model = MODELS[name](cfg)
    set_bn_momentum(model, cfg.MODEL.BN_MOMENTUM)
    if load_pretrained and (cfg.MODEL.PRETRAINED or cfg.MODEL.OFFSET_PRETRAINED):
        load_pretrained_weights(model, cfg.MODEL.PRETRAINED, cfg.MODEL.OFFSET_PRETRAINED,
                                offset_head=cfg.MODEL.OFFSET_PRETRAINED_HEAD)
    return model


def build_eval_model(cfg, model_file, device):
    """The network with every tensor from ``model_file``, in eval mode on ``device``.

    MODEL.PRETRAINED is not read (the file holds all weights); TRAIN.CHANNELS_LAST and
    TRAIN.COMPILE apply as in training.  A file holding NaN or infinite weights is refused,
    naming its first such tensor (evaluation, inference and export all load through here).
    """
    if not model_file:
        raise CheckpointError("TEST.MODEL_FILE is empty: give the weights to evaluate")
    if not os.path.isfile(model_file):
        raise CheckpointError(f"TEST.MODEL_FILE {model_file} does not exist")
    state = read_state_dict(model_file)
    check_finite(state, model_file)
    model = build_model(cfg, load_pretrained=False)
    load_state_dict(model, state, model_file, require_all=True)
    return apply_speed_flags(model.to(device).eval(), channels_last=cfg.TRAIN.CHANNELS_LAST,
                             compile=cfg.TRAIN.COMPILE)


def apply_speed_flags(model, *, channels_last: bool, compile: bool, wrap=None):
    """TRAIN.CHANNELS_LAST and TRAIN.COMPILE on ``model``: channels-last memory, then
    ``wrap(model)`` when given (training's DistributedDataParallel), then ``torch.compile`` of
    the result.  Returns the model to call."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if wrap is not None:
        model = wrap(model)
    return torch.compile(model) if compile else model


def input_normalization(model) -> ImageNormalization:
    """How ``model`` wants its input normalised: the ``normalization`` of the network, bare or
    inside DistributedDataParallel and torch.compile wrappers."""
    network = unwrap_model(model)
    normalization = getattr(network, "normalization", None)
    if not isinstance(normalization, ImageNormalization):
        raise TypeError(f"{type(network).__name__} does not say how its input is normalised: "
                        f"give it a ``normalization`` attribute (lib.utils.normalization)")
    return normalization
