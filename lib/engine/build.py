"""A training run built from its config: ``build_trainer(cfg, ...)`` makes every part the
``Trainer`` runs, and ``build_step_parts`` the parts of one training step, which
``tools/benchmark.py --mode train`` times as they are built for training."""
import logging
import os

import torch

from ..config import amp_dtype_of
from ..datasets import build_dataset, dataset_tables
from ..datasets.loaders import eval_loader, train_loader
from ..evaluation.accumulator import MeasureSettings
from ..models import apply_speed_flags, build_model, input_normalization
from ..models.losses import build_criterion
from ..utils import distributed as dist
from ..utils.atomic import write_text
from ..utils.compat import stop_persistent_workers, unwrap_model
from ..utils.errors import RunError
from ..utils.logger import create_writer, setup_logging
from ..utils.precision import needs_loss_scaling
from ..utils.profiling import count_flops
from .checkpointer import Checkpointer
from .folder_lock import FolderLock
from .launch import configure_cudnn, make_writable_dir, seed_everything
from .out_of_memory import OutOfMemoryMessage
from .run_folders import mark_latest, training_run
from .schedule import Phase, PolySchedule, build_optimizer
from .step import StepParts
from .trainer import LoopSettings, Trainer, TrainingParts
from .validator import Validator

__all__ = ["build_step_parts", "build_trainer", "forward_flops"]

logger = logging.getLogger(__name__)


def build_step_parts(cfg, device, world_size=1, load_pretrained=True):
    """The ``StepParts`` of MODEL.*, LOSS.* and TRAIN.* on ``device``, for a group of
    ``world_size`` processes (SyncBatchNorm and DDP above 1, SyncBatchNorm on CUDA only).

    The loss takes the class weights of DATASET.DATASET's tables when LOSS.CLASS_BALANCE is on
    (no dataset is read).  ``load_pretrained``: initialise from MODEL.PRETRAINED /
    OFFSET_PRETRAINED.
    """
    if cfg.TRAIN.GRAD_CHECKPOINTING and cfg.TRAIN.COMPILE:
        # The batch-norm guard of the recompute is a Python hook, which a compiled graph does
        # not run: exact statistics are not guaranteed, so the combination is refused.
        raise RunError("TRAIN.GRAD_CHECKPOINTING True with TRAIN.COMPILE True is not supported: "
                       "the recompute's batch-norm statistics are only guaranteed exact without "
                       "torch.compile; turn one of them off")
    network = build_model(cfg, load_pretrained=load_pretrained).to(device)
    if cfg.TRAIN.GRAD_CHECKPOINTING:
        network.set_grad_checkpointing(True)
    if world_size > 1 and device.type == "cuda":
        network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)

    def ddp(module):
        return torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None)

    model = apply_speed_flags(network, channels_last=cfg.TRAIN.CHANNELS_LAST,
                              compile=cfg.TRAIN.COMPILE, wrap=ddp if world_size > 1 else None)
    weights = dataset_tables(cfg).class_weight_table if cfg.LOSS.CLASS_BALANCE else None
    criterion = build_criterion(cfg, weights).to(device)
    optimizer = build_optimizer(unwrap_model(model), cfg.TRAIN.OPTIMIZER, cfg.TRAIN.LR,
                                cfg.TRAIN.MOMENTUM, cfg.TRAIN.WD, cfg.TRAIN.NESTEROV,
                                nonbackbone_keywords=tuple(cfg.TRAIN.NONBACKBONE_KEYWORDS),
                                nonbackbone_lr_mult=cfg.TRAIN.NONBACKBONE_MULT)
    dtype = amp_dtype_of(cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_loss_scaling(dtype))
    return StepParts(model, unwrap_model(model), criterion, optimizer, scaler, dtype,
                     cfg.TRAIN.CHANNELS_LAST, device)


