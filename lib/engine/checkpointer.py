"""A run's training state on disk: our checkpoint format, resume, and atomic writes.

``checkpoint.pth.tar`` (weights, optimiser, scaler, iteration, best mIoU, RNG states, iterations
per epoch, config), the previous one kept as ``checkpoint_prev.pth.tar``, and the bare weight
files ``best.pth`` and ``final_state.pth``.  Weight files of other codes are read by
:mod:`lib.models.weights`.
"""
import errno
import io
import logging
import os
import random

import numpy as np
import torch

from ..models.weights import CheckpointError
from ..utils import distributed as dist
from ..utils.compat import unwrap_model

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pth.tar"
PREVIOUS_CHECKPOINT = "checkpoint_prev.pth.tar"


def model_state(model):
    """The state dict of the bare network (no ``module.`` / ``_orig_mod.`` prefixes)."""
    return unwrap_model(model).state_dict()


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

    def __init__(self, folder, model, optimizer, scaler, *, iters_per_epoch, config_text, device):
        self.folder, self.model, self.optimizer, self.scaler = folder, model, optimizer, scaler
        self.iters_per_epoch, self.config_text = list(iters_per_epoch), config_text
        self.device = device
        self.newest = os.path.join(folder, CHECKPOINT)
        self.previous = os.path.join(folder, PREVIOUS_CHECKPOINT)

    def check_finite(self, what):
        """Collective: raise when the model holds a NaN or infinity on any rank."""
        net = unwrap_model(self.model)
        bad = nonfinite_tensors([*net.named_parameters(), *net.named_buffers()])
        if dist.any_rank(bool(bad), self.device):
            raise CheckpointError(f"the model holds non-finite values (on this rank: {bad[:3]});"
                                  f" {what} not written")

    def save(self, iteration, best_miou):
        """Collective: write ``checkpoint.pth.tar``, the one it replaces kept as the previous."""
        self.check_finite(CHECKPOINT)
        dist.on_rank_0(lambda: self._write(iteration, best_miou), self.device,
                       CheckpointError(f"rank 0 could not write {CHECKPOINT}; see its log"))

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
        dist.on_rank_0(lambda: atomic_save(model_state(self.model), path), self.device,
                       CheckpointError(f"rank 0 could not write {name}; see its log"))

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
                f"run has {self.iters_per_epoch}: TRAIN.BATCH_SIZE_PER_GPU, "
                f"TRAIN.ACCUMULATE_STEPS, the world size or the data changed; use "
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
