"""Weight files of every origin, read into a network: formats, initialisation rules, reports.

Foreign formats recognised from their keys (never from a flag):
- ImageNet HRNet classification files: trunk keys plus ``incre_modules``, ``downsamp_modules``,
  ``final_layer`` and ``classifier`` (classification only, dropped).
- timm's HRNet state dicts (``.pth``) and the model hubs' ``.safetensors`` files: the official
  ImageNet names (see "Hub weights" below).
- Official HRNetV2 segmentation checkpoints: keys prefixed ``model.`` (the training wrapper),
  optionally ``module.`` (DataParallel), with the criterion's ``loss.*`` tensors (dropped).
- Thesis checkpoints: like the official ones plus ``transition3_2``, ``stage4_2``, ``offset_layer``
  and a top-level coordinate-grid tensor (a key without a dot whose last dimension is 2; dropped,
  the grid is recomputed).
- Official HRNet-OCR checkpoints (``conv3x3_ocr``, ``ocr_*``, ``cls_head``, ``aux_head``) and
  OVeNet-OCR ones (plus ``transition3_2``, ``stage4_2``, ``aux_head_offset`` and the grid
  ``coords``, dropped).  An HRNetV2 segmentation file initialises an OCR network with its
  ``last_layer`` as ``aux_head``, as the OVeNet code did.
- ``checkpoint.pth.tar`` files of the original codes hold NumPy scalars (``best_mIoU``); NumPy
  scalars and dtypes are the only non-torch objects ``read_state_dict`` lets through.
- Our own: ``checkpoint.pth.tar`` (a dict with ``model``), ``best.pth`` / ``final_state.pth``;
  written and resumed by ``lib.engine.checkpointer.Checkpointer``.

Every load logs what each top-level module received and raises ``CheckpointError`` on a shape
mismatch, on a key the model does not have, or when nothing in the file matches the model.  The
one exception: initialisation (MODEL.PRETRAINED) from a file made for another number of classes
leaves out the network's classifiers, which keep their fresh initialisation.

Hub weights.  timm's ``hrnet_w48`` and ``hrnet_w48_ssld`` (the Paddle SSLD ImageNet weights) keep
the module names of the official HRNet classification code: the stem ``conv1 bn1 conv2 bn2``
(timm's ``act1``/``act2`` hold no tensors), ``layer1``, ``transition1..3``, ``stage2..4`` with
``branches`` and ``fuse_layers`` (its resize layers hold no tensors either), then the
classification head ``incre_modules``, ``downsamp_modules``, ``final_layer`` and ``classifier``
(SSLD's head convolutions have no bias).  Their state dicts therefore need no renaming: every one
of the 1,830 trunk tensors of HRNetV2-W48 keeps its key, and the head is left out as for the
official ImageNet file (tests/models/test_weights_hub.py checks this against the installed
timm).  One difference is in the architecture, not in the names: timm's fusion upsamples lower
branches with nearest-neighbour resizing, as the official classification network does, whereas
the segmentation trunk resizes bilinearly, as the official segmentation network does.  Both kinds
of ImageNet weights are therefore used exactly as HRNetV2 uses the official file.
"""
import contextlib
import logging
import os
from collections import OrderedDict

import numpy as np
import torch
from safetensors.torch import load_file

from ..utils.errors import ProjectError

logger = logging.getLogger(__name__)

_WRAPPER_PREFIXES = ("module.", "model.")
_CLASSIFICATION_ONLY = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")
_SHOW = 5


class CheckpointError(ProjectError, RuntimeError):
    """A weight file that does not fit the model; the message names the file and the keys."""


def read_state_dict(path):
    """The tensors of a weight file as a flat dict, wrapper prefixes and non-model keys removed."""
    if not os.path.isfile(path):
        raise CheckpointError(f"weight file not found: {path}")
    if path.endswith(".safetensors"):
        return strip_wrappers(read_safetensors(path))
    try:
        with _numpy_scalars_allowed():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or foreign pickles
        raise CheckpointError(f"cannot read weight file {path}: {e}") from e
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors")
    return strip_wrappers(obj)


def nonfinite_tensors(named_tensors):
    """Names of the floating-point tensors that hold a NaN or an infinity (one isfinite pass)."""
    return [n for n, t in named_tensors if t.is_floating_point() and not torch.isfinite(t).all()]