def forward_flops(model, crop_hw, device):
    """Forward FLOPs of one image at the training crop, counted in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        flops = count_flops(lambda: model(torch.zeros(1, 3, *crop_hw, device=device)))
    model.train(was_training)
    return flops


def _start_run(cfg, cfg_path, device):
    """Collective: rank 0 chooses the run's folders (``run_folders.training_run``), creates
    them and takes the run folder's lock; every rank fails with it, and every rank gets the
    ``TrainingRun``.  Returns ``(run, lock)`` (the lock None on the other ranks)."""
    chosen = []

    def take():
        run = training_run(cfg, cfg_path)
        make_writable_dir(run.folder, "RUN_DIR" if cfg.RUN_DIR else "OUTPUT_DIR")
        make_writable_dir(run.tensorboard, "RUN_DIR" if cfg.RUN_DIR else "LOG_DIR")
        chosen.extend((run, FolderLock(run.folder).acquire()))

    dist.on_rank_0(take, device, RunError("rank 0 could not start the run (its error is above)"))
    run = dist.broadcast_from_rank_0(chosen[0] if chosen else None, device)
    return run, chosen[1] if chosen else None


def _build_phases(cfg, device, normalization):
    """``(loader, sampler)`` of each training phase and their ``PolySchedule``; the images
    normalised with ``normalization`` (the network's)."""
    pin = cfg.PIN_MEMORY and device.type == "cuda"
    train_set = build_dataset(cfg, "train", normalization=normalization)
    sets = [(train_set, "main", cfg.TRAIN.LR, cfg.TRAIN.END_EPOCH)]
    if cfg.TRAIN.EXTRA_EPOCH > 0:
        if not cfg.DATASET.EXTRA_TRAIN_SET:
            raise RunError("TRAIN.EXTRA_EPOCH > 0 needs DATASET.EXTRA_TRAIN_SET")
        extra = build_dataset(cfg, "train", list_path=cfg.DATASET.EXTRA_TRAIN_SET,
                              normalization=normalization)
        sets.append((extra, "extra", cfg.TRAIN.EXTRA_LR, cfg.TRAIN.EXTRA_EPOCH))
    phases = [train_loader(dataset, cfg.TRAIN.BATCH_SIZE_PER_GPU, cfg.WORKERS, pin,
                           max(cfg.TRAIN.SEED, 0), cfg.TRAIN.SHUFFLE, cfg.TRAIN.ACCUMULATE_STEPS)
              for dataset, *_ in sets]
    schedule = PolySchedule([Phase(name, lr, epochs, len(loader))
                             for (_, name, lr, epochs), (loader, _) in zip(sets, phases,
                                                                           strict=True)])
    return phases, schedule


def _build_validator(cfg, device, val_set, amp_dtype, writer, record_dir):
    """The ``Validator`` of ``val_set`` (DATASET.TEST_SET)."""
    val_loader = eval_loader(val_set, cfg.TEST.BATCH_SIZE_PER_GPU, cfg.WORKERS,
                             cfg.PIN_MEMORY and device.type == "cuda")
    return Validator(val_loader, val_set, device, align_corners=cfg.MODEL.ALIGN_CORNERS,
                     amp_dtype=amp_dtype, writer=writer, measures=MeasureSettings.from_config(cfg),
                     oom_message=OutOfMemoryMessage.validation(cfg), record_dir=record_dir)


def _log_network(cfg, network, device):
    """The network's size and forward FLOPs at the training crop, in the log."""
    crop_hw = (cfg.TRAIN.IMAGE_SIZE[1], cfg.TRAIN.IMAGE_SIZE[0])
    logger.info("%s: %.2fM parameters, %.1f GFLOPs per %dx%d image (forward)%s",
                cfg.MODEL.NAME, sum(p.numel() for p in network.parameters()) / 1e6,
                forward_flops(network, crop_hw, device) / 1e9, *crop_hw,
                ", activations recomputed in the backward (TRAIN.GRAD_CHECKPOINTING)"
                if cfg.TRAIN.GRAD_CHECKPOINTING else "")


def _log_effective_batch(batch_per_gpu, world_size, accumulate_steps):
    logger.info("effective batch %d = %d per GPU (TRAIN.BATCH_SIZE_PER_GPU) x %d GPU%s x %d "
                "micro-batch%s per optimiser step (TRAIN.ACCUMULATE_STEPS)",
                batch_per_gpu * world_size * accumulate_steps, batch_per_gpu, world_size,
                "" if world_size == 1 else "s", accumulate_steps,
                "" if accumulate_steps == 1 else "es")


def _closers(writer, lock):
    return [f for f in (writer and writer.close, lock and lock.release) if f]


def build_trainer(cfg, cfg_path, device, rank, world_size) -> Trainer:
    """The ``Trainer`` of the configured run, in the run folder ``run_folders.training_run``
    chooses (a new one, RUN_DIR, or the run it resumes).

    Collective.  Takes the run folder's lock (a second run into the same folder stops at
    once), sets up logging, seeds and cuDNN, builds the step parts, the data (normalised as the
    network says), the checkpointer, the validator and the TensorBoard writer, and writes
    ``config.yaml`` once all of it has been built (a run that fails to start leaves the folder
    as it was); only then does the experiment's ``latest`` link name the run.  The Trainer
    releases the lock when it is closed.
    """
    run, lock = _start_run(cfg, cfg_path, device)
    output_dir = run.folder
    phases, writer = [], None
    try:
        setup_logging(output_dir, rank, "train")
        logger.info("%s", run.describe())
        if lock is not None and lock.takeover_warning:
            logger.warning("%s", lock.takeover_warning)  # now that the log file is open
        seed_everything(cfg.TRAIN.SEED)
        configure_cudnn(cfg.CUDNN)
        parts = build_step_parts(cfg, device, world_size)
        normalization = input_normalization(parts.network)
        phases, schedule = _build_phases(cfg, device, normalization)
        val_set = build_dataset(cfg, "val", normalization=normalization)
        _log_network(cfg, parts.network, device)
        _log_effective_batch(cfg.TRAIN.BATCH_SIZE_PER_GPU, world_size,
                             cfg.TRAIN.ACCUMULATE_STEPS)
        writer = create_writer(run.tensorboard, rank)
        checkpointer = Checkpointer(output_dir, parts.model, parts.optimizer, parts.scaler,
                                    iters_per_epoch=[p.iters_per_epoch for p in schedule.phases],
                                    config_text=cfg.dump(), device=device,
                                    batch_split=(cfg.TRAIN.BATCH_SIZE_PER_GPU, world_size,
                                                 cfg.TRAIN.ACCUMULATE_STEPS))
        validator = _build_validator(cfg, device, val_set, parts.amp_dtype, writer,
                                     os.path.join(output_dir, "validation"))
    except BaseException:
        for loader, _ in phases:
            stop_persistent_workers(loader)
        for close in _closers(writer, lock):
            close()
        raise
    trainer = Trainer(TrainingParts(parts, phases, schedule, checkpointer, validator, writer,
                                    _closers(writer, lock)), LoopSettings.from_config(cfg))
    if rank == 0:  # only once the run has started: a failed start leaves a folder unchanged
        path = os.path.join(output_dir, "config.yaml")
        write_text(path, cfg.dump())
        logger.info("config (also in %s):\n%s", path, cfg.dump())
        if run.how != "given":
            mark_latest(output_dir)
    return trainer
