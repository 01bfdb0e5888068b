"""The Trainer: builds a run from its config and owns the epoch loop, with the stop, checkpoint
and validation policy in one place.

Host synchronisation: a training step reads nothing back (``lib.engine.step``).  Every
PRINT_FREQ iterations, at each CHECKPOINT_INTERVAL and at the end of each epoch, one all-reduce
of a small vector (stop request, non-finite losses, batch-norm finiteness, loss sums) is read by
the host: the loop logs, stops or raises there, and only there.
"""
import logging
import os
import sys
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..datasets import build_dataset
from ..datasets.loaders import eval_loader, train_loader
from ..datasets.transforms import MEAN, STD
from ..evaluation.loop import evaluate, single_scale
from ..evaluation.metrics import format_table
from ..models import build_model
from ..models.losses import build_criterion
from ..utils import distributed as dist
from ..utils.compat import stop_persistent_workers, unwrap_model
from ..utils.logger import create_writer, setup_logging
from ..utils.precision import amp_dtype, needs_loss_scaling
from ..utils.profiling import count_flops, peak_memory_mb
from ..utils.visualize import denormalize, prediction_panels
from . import step
from .checkpointer import Checkpointer
from .folder_lock import FolderLock, FolderLockedError
from .launch import RunError, configure_cudnn, make_writable_dir, run_dirs, seed_everything
from .schedule import Phase, PolySchedule, build_optimizer, set_lr

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
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

    @classmethod
    def from_config(cls, cfg):
        train = cfg.TRAIN
        return cls(amp_dtype(train.AMP, train.AMP_DTYPE), train.CHANNELS_LAST, cfg.PRINT_FREQ,
                   train.MAX_NONFINITE, train.CHECKPOINT_INTERVAL, train.EVAL_INTERVAL)


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


