"""Reading and writing weights.

Foreign formats recognised from their keys (never from a flag):
- ImageNet HRNet classification files: trunk keys plus ``incre_modules``, ``downsamp_modules``,
  ``final_layer`` and ``classifier`` (classification only, dropped).
- timm's HRNet state dicts (``.pth``) and the model hubs' ``.safetensors`` files: the official
  ImageNet names (:mod:`lib.utils.hub_weights`).
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
  written and resumed by ``Checkpointer`` (last section of this file).

Every load logs what each top-level module received and raises ``CheckpointError`` on a shape
mismatch, on a key the model does not have, or when nothing in the file matches the model.  The
one exception: initialisation (MODEL.PRETRAINED) from a file made for another number of classes
leaves out the network's classifiers, which keep their fresh initialisation.
"""
import contextlib
import errno
import io
import logging
import os
import random
from collections import OrderedDict

import numpy as np
import torch

from . import distributed as dist

logger = logging.getLogger(__name__)

_WRAPPER_PREFIXES = ("module.", "model.")
_CLASSIFICATION_ONLY = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")
_SHOW = 5


class CheckpointError(RuntimeError):
    """A weight file that does not fit the model; the message names the file and the keys."""


def read_state_dict(path):
    """The tensors of a weight file as a flat dict, wrapper prefixes and non-model keys removed."""
    if not os.path.isfile(path):
        raise CheckpointError(f"weight file not found: {path}")
    if path.endswith(".safetensors"):
        from .hub_weights import read_safetensors  # here: that module uses CheckpointError
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

    ``require_all=False`` allows missing model keys (initialisation from a partial file).
    """
    target = model.state_dict()
    state = _drop_foreign(state, target, source)
    unexpected = [k for k in state if k not in target]
    if unexpected:
        raise CheckpointError(f"{source}: {len(unexpected)} keys the model does not have, "
                              f"first: {unexpected[:_SHOW]}")
    mismatched = [f"{k}: file {tuple(v.shape)} vs model {tuple(target[k].shape)}"
                  for k, v in state.items() if v.shape != target[k].shape]
    if mismatched:
        raise CheckpointError(f"{source}: {len(mismatched)} tensors of the wrong shape "
                              f"(does the config match the weights?), first: {mismatched[:_SHOW]}")
    if not state:
        raise CheckpointError(f"{source}: no tensor in the file matches the model")
    missing = [k for k in target if k not in state]
    if missing and require_all:
        raise CheckpointError(f"{source}: {len(missing)} model tensors missing from the file, "
                              f"first: {missing[:_SHOW]}")
    model.load_state_dict(state, strict=False)
    logger.info("loaded %s: %s", source, _report(target, state))
    return missing


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


def unwrap_model(model):
    """The network inside DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def model_state(model):
    """The state dict of the bare network (no ``module.`` / ``_orig_mod.`` prefixes)."""
    return unwrap_model(model).state_dict()


# -- Our training checkpoints -------------------------------------------------------------------

CHECKPOINT = "checkpoint.pth.tar"
PREVIOUS_CHECKPOINT = "checkpoint_prev.pth.tar"


def nonfinite_tensors(named_tensors):
    """Names of the floating-point tensors that hold a NaN or an infinity (this rank only)."""
    return [n for n, t in named_tensors if t.is_floating_point() and not torch.isfinite(t).all()]


def rng_states():
    """The python, numpy, torch and (current) CUDA generator states, as tensors and plain types
    (``torch.load(weights_only=True)`` reads them)."""
    np_state = np.random.get_state()
    return {"python": random.getstate(), "numpy": (np_state[0], torch.from_numpy(np_state[1]),
                                                   *np_state[2:]),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}


def restore_rng_states(states):
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])  # the current device only


