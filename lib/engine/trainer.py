"""The Trainer: runs the parts of a training run that are already built, and owns the loop's
policy (when to check, validate, checkpoint and stop) in one place.

``lib.engine.build.build_trainer(cfg, ...)`` builds those parts from a config; a test or another
tool can build them itself, e.g. a tiny network on random tensors.

Host synchronisation: a training step reads nothing back (``lib.engine.step``).  Every
PRINT_FREQ iterations, at each CHECKPOINT_INTERVAL and at the end of each epoch, one all-reduce
of a small vector (stop request, non-finite losses, batch-norm finiteness, labelled pixels, loss
sums) is read by the host: the loop logs, stops or raises there, and only there.
"""
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..config import amp_dtype_of
from ..datasets import DatasetError
from ..evaluation.finite import NonFiniteOutputError
from ..evaluation.report import percent
from ..utils import distributed as dist
from ..utils.compat import stop_persistent_workers, unwrap_model
from ..utils.errors import RunError
from ..utils.logger import add_finite_scalars
from ..utils.precision import overflow_remedy
from ..utils.profiling import peak_memory_mb
from . import step
from .out_of_memory import OutOfMemoryMessage
from .schedule import set_lr

logger = logging.getLogger(__name__)


# The config key of each phase's base learning rate (the phases of build._build_phases).
_LR_KEYS = {"main": "TRAIN.LR", "extra": "TRAIN.EXTRA_LR"}


class NonFiniteLossError(RunError):
    """Training produced TRAIN.MAX_NONFINITE non-finite losses in a row."""


@dataclass(frozen=True)
class LoopSettings:
    """How the loop runs its steps and when it checks, validates and saves."""

    amp_dtype: torch.dtype | None
    channels_last: bool
    print_freq: int  # iterations between checks (the only host synchronisation)
    max_nonfinite: int
    checkpoint_interval: int  # iterations; 0 = at epoch ends only
    eval_interval: int  # epochs; 0 = after the last one only
    begin_epoch: int = 0  # where a run that does not resume starts (TRAIN.BEGIN_EPOCH)
    resume: bool = False  # continue from the output folder's checkpoint when there is one
    accumulate_steps: int = 1  # micro-batches of a loader batch, one optimiser step for all
    ignore_label: int = 255  # label of unlabelled pixels: an epoch of nothing else stops the run

    @classmethod
    def from_config(cls, cfg):
        train = cfg.TRAIN
        return cls(amp_dtype_of(cfg), train.CHANNELS_LAST, cfg.PRINT_FREQ, train.MAX_NONFINITE,
                   train.CHECKPOINT_INTERVAL, train.EVAL_INTERVAL, train.BEGIN_EPOCH,
                   bool(train.RESUME or cfg.AUTO_RESUME), train.ACCUMULATE_STEPS,
                   train.IGNORE_LABEL)


@dataclass
class RunState:
    """Where the run is: the global iteration and the best validation mIoU so far."""

    iteration: int = 0
    best_miou: float = 0.0


class StepWindow:
    """Device-side sums over the steps since the last check; ``run`` (the current streak of
    non-finite losses) survives ``reset``, so a streak across checks and epochs counts whole."""

    def __init__(self, device):
        self.run = torch.zeros((), device=device)  # non-finite losses in a row, across windows
        self.device = device
        self.reset()

    def reset(self):
        zero = torch.zeros((), device=self.device)
        self.names, self.sums = [], None
        self.finite, self.nonfinite, self.worst = zero, zero.clone(), self.run.clone()
        self.labelled = zero.clone()  # label pixels other than the ignore label
        self.steps, self.data_time, self.started = 0, 0.0, time.perf_counter()

    def add(self, out: step.StepOutput):
        values = torch.stack([*out.terms.values(), out.total]).float()
        values = torch.where(out.nonfinite, 0.0, values)
        self.names = [*out.terms, "loss"]
        self.sums = values if self.sums is None else self.sums + values
        self.finite = self.finite + ~out.nonfinite
        self.nonfinite = self.nonfinite + out.nonfinite
        self.run = (self.run + 1) * out.nonfinite
        self.worst = torch.maximum(self.worst, self.run)
        self.steps += 1

    def count_labelled(self, labels, ignore_label):
        self.labelled = self.labelled + (labels != ignore_label).sum()