def check_finite(state, source):
    """Raise CheckpointError naming ``source`` and the first tensor of ``state`` (a state dict)
    that holds a NaN or an infinity: such weights give NaN outputs, whatever they are used for."""
    bad = nonfinite_tensors(state.items())
    if bad:
        first = state[bad[0]]
        count = int((~torch.isfinite(first)).sum())
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise CheckpointError(
            f"{source} holds non-finite weights: {bad[0]} has {count} NaN or infinite values of "
            f"{first.numel()}{more}: the weights of a run that diverged, or a damaged file.  Use "
            f"an earlier file of that run (best.pth, checkpoint_prev.pth.tar), or train again "
            f"with a lower TRAIN.LR")


def read_safetensors(path: str) -> "OrderedDict[str, torch.Tensor]":
    """The tensors of a ``.safetensors`` file (e.g. the hub's ``model.safetensors``), on the CPU.

    safetensors files hold tensors only, so reading one runs no code, on every torch version.
    Raises CheckpointError naming the file when it is not in the format.
    """
    try:
        return OrderedDict(load_file(path, device="cpu"))
    except Exception as e:  # the reader raises its own error types and OSError
        raise CheckpointError(f"cannot read weight file {path}: {e}") from e


def _numpy_scalar_globals():
    """What unpickling a NumPy number needs: its reconstructor and the numeric dtype classes.

    The reconstructor is named ``numpy.core.multiarray.scalar`` in files written with NumPy 1.x
    and ``numpy._core.multiarray.scalar`` with NumPy 2.x; both names are allowed.
    """
    scalar = np.float64(0).__reduce__()[0]
    codes = np.typecodes["AllInteger"] + np.typecodes["AllFloat"] + "?"
    dtypes = sorted({type(np.dtype(c)) for c in codes}, key=str)
    named = [(scalar, f"numpy.{core}.multiarray.scalar") for core in ("core", "_core")]
    return named, [np.dtype, *dtypes]


@contextlib.contextmanager
def _numpy_scalars_allowed():
    named, plain = _numpy_scalar_globals()
    if hasattr(torch.serialization, "safe_globals"):  # torch >= 2.5
        with torch.serialization.safe_globals(named + plain):
            yield
        return
    # torch 2.4: no scoped allow-list and no aliases; add the objects themselves, then restore.
    saved = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([obj for obj, _ in named[:1]] + plain)
    try:
        yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


def strip_wrappers(state):
    """Drop the training wrapper's ``loss.*`` tensors and the ``module.`` / ``model.`` prefixes
    that every remaining key shares."""
    state = OrderedDict((k, v) for k, v in state.items() if not _is_loss_key(k))
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = OrderedDict((k[len(prefix):], v) for k, v in state.items())
                changed = True
    return state


def _is_loss_key(key):
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key.startswith("loss.")


def _drop_foreign(state, model_keys, source):
    kept, dropped = OrderedDict(), []
    for k, v in state.items():
        thesis_grid = "." not in k and k not in model_keys and v.dim() >= 1 and v.shape[-1] == 2
        if k.startswith(_CLASSIFICATION_ONLY) or thesis_grid:
            dropped.append(k)
        else:
            kept[k] = v
    if dropped:
        logger.info("%s: ignored %d tensors that belong to no segmentation model (%s...)",
                    source, len(dropped), ", ".join(dropped[:3]))
    return kept


def offset_path_weights(state, sources, model_keys):
    """Weights for the duplicated offset-path modules.

    ``sources`` maps the copy's prefix to the original's (``stage4_2.`` -> ``stage4.``).  Keys the
    file has under the copy's own prefix are taken as they are; otherwise the original's are
    renamed.  Modules beyond the copy's depth (``stage4.2`` when stage4_2 has two) are dropped.
    """
    out = OrderedDict()
    for copy, original in sources.items():
        own = {k: v for k, v in state.items() if k.startswith(copy)}
        if own:
            out.update(own)
            continue
        for k, v in state.items():
            if k.startswith(original):
                renamed = copy + k[len(original):]
                if renamed in model_keys:
                    out[renamed] = v
    return out


