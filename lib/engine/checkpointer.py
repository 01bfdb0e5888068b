"""A run's training state on disk: our checkpoint format and resume.

``checkpoint.pth.tar`` (weights, optimiser, scaler, iteration, best mIoU, RNG states, iterations
per epoch, batch split, config), the previous one kept as ``checkpoint_prev.pth.tar``, and the
bare weight files ``best.pth`` and ``final_state.pth``, each written whole or not at all
(:mod:`lib.utils.atomic`).  Weight files of other codes are read by :mod:`lib.models.weights`.
"""
import io
import logging
import os
import random

import numpy as np
import torch

from ..models.weights import CheckpointError, check_finite, load_state_dict, nonfinite_tensors
from ..utils import atomic
from ..utils import distributed as dist
from ..utils.compat import unwrap_model

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pth.tar"
PREVIOUS_CHECKPOINT = "checkpoint_prev.pth.tar"
# What resume reads from a checkpoint ("scaler" and "batch_split" are optional).
_KEYS = ("model", "optimizer", "iteration", "iters_per_epoch", "best_mIoU", "rng")


def model_state(model):
    """The state dict of the bare network (no ``module.`` / ``_orig_mod.`` prefixes)."""
    return unwrap_model(model).state_dict()


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


def save_state(obj, path, before_replace=None):
    """``torch.save(obj)`` to ``path`` through ``lib.utils.atomic`` (whole or not at all).

    Serialised in memory first, so that a failing write raises the OSError itself (torch's own
    writer reports a full disk as "unexpected pos"), named here with the file and the cause.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    try:
        atomic.write_bytes(path, buffer.getbuffer(), before_replace)
    except atomic.FileWriteError as e:
        raise CheckpointError(str(e)) from e


class Checkpointer:
    """Our checkpoint format and resume, in a run's output folder.

    ``checkpoint.pth.tar`` holds the weights (no wrapper prefixes), optimiser, GradScaler,
    iteration, best mIoU, RNG states, iterations per epoch of every phase, how the batch was
    split (``batch_split``: images per GPU, GPUs, micro-batches per optimiser step) and the config
    text; the one before it is kept as ``checkpoint_prev.pth.tar``.  ``save_weights`` writes bare
    state dicts (``best.pth``, ``final_state.pth``).  Nothing non-finite is ever written: every
    save first checks the weights and buffers on every rank (a collective), then rank 0 writes.
    """

    def __init__(self, folder, model, optimizer, scaler, *, iters_per_epoch, config_text, device,
                 batch_split=None):
        self.folder, self.model, self.optimizer, self.scaler = folder, model, optimizer, scaler
        self.iters_per_epoch, self.config_text = list(iters_per_epoch), config_text
        self.batch_split = list(batch_split) if batch_split is not None else None
        self.device = device
        self.newest = os.path.join(folder, CHECKPOINT)
        self.previous = os.path.join(folder, PREVIOUS_CHECKPOINT)
        # Set by a resume that found the newest file unusable: the next save must not keep it
        # as the previous checkpoint, over the good one it resumed from.
        self.newest_unusable = False

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
        save_state({
            "model": model_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": iteration,
            "iters_per_epoch": self.iters_per_epoch,
            "batch_split": self.batch_split,
            "best_mIoU": best_miou,
            "rng": rng_states(),
            "config": self.config_text,
        }, self.newest, before_replace=self._keep_previous)
        self.newest_unusable = False
        logger.info("saved %s at iteration %d", CHECKPOINT, iteration)

    def _keep_previous(self):
        """The checkpoint about to be replaced becomes the previous one, unless it is the
        unusable file a resume fell back from: the previous one is then the good one."""
        if os.path.exists(self.newest) and not self.newest_unusable:
            os.replace(self.newest, self.previous)

    def save_weights(self, name):
        """Collective: write the bare weights to ``<folder>/<name>``."""
        self.check_finite(name)
        path = os.path.join(self.folder, name)
        dist.on_rank_0(lambda: save_state(model_state(self.model), path), self.device,
                       CheckpointError(f"rank 0 could not write {name}; see its log"))

    def resume(self):
        """Restore everything from the newest usable checkpoint; returns ``(iteration, best
        mIoU)``, or None when the folder has none.

        A newest file that cannot be read, is not one of our checkpoints or holds non-finite
        weights falls back to the previous one with a warning.  A checkpoint of another split
        of the batch (e.g. 8 x 1 GPU resumed as 4 x 2 GPUs) is resumed with a warning; another
        number of iterations per epoch, or another network, is refused.
        """
        found = self._read()
        if found is None:
            return None
        path, ckpt = found
        if ckpt["iters_per_epoch"] != self.iters_per_epoch:
            raise CheckpointError(
                f"{path} was written with {ckpt['iters_per_epoch']} iterations per epoch, this "
                f"run has {self.iters_per_epoch}: TRAIN.BATCH_SIZE_PER_GPU, "
                f"TRAIN.ACCUMULATE_STEPS, the world size or the data changed; start a new run "
                f"(TRAIN.RESUME False and AUTO_RESUME False, or another RUN_DIR)")
        self._note_batch_split(path, ckpt.get("batch_split"))
        try:
            load_state_dict(unwrap_model(self.model), ckpt["model"], path)
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (CheckpointError, ValueError) as e:  # ValueError: the optimiser's groups
            what = e if isinstance(e, CheckpointError) else \
                f"{path}: the optimiser state does not fit this run's ({e})"
            raise CheckpointError(
                f"{what}.  The network or optimiser config changed since the checkpoint was "
                f"written (its config is stored in it, under 'config'): resume with that "
                f"config, or start a new run (TRAIN.RESUME False and AUTO_RESUME False, or "
                f"another RUN_DIR)") from e
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng_states(ckpt["rng"])
        logger.info("resumed from %s at iteration %d", path, ckpt["iteration"])
        return ckpt["iteration"], ckpt["best_mIoU"]

    def _note_batch_split(self, path, saved):
        if saved is None or self.batch_split is None or list(saved) == self.batch_split:
            return
        logger.warning(
            "%s was written with a batch of %s; this run splits it as %s (images per GPU x "
            "GPUs x micro-batches per step): the schedule continues, but batch-norm statistics "
            "are taken over another number of images per GPU, so the run will not repeat the "
            "uninterrupted one exactly", path, _split_text(saved), _split_text(self.batch_split))

    def _read(self):
        """``(path, checkpoint)`` of the newest usable file; None when there is neither."""
        if not os.path.isfile(self.newest) and not os.path.isfile(self.previous):
            return None
        problems = []
        for path in (self.newest, self.previous):
            if not os.path.isfile(path):
                problems.append(f"{path} is missing")
                continue
            try:
                ckpt = self._load(path)
            except CheckpointError as e:
                problems.append(str(e))
                self.newest_unusable |= path == self.newest
                continue
            if problems:
                logger.warning("%s; resuming from the previous checkpoint %s", "; ".join(problems),
                               path)
            return path, ckpt
        raise CheckpointError(
            f"{'; '.join(problems)}.  No checkpoint in {self.folder} can be resumed: move these "
            f"files away to start afresh in that folder, or start a new run (TRAIN.RESUME "
            f"False and AUTO_RESUME False, or another RUN_DIR)")

    @staticmethod
    def _load(path):
        """Our checkpoint at ``path``; CheckpointError when it is empty, unreadable, another kind
        of file, or holds non-finite weights."""
        if os.path.getsize(path) == 0:
            raise CheckpointError(f"checkpoint {path} is empty (0 bytes): its write was cut off")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for a truncated or corrupt file
            raise CheckpointError(f"cannot read checkpoint {path}: "
                                  f"{str(e).strip() or type(e).__name__}") from e
        missing = [k for k in _KEYS if k not in ckpt] if isinstance(ckpt, dict) else list(_KEYS)
        if missing:
            raise CheckpointError(
                f"{path} is not a training checkpoint of this code (no {', '.join(missing)}): "
                f"weights of another origin go into MODEL.PRETRAINED or TEST.MODEL_FILE")
        check_finite(ckpt["model"], path)
        return ckpt



def _split_text(split):
    per_gpu, gpus, micro = split
    return f"{per_gpu} x {gpus} x {micro} = {per_gpu * gpus * micro}"