class BufferGuard:
    """Puts back the float buffers (batch-norm statistics) of ``model`` when a non-finite forward
    corrupted them: ``restore()`` compares with the snapshot of the previous call, on the device.
    """

    def __init__(self, model, device):
        self.model, self.device = model, device
        self.snapshot(iteration=0)

    def _buffers(self):
        return [b for b in unwrap_model(self.model).buffers() if b.is_floating_point()]

    def snapshot(self, iteration):
        self.saved = [b.detach().clone() for b in self._buffers()]
        self.iteration = iteration  # how old the statistics in ``saved`` are

    def restore(self, iteration):
        """Where any buffer is non-finite, put back all of them as they were at the snapshot;
        then take the next snapshot.  Returns ``(0-dim bool flag, iteration of the statistics
        put back)``."""
        buffers = self._buffers()
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        if buffers:
            bad = ~torch.stack([torch.isfinite(b).all() for b in buffers]).all()
        with torch.no_grad():
            for buffer, saved in zip(buffers, self.saved, strict=True):
                buffer.copy_(torch.where(bad, saved, buffer))
        restored_from = self.iteration
        self.snapshot(iteration)
        return bad, restored_from


class Trainer:
    """Runs built parts: ``Trainer(model, criterion, optimizer, scaler, phases, schedule,
    checkpointer, settings, device=...).fit()``.

    Args:
        model: the network as trained (DDP, compile and channels-last already applied).
        criterion: ``criterion(output, labels)`` -> dict of loss terms (``SegLoss``).
        optimizer: a fused optimiser (``build_optimizer``); scaler: a ``torch.amp.GradScaler``.
        phases: ``(loader, sampler)`` of each phase of ``schedule`` (``train_loader``).
        schedule: the ``PolySchedule`` of the phases.
        checkpointer: the ``Checkpointer`` of the run's folder.
        settings: ``LoopSettings``.
        device: where the batches go.
        validator: ``validator(model, iteration)`` -> mIoU, or None for no validation.
        writer: a TensorBoard writer or None.
        world_size: processes in the group (for images/s).
        on_close: what ``close()`` calls besides stopping the loaders (the folder lock's
            release, the writer's close).
        oom_message: the ``OutOfMemoryMessage`` of an out-of-memory error of a step
            (default: naming the network's class only).

    Use it as a context manager (or call ``close``).  ``request_stop()`` (the SIGTERM handler)
    ends the run at the next check with a checkpoint.  An epoch run from its first batch whose
    labels hold nothing but the ignore label on every rank raises DatasetError at its end.
    """

    def __init__(self, model, criterion, optimizer, scaler, phases, schedule, checkpointer,
                 settings: LoopSettings, *, device, validator=None, writer=None, world_size=1,
                 on_close: Sequence[Callable[[], None]] = (),
                 oom_message: OutOfMemoryMessage | None = None):
        self.model, self.criterion, self.optimizer, self.scaler = model, criterion, optimizer, \
            scaler
        self.phases, self.schedule, self.checkpointer = list(phases), schedule, checkpointer
        self.settings, self.device, self.world_size = settings, device, world_size
        self.validator, self.writer, self.on_close = validator, writer, list(on_close)
        self.oom_message = oom_message or OutOfMemoryMessage.of_model("training", model)
        self.state = RunState(iteration=settings.begin_epoch * len(self.loader))
        self.window = StepWindow(device)
        self.buffers = BufferGuard(model, device)
        self.stop_requested = False
        self.labelled_in_epoch = 0.0

    @property
    def loader(self):
        """The training loader of the main phase."""
        return self.phases[0][0]

    @property
    def iteration(self):
        return self.state.iteration

    @property
    def output_dir(self):
        return self.checkpointer.folder

    def request_stop(self):
        """Stop at the next check, with a checkpoint (safe to call from a signal handler)."""
        self.stop_requested = True

    def close(self):
        """Stop the loader workers, then everything of ``on_close``."""
        for loader, _ in self.phases:
            stop_persistent_workers(loader)
        for close in self.on_close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the run ---------------------------------------------------------------------------------
    def fit(self):
        """Train to the end of the schedule; returns True then, False after a stop request.

        The one place where stops and epoch ends are decided: a stop agreed by every rank inside
        an epoch saves a checkpoint there; at an epoch's end the epoch ends as usual (validation
        when due, checkpoint) and the run stops after it, unless that was the last epoch.
        """
        if self.settings.resume:
            resumed = self.checkpointer.resume()
            if resumed is not None:
                self.state = RunState(*resumed)
        for epoch in self.schedule.epochs(self.state.iteration):
            finished, stop = self.train_epoch(epoch)
            if finished:
                self.end_epoch(epoch)
            else:
                self.checkpointer.save(self.state.iteration, self.state.best_miou)
            if stop and not (finished and epoch.last):
                logger.info("stop requested: checkpoint saved at iteration %d, exiting",
                            self.state.iteration)
                return False
        self.finish()
        return True

    def train_epoch(self, epoch):
        """Train ``epoch`` from its first undone batch.  Returns ``(finished, stop)``: whether the
        epoch ran to its end, and whether every rank agreed to stop at the last check (the epoch
        is left at that check)."""
        loader, sampler = self.phases[epoch.phase]
        sampler.set_epoch(epoch.number, start_batch=epoch.first_batch)
        phase = self.schedule.phases[epoch.phase]
        label = f"{phase.name} epoch {epoch.index + 1}/{phase.epochs}"
        total = sampler.batches_per_epoch
        # A progress bar only where a person watches: rank 0 on a terminal.
        batches = tqdm(loader, desc=label, leave=False, initial=epoch.first_batch, total=total,
                       disable=dist.get_rank() != 0 or not sys.stderr.isatty())
        self.model.train()
        window = self.window
        window.reset()  # the streak of non-finite losses goes on across epochs
        self.labelled_in_epoch = 0.0  # summed over ranks at each check
        self.buffers.snapshot(self.state.iteration)
        stop, data_tic = False, time.perf_counter()
        for position, batch in enumerate(batches, start=epoch.first_batch + 1):
            images, labels = self._to_device(batch)
            window.count_labelled(labels, self.settings.ignore_label)
            window.data_time += time.perf_counter() - data_tic
            set_lr(self.optimizer, self.schedule.lr(self.state.iteration))
            try:
                window.add(step.train_step(self.model, self.criterion, self.optimizer,
                                           self.scaler, images, labels, self.settings.amp_dtype,
                                           self.settings.accumulate_steps))
            except torch.cuda.OutOfMemoryError as e:  # leaves the run before any save
                raise self.oom_message.error(self.device, images.shape, e) from e
            self.state.iteration += 1
            interval = self.settings.checkpoint_interval
            checkpoint_due = interval > 0 and self.state.iteration % interval == 0
            if position == total or checkpoint_due or \
                    self.state.iteration % self.settings.print_freq == 0:
                stop = self.check(window, f"{label} [{position}/{total}]", images.shape[0])
                if position < total:  # the epoch end saves its own checkpoint
                    if stop:
                        return False, True
                    if checkpoint_due:
                        self.checkpointer.save(self.state.iteration, self.state.best_miou)
            data_tic = time.perf_counter()
        if epoch.first_batch == 0 and not self.labelled_in_epoch:
            raise DatasetError(
                f"{label}: every label pixel of every training crop of the epoch is the ignore "
                f"label {self.settings.ignore_label} (TRAIN.IGNORE_LABEL): nothing to learn "
                f"from {loader.dataset!r}; check its label files, DATASET.LABEL_MAP and "
                f"TRAIN.IGNORE_LABEL")
        return True, stop

    def _to_device(self, batch):
        images = batch[0].to(self.device, non_blocking=True)
        labels = batch[1].to(self.device, non_blocking=True)
        if self.settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels

    # -- the check: the one host synchronisation of a stretch of steps --------------------------
    def check(self, window, where, batch_size):
        """Collective: agree on the stop request, raise after too many non-finite losses, put
        back batch-norm statistics that a non-finite forward corrupted, log the window.
        Returns True when any rank asked to stop."""
        restored, restored_from = self.buffers.restore(self.state.iteration)
        flags = torch.stack([torch.tensor(float(self.stop_requested), device=self.device),
                             (window.worst >= self.settings.max_nonfinite).float(),
                             window.nonfinite.float(), window.finite.float(), restored.float(),
                             window.labelled.float()])
        stop, exceeded, nonfinite, finite, restored, labelled, *sums = dist.all_reduce_sum(
            torch.cat([flags, window.sums])).tolist()
        self.labelled_in_epoch += labelled
        if nonfinite:
            logger.warning("%s it %d: %d non-finite loss(es) in the last %d iterations; their "
                           "optimiser steps were skipped", where, self.state.iteration,
                           nonfinite, window.steps)
        if restored:
            logger.warning("non-finite batch-norm statistics after a non-finite forward: "
                           "restored those of iteration %d", restored_from)
            self.buffers.iteration = restored_from  # the statistics are that old
        if exceeded:
            raise NonFiniteLossError(
                f"{self.settings.max_nonfinite} or more non-finite losses in a row by iteration "
                f"{self.state.iteration} (TRAIN.MAX_NONFINITE = {self.settings.max_nonfinite}); "
                f"no checkpoint was written from this state.\nWhat to do: check the training "
                f"data for broken images or labels; {self._recovery()}")
        if finite:
            self._log_progress(window, [s / finite for s in sums], where, batch_size)
        window.reset()
        return stop > 0

    def _log_progress(self, window, means, where, batch_size):
        per_iter = (time.perf_counter() - window.started) / window.steps
        remaining = (self.schedule.total_iters - self.state.iteration) * per_iter
        images_per_s = batch_size * self.world_size / per_iter
        terms = " ".join(f"{n} {v:.4f}" for n, v in zip(window.names, means, strict=True))
        eta = time.strftime("%H:%M:%S", time.gmtime(remaining)) if remaining < 86400 \
            else f"{remaining / 86400:.1f} days"
        lr = self.optimizer.param_groups[0]["lr"]
        logger.info("%s it %d %s lr %.6f time/it %.3fs data %.3fs %.1f img/s mem %.0fMB eta %s",
                    where, self.state.iteration, terms, lr, per_iter,
                    window.data_time / window.steps, images_per_s,
                    peak_memory_mb(self.device)[0], eta)
        if self.writer is not None:
            scalars = {f"train/{name}": value
                       for name, value in zip(window.names, means, strict=True)}
            add_finite_scalars(self.writer, {**scalars, "train/lr": lr,
                                             "train/images_per_s": images_per_s},
                               self.state.iteration)

    # -- epoch ends ------------------------------------------------------------------------------
    def end_epoch(self, epoch):
        """Validation when it is due (best.pth when it improves), then the checkpoint."""
        interval = self.settings.eval_interval
        due = epoch.last or (interval > 0 and (epoch.index + 1) % interval == 0)
        if due and self.validator is not None:
            self.checkpointer.check_finite("best.pth")  # and no validation of broken weights
            # The bare network: evaluation needs no gradient synchronisation, and a rank with
            # an empty shard must not be left out of a collective inside the DDP wrapper.
            try:
                miou = self.validator(unwrap_model(self.model).eval(), self.state.iteration)
            except NonFiniteOutputError as e:  # raised on every rank: the count is all-reduced
                raise NonFiniteOutputError(
                    f"{e}; training has diverged, and no checkpoint or best.pth was written "
                    f"from these weights.\nWhat to do: {self._recovery()}") from None
            if miou > self.state.best_miou:
                self.checkpointer.save_weights("best.pth")
                self.state.best_miou = miou
        self.checkpointer.save(self.state.iteration, self.state.best_miou)

    def _recovery(self):
        """What to do after the run diverged: train on from the run's last checkpoint (named),
        or from the start when it has none, at a lower learning rate."""
        phases = self.schedule.phases
        phase = phases[min(self.schedule.locate(max(self.state.iteration - 1, 0))[0],
                           len(phases) - 1)]
        rate = f"a lower {_LR_KEYS[phase.name]} (now {phase.base_lr:g})"
        saved = [path for path in (self.checkpointer.newest, self.checkpointer.previous)
                 if os.path.isfile(path)]
        if not saved:
            advice = f"start the run again with {rate}; it has written no checkpoint yet"
        else:
            advice = (f"resume the run (TRAIN.RESUME True) with {rate} from its last "
                      f"checkpoint, {saved[0]}")
        if len(saved) > 1:
            advice += (f"; should it diverge again from there, put the one before it, {saved[1]},"
                       f" in its place")
        remedy = overflow_remedy(self.settings.amp_dtype)
        return f"{advice}; {remedy}" if remedy else advice

    def finish(self):
        """Collective: check the replicas agree, write final_state.pth."""
        if self.world_size > 1:
            params = unwrap_model(self.model).parameters()
            checksum = torch.stack([p.detach().double().sum() for p in params])
            if not dist.all_equal(checksum):
                raise RuntimeError("the final weights differ between ranks")
            logger.info("final weights identical on all %d ranks", self.world_size)
        self.checkpointer.save_weights("final_state.pth")
        logger.info("done: best mIoU %s %%; weights in %s", percent(self.state.best_miou),
                    self.output_dir)