def drop_other_class_count(model, state, source):
    """``state`` without the class-dependent tensors made for another number of classes.

    The network's ``CLASSIFIERS`` name the modules whose output channels are the classes.  Their
    tensors in ``state`` whose first dimension differs from the model's while every other
    dimension agrees (a file trained with another NUM_CLASSES) are left out, so that they keep
    the model's fresh initialisation; the log names them.  Every other shape mismatch stays in
    ``state`` for :func:`load_state_dict` to refuse.
    """
    prefixes = tuple(f"{name}." for name in getattr(model, "CLASSIFIERS", ()))
    target = model.state_dict()
    fresh = [k for k, v in state.items()
             if k.startswith(prefixes) and k in target and v.dim() == target[k].dim() >= 1
             and v.shape[0] != target[k].shape[0] and v.shape[1:] == target[k].shape[1:]]
    if fresh:
        logger.info("%s: %d class-dependent tensors keep their initialisation (other class "
                    "count): %s", source, len(fresh),
                    ", ".join(f"{k} file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
                              for k in fresh))
    return OrderedDict((k, v) for k, v in state.items() if k not in fresh)


def load_state_dict(model, state, source, require_all=True):
    """Load ``state`` into ``model`` after checking every key and shape; report per module.

    ``require_all=False`` allows missing model keys (initialisation from a partial file).  When
    the file holds another kind of network than the model (``network_kind``), the error says
    both in words before the keys.
    """
    target = model.state_dict()
    culprit = _culprit(source, state, target)
    state = _drop_foreign(state, target, source)
    unexpected = [k for k in state if k not in target]
    if unexpected:
        raise CheckpointError(f"{culprit}: {len(unexpected)} keys the model does not have, "
                              f"first: {unexpected[:_SHOW]}")
    mismatched = [f"{k}: file {tuple(v.shape)} vs model {tuple(target[k].shape)}"
                  for k, v in state.items() if v.shape != target[k].shape]
    if mismatched:
        raise CheckpointError(f"{culprit}: {len(mismatched)} tensors of the wrong shape "
                              f"(does the config match the weights?), first: {mismatched[:_SHOW]}")
    if not state:
        raise CheckpointError(f"{culprit}: no tensor in the file matches the model")
    missing = [k for k in target if k not in state]
    if missing and require_all:
        raise CheckpointError(f"{culprit}: {len(missing)} model tensors missing from the file, "
                              f"first: {missing[:_SHOW]}")
    model.load_state_dict(state, strict=False)
    logger.info("loaded %s: %s", source, _report(target, state))
    return missing


# The modules that tell the networks apart, by the kind of network they belong to.
_OCR_MODULES = ("conv3x3_ocr", "ocr_gather_head", "ocr_distri_head", "cls_head", "aux_head")
_HEAD_MODULE = "last_layer"


def network_kind(keys) -> str:
    """The network whose state-dict ``keys`` these are, in words, with the modules that show it:
    "an offset network: offset_layer, stage4_2, transition3_2", "an OCR network: aux_head,
    cls_head, ...", "an OCR network with an offset path: ...", "an HRNetV2 network (no offset
    path, no OCR): last_layer", "an ImageNet classification network: classifier, ..."."""
    modules = {k.split(".")[0] for k in keys}
    offset = sorted(m for m in modules if (m + ".").startswith(_OFFSET_PATH))
    ocr = sorted(m for m in modules if m in _OCR_MODULES)
    classification = sorted(m for m in modules if (m + ".").startswith(_CLASSIFICATION_ONLY))
    if offset and ocr:
        return f"an OCR network with an offset path: {', '.join(offset + ocr)}"
    if offset:
        return f"an offset network: {', '.join(offset)}"
    if ocr:
        return f"an OCR network: {', '.join(ocr)}"
    if _HEAD_MODULE in modules:
        return f"an HRNetV2 network (no offset path, no OCR): {_HEAD_MODULE}"
    if classification:
        return f"an ImageNet classification network: {', '.join(classification)}"
    return f"no network of this project: {', '.join(sorted(modules)[:_SHOW])}"


def _culprit(source, state, target):
    """``source``, and when the file holds another kind of network than the model, both kinds
    in words (the file was made for another config)."""
    held, built = network_kind(state), network_kind(target)
    if held == built:
        return source
    return f"{source} holds {held}, but the config builds {built}"


def _report(target, state):
    total, got = OrderedDict(), OrderedDict()
    for k in target:
        top = k.split(".")[0]
        total[top] = total.get(top, 0) + 1
        got[top] = got.get(top, 0) + (k in state)
    return ", ".join(f"{m} {got[m]}/{total[m]}" for m in total)


