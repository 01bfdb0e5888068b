"""The Trainer: runs the parts of a training run that are already built; ``fit`` holds the
loop's policy (when to validate, checkpoint and stop) in one place, ``train_epoch`` the steps
and the checks between them.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from tqdm import tqdm

from ..datasets import DatasetError
from ..evaluation.finite import NonFiniteOutputError
from ..evaluation.report import percent
from ..utils import distributed as dist
from ..utils.compat import stop_persistent_workers
from ..utils.errors import RunError
from ..utils.logger import add_finite_scalars
from ..utils.precision import overflow_remedy
from ..utils.profiling import peak_memory_mb
from .checkpointer import Checkpointer
from .out_of_memory import InputWatch, OutOfMemoryMessage, explain_out_of_memory
from .periodic import CheckpointEvery, EvaluateEvery, LogEvery
from .progress import Lap, TimedBatches
from .schedule import PolySchedule, set_lr
from .step import StepParts
from .window import BufferGuard, StepWindow

logger = logging.getLogger(__name__)


# The config key of each phase's base learning rate (the phases of build._build_phases).
_LR_KEYS = {"main": "TRAIN.LR", "extra": "TRAIN.EXTRA_LR"}


class NonFiniteLossError(RunError):
    """Training produced TRAIN.MAX_NONFINITE non-finite losses in a row."""


@dataclass(frozen=True)
class LoopSettings:
    """When the loop logs, saves and validates, and what it does with what it finds."""

    log: LogEvery  # PRINT_FREQ: also the checks, the only host synchronisation
    checkpoint: CheckpointEvery
    evaluate: EvaluateEvery
    max_nonfinite: int  # non-finite losses in a row that stop the run
    begin_epoch: int = 0  # where a run that does not resume starts (TRAIN.BEGIN_EPOCH)
    resume: bool = False  # continue from the run folder's checkpoint when there is one
    accumulate_steps: int = 1  # micro-batches of a loader batch, one optimiser step for all
    ignore_label: int = 255  # label of unlabelled pixels: an epoch of nothing else stops the run
    oom_message: OutOfMemoryMessage | None = None  # None: names the network's class only

    @classmethod
    def from_config(cls, cfg):
        train = cfg.TRAIN
        return cls(LogEvery(cfg.PRINT_FREQ), CheckpointEvery(train.CHECKPOINT_INTERVAL),
                   EvaluateEvery(train.EVAL_INTERVAL), train.MAX_NONFINITE, train.BEGIN_EPOCH,
                   bool(train.RESUME or cfg.AUTO_RESUME), train.ACCUMULATE_STEPS,
                   train.IGNORE_LABEL, OutOfMemoryMessage.training(cfg))


@dataclass
class TrainingParts:
    """What a training run is built of.

    Args:
        step: the ``StepParts`` (network, loss, optimiser, scaler, precision, device).
        phases: ``(loader, sampler)`` of each phase of ``schedule`` (``train_loader``).
        schedule: the ``PolySchedule`` of the phases.
        checkpointer: the ``Checkpointer`` of the run's folder: every file the run writes.
        validator: ``validator(network, iteration)`` -> mIoU, or None for no validation.
        writer: a TensorBoard writer or None.
        on_close: what ``Trainer.close()`` calls besides stopping the loaders (the folder
            lock's release, the writer's close).
    """

    step: StepParts
    phases: list
    schedule: PolySchedule
    checkpointer: Checkpointer
    validator: Callable[[torch.nn.Module, int], float] | None = None
    writer: object = None
    on_close: Sequence[Callable[[], None]] = ()


@dataclass
class RunState:
    """Where the run is: the global iteration and the best validation mIoU so far."""

    iteration: int = 0
    best_miou: float = 0.0


class Check(NamedTuple):
    """What ``train_epoch`` reports after a check: whether the epoch has ended, whether a
    checkpoint is due, and whether every rank agreed to stop."""

    epoch_end: bool
    checkpoint_due: bool
    stop: bool


class Trainer:
    """Runs built parts: ``Trainer(parts, settings).fit()`` (``TrainingParts``,
    ``LoopSettings``).

    Use it as a context manager (or call ``close``).  ``request_stop()`` (the SIGTERM handler)
    ends the run at the next check with a checkpoint.  Out of device memory in a step, it raises
    the ``OutOfMemoryRunError`` of ``settings.oom_message`` and saves nothing.  An epoch run
    from its first batch whose labels hold nothing but the ignore label on every rank raises
    DatasetError at its end.
    """

    def __init__(self, parts: TrainingParts, settings: LoopSettings):
        self.parts, self.settings = parts, settings
        device, network = parts.step.device, parts.step.network
        self.oom_message = settings.oom_message or \
            OutOfMemoryMessage.of_model("training", network)
        self.state = RunState(iteration=settings.begin_epoch * len(self.loader))
        self.window = StepWindow(device)
        self.buffers = BufferGuard(network, device)
        self.stop_requested = False

    @property
    def loader(self):
        """The training loader of the main phase."""
        return self.parts.phases[0][0]

    @property
    def iteration(self):
        return self.state.iteration

    @property
    def output_dir(self):
        return self.parts.checkpointer.folder

    def request_stop(self):
        """Stop at the next check, with a checkpoint (safe to call from a signal handler)."""
        self.stop_requested = True

    def close(self):
        """Stop the loader workers, then everything of ``on_close``."""
        for loader, _ in self.parts.phases:
            stop_persistent_workers(loader)
        for close in self.parts.on_close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the run ---------------------------------------------------------------------------------
    def fit(self):
        """Train to the end of the schedule; returns True then, False after a stop request.

        The one place where the run validates, saves its checkpoint and stops: after each check
        of ``train_epoch``, the epoch's end validates when due (best.pth when it improves); the
        epoch's end, a due checkpoint and a stop agreed by every rank save the checkpoint; the
        run stops there, unless the check ended the last epoch.
        """
        checkpointer = self.parts.checkpointer
        if self.settings.resume:
            resumed = checkpointer.resume()
            if resumed is not None:
                self.state = RunState(*resumed)
        for epoch in self.parts.schedule.epochs(self.state.iteration):
            for check in self.train_epoch(epoch):
                if check.epoch_end:
                    self.validate_if_due(epoch)
                if check.epoch_end or check.checkpoint_due or check.stop:
                    checkpointer.save(self.state.iteration, self.state.best_miou)
                if check.stop and not (check.epoch_end and epoch.last):
                    logger.info("stop requested: checkpoint saved at iteration %d, exiting",
                                self.state.iteration)
                    return False
        self.finish()
        return True

    def train_epoch(self, epoch):
        """Train ``epoch`` from its first undone batch; a generator that yields a ``Check``
        after each check (at the epoch's last batch, when a log line or a checkpoint is due).

        Raises the ``OutOfMemoryRunError`` of the settings when a step runs out of device memory
        (nothing saved), DatasetError at the end of an epoch run whole whose labels were all the
        ignore label."""
        loader, sampler = self.parts.phases[epoch.phase]
        sampler.set_epoch(epoch.number, start_batch=epoch.first_batch)
        phase = self.parts.schedule.phases[epoch.phase]
        label = f"{phase.name} epoch {epoch.index + 1}/{phase.epochs}"
        total = sampler.batches_per_epoch
        # A progress bar only where a person watches: rank 0 on a terminal.
        shown = tqdm(loader, desc=label, leave=False, initial=epoch.first_batch, total=total,
                     disable=dist.get_rank() != 0 or not sys.stderr.isatty())
        batches = TimedBatches(shown, lambda batch: self.parts.step.inputs(*batch[:2]))
        self.parts.step.model.train()
        self.window.reset()  # the streak of non-finite losses goes on across epochs
        self.buffers.snapshot(self.state.iteration)
        labelled = 0.0  # summed over ranks at each check
        step = InputWatch(self._step)
        with explain_out_of_memory(self.oom_message, self.parts.step.device, step):
            for position, (images, labels) in enumerate(batches, start=epoch.first_batch + 1):
                self.window.count_labelled(labels, self.settings.ignore_label)
                self.window.add(step(images, labels))
                self.state.iteration += 1
                epoch_end = position == total
                checkpoint_due = self.settings.checkpoint.due(self.state.iteration)
                if epoch_end or checkpoint_due or self.settings.log.due(self.state.iteration):
                    stop, labelled_here = self.check(batches, f"{label} [{position}/{total}]",
                                                     images.shape[0])
                    labelled += labelled_here
                    if epoch_end and epoch.first_batch == 0 and not labelled:
                        raise DatasetError(
                            f"{label}: every label pixel of every training crop of the epoch is "
                            f"the ignore label {self.settings.ignore_label} (TRAIN.IGNORE_LABEL)"
                            f": nothing to learn from {loader.dataset!r}; check its label files,"
                            f" DATASET.LABEL_MAP and TRAIN.IGNORE_LABEL")
                    yield Check(epoch_end, checkpoint_due, stop)

    def _step(self, images, labels):
        set_lr(self.parts.step.optimizer, self.parts.schedule.lr(self.state.iteration))
        return self.parts.step.run(images, labels, self.settings.accumulate_steps)

    # -- the check: the one host synchronisation of a stretch of steps --------------------------
    def check(self, batches: TimedBatches, where, batch_size):
        """Collective: agree on the stop request, raise after too many non-finite losses, put
        back batch-norm statistics that a non-finite forward corrupted, log the window and the
        pace of ``batches`` since the last check.  Returns ``(whether any rank asked to stop,
        labelled pixels of the window summed over ranks)``."""
        window, device = self.window, self.parts.step.device
        restored = self.buffers.restore()
        flags = torch.stack([torch.tensor(float(self.stop_requested), device=device),
                             (window.longest_streak >= self.settings.max_nonfinite).float(),
                             window.nonfinite.float(), window.finite.float(), restored.float(),
                             window.labelled.float()])
        stop, exceeded, nonfinite, finite, restored, labelled, *sums = dist.all_reduce_sum(
            torch.cat([flags, window.sums])).tolist()
        lap = batches.lap()  # after the read: the steps' device time is in it
        if nonfinite:
            logger.warning("%s it %d: %d non-finite loss(es) in the last %d iterations; their "
                           "optimiser steps were skipped", where, self.state.iteration,
                           nonfinite, lap.iterations)
        if restored:  # the snapshot stays: the statistics are as old as it
            logger.warning("non-finite batch-norm statistics after a non-finite forward: "
                           "restored those of iteration %d", self.buffers.iteration)
        else:
            self.buffers.snapshot(self.state.iteration)
        if exceeded:
            raise NonFiniteLossError(
                f"{self.settings.max_nonfinite} or more non-finite losses in a row by iteration "
                f"{self.state.iteration} (TRAIN.MAX_NONFINITE = {self.settings.max_nonfinite}); "
                f"no checkpoint was written from this state.\nWhat to do: check the training "
                f"data for broken images or labels; {self._recovery()}")
        if finite:
            self._log_progress(dict(zip(window.names, [s / finite for s in sums], strict=True)),
                               lap, where, batch_size)
        window.reset()
        return stop > 0, labelled

    def _log_progress(self, means, lap: Lap, where, batch_size):
        images_per_s = batch_size * dist.get_world_size() / lap.per_iteration
        terms = " ".join(f"{n} {v:.4f}" for n, v in means.items())
        lr = self.parts.step.optimizer.param_groups[0]["lr"]
        logger.info("%s it %d %s lr %.6f time/it %.3fs data %.3fs %.1f img/s mem %.0fMB eta %s",
                    where, self.state.iteration, terms, lr, lap.per_iteration,
                    lap.data_per_iteration, images_per_s,
                    peak_memory_mb(self.parts.step.device)[0],
                    lap.eta(self.parts.schedule.total_iters - self.state.iteration))
        if self.parts.writer is not None:
            scalars = {f"train/{name}": value for name, value in means.items()}
            add_finite_scalars(self.parts.writer, {**scalars, "train/lr": lr,
                                                   "train/images_per_s": images_per_s},
                               self.state.iteration)

    # -- validation and the end of the run --------------------------------------------------------
    def validate_if_due(self, epoch):
        """Validation of the bare network after ``epoch`` when it is due, and best.pth when it
        improves on the best mIoU."""
        validator, checkpointer = self.parts.validator, self.parts.checkpointer
        if validator is None or not self.settings.evaluate.due(epoch):
            return
        checkpointer.check_finite("best.pth")  # and no validation of broken weights
        # The bare network: evaluation needs no gradient synchronisation, and a rank with an
        # empty shard must not be left out of a collective inside the DDP wrapper.
        try:
            miou = validator(self.parts.step.network.eval(), self.state.iteration)
        except NonFiniteOutputError as e:  # raised on every rank: the count is all-reduced
            raise NonFiniteOutputError(
                f"{e}; training has diverged, and no checkpoint or best.pth was written "
                f"from these weights.\nWhat to do: {self._recovery()}") from None
        if miou > self.state.best_miou:
            checkpointer.save_weights("best.pth")
            self.state.best_miou = miou

    def _recovery(self):
        """What to do after the run diverged: train on from the run's last checkpoint (named),
        or from the start when it has none, at a lower learning rate."""
        schedule, checkpointer = self.parts.schedule, self.parts.checkpointer
        phase = schedule.phases[min(schedule.locate(max(self.state.iteration - 1, 0))[0],
                                    len(schedule.phases) - 1)]
        rate = f"a lower {_LR_KEYS[phase.name]} (now {phase.base_lr:g})"
        saved = [path for path in (checkpointer.newest, checkpointer.previous)
                 if os.path.isfile(path)]
        if not saved:
            advice = f"start the run again with {rate}; it has written no checkpoint yet"
        else:
            advice = (f"resume the run (TRAIN.RESUME True) with {rate} from its last "
                      f"checkpoint, {saved[0]}")
        if len(saved) > 1:
            advice += (f"; should it diverge again from there, put the one before it, {saved[1]},"
                       f" in its place")
        remedy = overflow_remedy(self.parts.step.amp_dtype)
        return f"{advice}; {remedy}" if remedy else advice

    def finish(self):
        """Collective: check the replicas agree, write final_state.pth."""
        world_size = dist.get_world_size()
        if world_size > 1:
            params = self.parts.step.network.parameters()
            checksum = torch.stack([p.detach().double().sum() for p in params])
            if not dist.all_equal(checksum):
                raise RuntimeError("the final weights differ between ranks")
            logger.info("final weights identical on all %d ranks", world_size)
        self.parts.checkpointer.save_weights("final_state.pth")
        logger.info("done: best mIoU %s %%; weights in %s", percent(self.state.best_miou),
                    self.output_dir)