class Trainer:
    """``Trainer(cfg, cfg_path, device, rank, world_size).fit()`` trains the configured run.

    Use it as a context manager (or call ``close``): it holds the output folder's lock and the
    TensorBoard writer.  ``request_stop()`` (the SIGTERM handler) ends the run at the next check
    with a checkpoint.
    """

    def __init__(self, cfg, cfg_path, device, rank, world_size):
        self.cfg, self.device, self.rank, self.world_size = cfg, device, rank, world_size
        self.settings = LoopSettings.from_config(cfg)
        self.output_dir, log_dir = run_dirs(cfg, cfg_path)
        self.writer, self.lock = None, None
        self._lock_folders(log_dir)
        try:
            setup_logging(self.output_dir, rank, "train")
            seed_everything(cfg.TRAIN.SEED)
            configure_cudnn(cfg.CUDNN)
            self._build_data()
            self._build_model()
            self.writer = create_writer(log_dir, rank)
        except BaseException:
            self.close()
            raise
        self.checkpointer = Checkpointer(
            self.output_dir, self.model, self.optimizer, self.scaler,
            iters_per_epoch=[p.iters_per_epoch for p in self.schedule.phases],
            config_text=cfg.dump(), rank=rank, device=device)
        self.iteration = cfg.TRAIN.BEGIN_EPOCH * len(self.loader)
        self.best_miou = 0.0
        self.window = StepWindow(device)
        self.stop_requested = self.stop_agreed = False
        if rank == 0:  # only once the run has started: a failed start leaves a folder unchanged
            path = os.path.join(self.output_dir, "config.yaml")
            with open(path, "w") as f:
                f.write(cfg.dump())
            logger.info("config (also in %s):\n%s", path, cfg.dump())

    # -- set-up ----------------------------------------------------------------------------------
    def _lock_folders(self, log_dir):
        """Collective: rank 0 creates the folders and takes the lock; every rank fails with it."""
        error = None
        if self.rank == 0:
            try:
                make_writable_dir(self.output_dir, "OUTPUT_DIR")
                make_writable_dir(log_dir, "LOG_DIR")
                self.lock = FolderLock(self.output_dir).acquire()
            except (RunError, FolderLockedError) as e:
                error = e
        if dist.any_rank(error is not None, self.device):
            raise error or RunError(f"rank 0 could not start the run in {self.output_dir}")

    def _build_data(self):
        cfg, pin = self.cfg, self.cfg.PIN_MEMORY and self.device.type == "cuda"
        self.train_set = build_dataset(cfg, "train")
        self.val_set = build_dataset(cfg, "val")
        self.val_loader = eval_loader(self.val_set, cfg.TEST.BATCH_SIZE_PER_GPU, cfg.WORKERS, pin)
        sets = [(self.train_set, "main", cfg.TRAIN.LR, cfg.TRAIN.END_EPOCH)]
        if cfg.TRAIN.EXTRA_EPOCH > 0:
            if not cfg.DATASET.EXTRA_TRAIN_SET:
                raise RunError("TRAIN.EXTRA_EPOCH > 0 needs DATASET.EXTRA_TRAIN_SET")
            extra = build_dataset(cfg, "train", list_path=cfg.DATASET.EXTRA_TRAIN_SET)
            sets.append((extra, "extra", cfg.TRAIN.EXTRA_LR, cfg.TRAIN.EXTRA_EPOCH))
        self.phase_loaders = [train_loader(dataset, cfg.TRAIN.BATCH_SIZE_PER_GPU, cfg.WORKERS, pin,
                                           max(cfg.TRAIN.SEED, 0), cfg.TRAIN.SHUFFLE)
                              for dataset, *_ in sets]
        self.schedule = PolySchedule([Phase(name, lr, epochs, len(loader))
                                      for (_, name, lr, epochs), (loader, _) in
                                      zip(sets, self.phase_loaders, strict=True)])

    def _build_model(self):
        cfg, device = self.cfg, self.device
        model = build_model(cfg).to(device)
        crop_hw = (cfg.TRAIN.IMAGE_SIZE[1], cfg.TRAIN.IMAGE_SIZE[0])
        logger.info("%s: %.2fM parameters, %.1f GFLOPs per %dx%d image (forward)", cfg.MODEL.NAME,
                    sum(p.numel() for p in model.parameters()) / 1e6,
                    forward_flops(model, crop_hw, device) / 1e9, *crop_hw)
        if self.world_size > 1 and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if cfg.TRAIN.CHANNELS_LAST:
            model = model.to(memory_format=torch.channels_last)
        if self.world_size > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.model = torch.compile(model) if cfg.TRAIN.COMPILE else model
        self.criterion = build_criterion(cfg, self.train_set.class_weights).to(device)
        self.optimizer = build_optimizer(unwrap_model(self.model), cfg.TRAIN.OPTIMIZER,
                                         cfg.TRAIN.LR, cfg.TRAIN.MOMENTUM, cfg.TRAIN.WD,
                                         cfg.TRAIN.NESTEROV)
        self.scaler = torch.amp.GradScaler(device.type,
                                           enabled=needs_loss_scaling(self.settings.amp_dtype))

    @property
    def loader(self):
        """The training loader of the main phase."""
        return self.phase_loaders[0][0]

    def request_stop(self):
        """Stop at the next check, with a checkpoint (safe to call from a signal handler)."""
        self.stop_requested = True

    def close(self):
        """Stop the loader workers, close the TensorBoard writer, release the folder's lock."""
        for loader, _ in getattr(self, "phase_loaders", []):
            stop_persistent_workers(loader)
        if self.writer is not None:
            self.writer.close()
        if self.lock is not None:
            self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the run ---------------------------------------------------------------------------------
    def fit(self):
        """Train to the end of the schedule; returns True then, False after a stop request."""
        if self.cfg.TRAIN.RESUME or self.cfg.AUTO_RESUME:
            resumed = self.checkpointer.resume()
            if resumed is not None:
                self.iteration, self.best_miou = resumed
        for epoch in self.schedule.epochs(self.iteration):
            if not self.train_epoch(epoch):  # stopped inside the epoch, checkpoint saved
                return self._stopped()
            self.end_epoch(epoch)
            if self.stop_agreed and not epoch.last:
                return self._stopped()
        self.finish()
        return True

    def _stopped(self):
        logger.info("stop requested: checkpoint saved at iteration %d, exiting", self.iteration)
        return False

    def train_epoch(self, epoch):
        """Train ``epoch`` from its first undone batch; returns True when it ran to its end.

        The checks decide the rest: a stop request agreed by every rank (``stop_agreed``) before
        the epoch's last step saves a checkpoint there and returns False; at the last step the
        epoch ends as usual (validation, checkpoint) before the run stops.
        """
        loader, sampler = self.phase_loaders[epoch.phase]
        sampler.set_epoch(epoch.number, start_batch=epoch.first_batch)
        phase = self.schedule.phases[epoch.phase]
        label = f"{phase.name} epoch {epoch.index + 1}/{phase.epochs}"
        total = sampler.batches_per_epoch
        # A progress bar only where a person watches: rank 0 on a terminal.
        batches = tqdm(loader, desc=label, leave=False, initial=epoch.first_batch, total=total,
                       disable=self.rank != 0 or not sys.stderr.isatty())
        self.model.train()
        window = self.window
        window.reset()  # the streak of non-finite losses goes on across epochs
        self._snapshot_buffers()
        data_tic = time.perf_counter()
        for position, batch in enumerate(batches, start=epoch.first_batch + 1):
            images, labels = self._to_device(batch)
            window.data_time += time.perf_counter() - data_tic
            set_lr(self.optimizer, self.schedule.lr(self.iteration))
            window.add(step.train_step(self.model, self.criterion, self.optimizer, self.scaler,
                                       images, labels, self.settings.amp_dtype))
            self.iteration += 1
            interval = self.settings.checkpoint_interval
            checkpoint_due = interval > 0 and self.iteration % interval == 0
            if position == total or checkpoint_due or \
                    self.iteration % self.settings.print_freq == 0:
                self.stop_agreed = self.check(window, f"{label} [{position}/{total}]",
                                              images.shape[0])
                if position < total:  # the epoch end saves its own checkpoint
                    if self.stop_agreed or checkpoint_due:
                        self.checkpointer.save(self.iteration, self.best_miou)
                    if self.stop_agreed:
                        return False
            data_tic = time.perf_counter()
        return True

    def _to_device(self, batch):
        images = batch[0].to(self.device, non_blocking=True)
        labels = batch[1].to(self.device, non_blocking=True)
        if self.settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels

    # -- the check: the one host synchronisation of a stretch of steps --------------------------
    def _float_buffers(self):
        return [b for b in unwrap_model(self.model).buffers() if b.is_floating_point()]

    def _snapshot_buffers(self):
        self.buffer_snapshot = [b.detach().clone() for b in self._float_buffers()]
        self.snapshot_iteration = self.iteration

    def check(self, window, where, batch_size):
        """Collective: agree on the stop request, raise after too many non-finite losses, put
        back batch-norm statistics that a non-finite forward corrupted, log the window.
        Returns True when any rank asked to stop."""
        stop, exceeded, nonfinite, finite, restored, *sums = self._reduce(window)
        if nonfinite:
            logger.warning("%s it %d: %d non-finite loss(es) in the last %d iterations; their "
                           "optimiser steps were skipped", where, self.iteration, nonfinite,
                           window.steps)
        if restored:
            logger.warning("non-finite batch-norm statistics after a non-finite forward: "
                           "restored those of iteration %d", self.restored_from)
            self.snapshot_iteration = self.restored_from  # the statistics are that old
        if exceeded:
            raise NonFiniteLossError(
                f"{self.settings.max_nonfinite} or more non-finite losses in a row by iteration "
                f"{self.iteration} (TRAIN.MAX_NONFINITE = {self.settings.max_nonfinite}); no "
                f"checkpoint was written from this state")
        if finite:
            self._log_progress(window, [s / finite for s in sums], where, batch_size)
        window.reset()
        return stop > 0

    def _reduce(self, window):
        """The window's flags and sums, all-reduced and read by the host (the one sync)."""
        restored = self._restore_buffers()
        flags = torch.stack([torch.tensor(float(self.stop_requested), device=self.device),
                             (window.worst >= self.settings.max_nonfinite).float(),
                             window.nonfinite.float(), window.finite.float(), restored.float()])
        return dist.all_reduce_sum(torch.cat([flags, window.sums])).tolist()

    def _restore_buffers(self):
        """On the device: where a float buffer (batch-norm statistics) is non-finite, put back
        all of them as they were at the last check; then take the next snapshot.  Returns that
        0-dim bool flag."""
        buffers = self._float_buffers()
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        if buffers:
            bad = ~torch.stack([torch.isfinite(b).all() for b in buffers]).all()
        with torch.no_grad():
            for buffer, saved in zip(buffers, self.buffer_snapshot, strict=True):
                buffer.copy_(torch.where(bad, saved, buffer))
        self.restored_from = self.snapshot_iteration
        self._snapshot_buffers()
        return bad

    def _log_progress(self, window, means, where, batch_size):
        per_iter = (time.perf_counter() - window.started) / window.steps
        remaining = (self.schedule.total_iters - self.iteration) * per_iter
        images_per_s = batch_size * self.world_size / per_iter
        terms = " ".join(f"{n} {v:.4f}" for n, v in zip(window.names, means, strict=True))
        eta = time.strftime("%H:%M:%S", time.gmtime(remaining)) if remaining < 86400 \
            else f"{remaining / 86400:.1f} days"
        lr = self.optimizer.param_groups[0]["lr"]
        logger.info("%s it %d %s lr %.6f time/it %.3fs data %.3fs %.1f img/s mem %.0fMB eta %s",
                    where, self.iteration, terms, lr, per_iter, window.data_time / window.steps,
                    images_per_s, peak_memory_mb(self.device)[0], eta)
        if self.writer is not None:
            for name, value in zip(window.names, means, strict=True):
                self.writer.add_scalar(f"train/{name}", value, self.iteration)
            self.writer.add_scalar("train/lr", lr, self.iteration)
            self.writer.add_scalar("train/images_per_s", images_per_s, self.iteration)

    # -- epoch ends ------------------------------------------------------------------------------
    def end_epoch(self, epoch):
        """Validation when it is due (best.pth when it improves), then the checkpoint."""
        interval = self.settings.eval_interval
        if epoch.last or (interval > 0 and (epoch.index + 1) % interval == 0):
            self.checkpointer.check_finite("best.pth")  # and no validation of broken weights
            miou = self.validate()
            if miou > self.best_miou:
                self.checkpointer.save_weights("best.pth")
                self.best_miou = miou
        self.checkpointer.save(self.iteration, self.best_miou)

    def validate(self):
        """Collective: single-scale mIoU of the validation set (every rank its own shard)."""
        cfg = self.cfg
        # The bare network: evaluation needs no gradient synchronisation, and a rank with an
        # empty shard must not be left out of a collective inside the DDP wrapper.
        model = unwrap_model(self.model).eval()
        shown = []

        def summary_of_first_batch(images, preds, names):
            if not shown:
                self.image_summary(model, images)
                shown.append(True)

        evaluator = evaluate(single_scale(model, cfg.MODEL.ALIGN_CORNERS, self.settings.amp_dtype),
                             self.val_loader, self.val_set, self.device, summary_of_first_batch)
        results = evaluator.results(self.val_set.class_names)
        logger.info("validation at iteration %d:\n%s", self.iteration,
                    format_table(results, self.val_set.class_names))
        if self.writer is not None:
            self.writer.add_scalar("val/mIoU", results["mIoU"], self.iteration)
            for name, iou in results["IoU"].items():
                self.writer.add_scalar(f"val_IoU/{name.replace(' ', '_')}", iou, self.iteration)
        return results["mIoU"]

    def image_summary(self, model, images):
        if self.writer is None:
            return
        output = model(images[:1])  # called inside evaluate(): no gradients
        panels = prediction_panels(denormalize(images[0].cpu(), MEAN, STD), output,
                                   self.val_set.palette, align_corners=self.cfg.MODEL.ALIGN_CORNERS)
        for name, rgb in panels.items():
            self.writer.add_image(f"val/{name}", rgb, self.iteration, dataformats="HWC")

    def finish(self):
        """Collective: check the replicas agree, write final_state.pth."""
        if self.world_size > 1:
            params = unwrap_model(self.model).parameters()
            checksum = torch.stack([p.detach().double().sum() for p in params])
            if not dist.all_equal(checksum):
                raise RuntimeError("the final weights differ between ranks")
            logger.info("final weights identical on all %d ranks", self.world_size)
        self.checkpointer.save_weights("final_state.pth")
        logger.info("done: best mIoU %.4f; weights in %s", self.best_miou, self.output_dir)


def forward_flops(model, crop_hw, device):
    """Forward FLOPs of one image at the training crop, counted in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        flops = count_flops(lambda: model(torch.zeros(1, 3, *crop_hw, device=device)))
    model.train(was_training)
    return flops