def load_pretrained(model, path, offset_path="", offset_head=False):
    """Initialise ``model`` from MODEL.PRETRAINED and, for the offset networks, MODEL.OFFSET_PRETRAINED.

    Missing tensors (new heads) keep their initialisation; the duplicated offset-path stages come
    from ``offset_path`` (or ``path`` when empty) through the renaming rules.  The offset head
    (``offset_layer`` / ``aux_head_offset``) is taken from ``offset_path`` only with
    ``offset_head`` (MODEL.OFFSET_PRETRAINED_HEAD); the reference leaves it fresh.
    """
    model_keys = model.state_dict().keys()
    _require_weights(path, "MODEL.PRETRAINED", "start from random weights")
    _require_weights(offset_path, "MODEL.OFFSET_PRETRAINED",
                     "initialise the offset path from MODEL.PRETRAINED")
    state = read_state_dict(path) if path else OrderedDict()
    state = _hrnet_head_as_regions(state, model_keys, path)
    sources = model.offset_path_sources() if hasattr(model, "offset_path_sources") else {}
    if sources:
        offset_state = read_state_dict(offset_path) if offset_path else state
        copies = tuple(sources)
        state = OrderedDict((k, v) for k, v in state.items() if not k.startswith(copies))
        state.update(offset_path_weights(offset_state, sources, model_keys))
        if offset_path:
            from_main = any(k.startswith(model.OFFSET_HEAD + ".") for k in state)
            state.update(_offset_head_weights(offset_state, model.OFFSET_HEAD, offset_head,
                                              offset_path, path if from_main else ""))
    source = " + ".join(p for p in (path, offset_path) if p)
    state = _drop_unused_offset_path(state, model_keys, source)
    state = drop_other_class_count(model, state, source)
    return load_state_dict(model, state, source, require_all=False)


def _require_weights(path, key, empty):
    """Raise CheckpointError when the initialisation file ``path`` (config ``key``; "" = none)
    does not exist, saying where such files come from; ``empty`` says what ``key ''`` does."""
    if path and not os.path.isfile(path):
        raise CheckpointError(
            f"{key}: weight file not found: {path}. Weight files are not part of the "
            f"repository: pretrained_models/README.md says which file each experiment starts "
            f"from and where to download it (or set {key} '' to {empty})")


_OFFSET_HEADS = ("offset_layer.", "aux_head_offset.")
# The offset path of the offset networks' files: duplicated stages and the offset head.
_OFFSET_PATH = tuple(f"{name}{k}_2." for k in range(1, 5) for name in ("transition", "stage")) \
    + _OFFSET_HEADS


def _drop_unused_offset_path(state, model_keys, source):
    """``state`` without the offset-path tensors a network without that path has no place for
    (a baseline initialised from an offset-network file); the log names them as unused."""
    unused = [k for k in state if k.startswith(_OFFSET_PATH) and k not in model_keys]
    if not unused:
        return state
    modules = sorted({k.split(".")[0] for k in unused})
    logger.info("%s: %d tensors of the offset path are unused by this network (%s)", source,
                len(unused), ", ".join(modules))
    return OrderedDict((k, v) for k, v in state.items() if k not in unused)


def _hrnet_head_as_regions(state, model_keys, source):
    """An HRNetV2 ``last_layer`` becomes the soft-region head ``aux_head`` of an OCR network."""
    if "aux_head.0.weight" not in model_keys or "last_layer.0.weight" not in state \
            or "aux_head.0.weight" in state:
        return state
    logger.info("%s: last_layer initialises aux_head (the soft object regions)", source)
    return OrderedDict((("aux_head." + k[len("last_layer."):]) if k.startswith("last_layer.")
                        else k, v) for k, v in state.items())


def _offset_head_weights(offset_state, head_name, take, source, main_source=""):
    """The offset head of an offset-network file under the model's head name, if ``take``.

    ``main_source``: MODEL.PRETRAINED when that file already supplied the head (then it keeps it
    unless ``take``), for the report.
    """
    found = next((p for p in _OFFSET_HEADS if p + "0.weight" in offset_state), None)
    if found is None:
        return {}
    if not take:
        kept = f"taken from {main_source}" if main_source else "left at its initialisation"
        logger.info("%s: %s %s, not from this file (the reference; "
                    "MODEL.OFFSET_PRETRAINED_HEAD True takes %s)", source, head_name, kept,
                    found.rstrip("."))
        return {}
    logger.info("%s: %s taken from %s (MODEL.OFFSET_PRETRAINED_HEAD)", source, head_name,
                found.rstrip("."))
    return {head_name + "." + k[len(found):]: v for k, v in offset_state.items()
            if k.startswith(found)}