def _write_temporary(obj, path):
    """Serialise ``obj`` into a flushed temporary file beside ``path``; returns its path.

    Serialised in memory first, so that a failing write raises the OSError itself (torch's own
    writer reports a full disk as "unexpected pos"), named here with the file and the cause.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        code = errno.errorcode.get(e.errno, "unknown error")
        raise CheckpointError(f"cannot write {path}: {e.strerror or e} ({code}); the file that "
                              f"was there is unchanged") from e
    return tmp


def _sync_folder(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the renames themselves durable
    finally:
        os.close(fd)


def atomic_save(obj, path):
    """Write ``obj`` to a temporary file beside ``path``, flush it to disk, then rename it.

    A crash at any point leaves either the previous file or the new one, never a partial file.
    """
    os.replace(_write_temporary(obj, path), path)
    _sync_folder(os.path.dirname(os.path.abspath(path)))


class Checkpointer:
    """Our checkpoint format and resume, in a run's output folder.

    ``checkpoint.pth.tar`` holds the weights (no wrapper prefixes), optimiser, GradScaler,
    iteration, best mIoU, RNG states, iterations per epoch of every phase and the config text;
    the one before it is kept as ``checkpoint_prev.pth.tar``.  ``save_weights`` writes bare state
    dicts (``best.pth``, ``final_state.pth``).  Nothing non-finite is ever written: every save
    first checks the weights and buffers on every rank (a collective), then rank 0 writes.
    """

    def __init__(self, folder, model, optimizer, scaler, *, iters_per_epoch, config_text, rank,
                 device):
        self.folder, self.model, self.optimizer, self.scaler = folder, model, optimizer, scaler
        self.iters_per_epoch, self.config_text = list(iters_per_epoch), config_text
        self.rank, self.device = rank, device
        self.newest = os.path.join(folder, CHECKPOINT)
        self.previous = os.path.join(folder, PREVIOUS_CHECKPOINT)

    def check_finite(self, what):
        """Collective: raise when the model holds a NaN or infinity on any rank."""
        net = unwrap_model(self.model)
        bad = nonfinite_tensors([*net.named_parameters(), *net.named_buffers()])
        if dist.any_rank(bool(bad), self.device):
            raise CheckpointError(f"the model holds non-finite values (on this rank: {bad[:3]});"
                                  f" {what} not written")

    def _on_rank_0(self, write, what):
        """Collective: ``write()`` on rank 0; when it fails every rank raises, so that none is
        left waiting in the next collective for a rank 0 that stopped."""
        error = None
        if self.rank == 0:
            try:
                write()
            except Exception as e:  # re-raised below, on every rank
                error = e
        if dist.any_rank(error is not None, self.device):
            raise error or CheckpointError(f"rank 0 could not write {what}; see its log")

    def save(self, iteration, best_miou):
        """Collective: write ``checkpoint.pth.tar``, the one it replaces kept as the previous."""
        self.check_finite(CHECKPOINT)
        self._on_rank_0(lambda: self._write(iteration, best_miou), CHECKPOINT)

    def _write(self, iteration, best_miou):
        tmp = _write_temporary({
            "model": model_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": iteration,
            "iters_per_epoch": self.iters_per_epoch,
            "best_mIoU": best_miou,
            "rng": rng_states(),
            "config": self.config_text,
        }, self.newest)
        if os.path.exists(self.newest):
            os.replace(self.newest, self.previous)
        os.replace(tmp, self.newest)
        _sync_folder(self.folder)
        logger.info("saved %s at iteration %d", CHECKPOINT, iteration)

    def save_weights(self, name):
        """Collective: write the bare weights to ``<folder>/<name>``."""
        self.check_finite(name)
        path = os.path.join(self.folder, name)
        self._on_rank_0(lambda: atomic_save(model_state(self.model), path), name)

    def resume(self):
        """Restore everything from the newest readable checkpoint; returns ``(iteration, best
        mIoU)``, or None when the folder has none.  An unreadable newest file falls back to the
        previous one with a warning."""
        found = self._read()
        if found is None:
            return None
        path, ckpt = found
        if ckpt["iters_per_epoch"] != self.iters_per_epoch:
            raise CheckpointError(
                f"{path} was written with {ckpt['iters_per_epoch']} iterations per epoch, this "
                f"run has {self.iters_per_epoch}: batch size, world size or data changed; use "
                f"another OUTPUT_DIR or TRAIN.RESUME False")
        unwrap_model(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng_states(ckpt["rng"])
        logger.info("resumed from %s at iteration %d", path, ckpt["iteration"])
        return ckpt["iteration"], ckpt["best_mIoU"]

    def _read(self):
        if not os.path.isfile(self.newest):
            if not os.path.isfile(self.previous):
                return None
            logger.warning("%s is missing; resuming from the previous checkpoint %s",
                           self.newest, self.previous)
            return self.previous, self._load(self.previous)
        try:
            return self.newest, self._load(self.newest)
        except CheckpointError as e:
            if not os.path.isfile(self.previous):
                raise
            logger.warning("%s; resuming from the previous checkpoint %s instead of %s", e,
                           self.previous, self.newest)
            return self.previous, self._load(self.previous)

    @staticmethod
    def _load(path):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for a truncated or corrupt file
            raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
