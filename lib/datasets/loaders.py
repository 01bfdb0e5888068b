"""The DataLoaders of training and evaluation."""
import logging
import signal

from torch.utils.data import BatchSampler, DataLoader, Subset

from ..utils import distributed as dist
from ..utils.errors import RunError
from . import init_worker
from .sampler import TrainSampler

logger = logging.getLogger(__name__)


def _init_worker(worker_id):
    """Loader workers ignore SIGTERM: torchrun and SLURM signal every process of a rank, and a
    worker dying with its batch would end the run with a DataLoader error instead of the
    checkpoint that the main process writes on SIGTERM.  The main process shuts them down
    (``lib.utils.compat``): they no longer die of the SIGTERM that Python's exit sends to
    leftovers."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    init_worker(worker_id)


def train_loader(dataset, batch_size, workers, pin_memory, seed, shuffle, accumulate_steps=1):
    """``(loader, sampler)`` of this rank's shard of the shuffled epochs (whole batches only).

    A batch holds ``batch_size * accumulate_steps`` samples (TRAIN.BATCH_SIZE_PER_GPU x
    TRAIN.ACCUMULATE_STEPS): the micro-batches of one optimiser step, so that the loader's
    length, a resume position and the schedule all count optimiser steps.  Each epoch is chosen
    with ``sampler.set_epoch(epoch, start_batch)``.
    """
    rank, world_size = dist.get_rank(), dist.get_world_size()
    step_batch = batch_size * accumulate_steps
    sampler = TrainSampler(len(dataset), step_batch, rank, world_size, seed=seed, shuffle=shuffle)
    if sampler.batches_per_epoch == 0:
        accumulation = f" x TRAIN.ACCUMULATE_STEPS = {accumulate_steps}" \
            if accumulate_steps > 1 else ""
        raise RunError(f"TRAIN.BATCH_SIZE_PER_GPU = {batch_size}{accumulation} x {world_size} "
                       f"processes is more than the {len(dataset)} training samples of "
                       f"{dataset.list_file}")
    loader = DataLoader(dataset, batch_sampler=BatchSampler(sampler, step_batch, drop_last=True),
                        num_workers=workers, pin_memory=pin_memory,
                        persistent_workers=workers > 0, worker_init_fn=_init_worker)
    return loader, sampler


def eval_loader(dataset, batch_size, workers, pin_memory):
    """This rank's exact shard of ``dataset`` in order (every item on one rank only), in batches
    of ``batch_size`` whole images when the dataset's images all have one size
    (``image_size_mismatch`` is None), else one image per batch (the reference files of
    PASCAL-Context, LIP and VOC ask for 16 images of different sizes)."""
    mismatch = dataset.image_size_mismatch if batch_size > 1 else None
    if mismatch:
        logger.info("%s: one image per batch in evaluation (%s); TEST.BATCH_SIZE_PER_GPU %d "
                    "applies to datasets whose images have one size", type(dataset).__name__,
                    mismatch, batch_size)
        batch_size = 1
    shard = Subset(dataset, dist.shard_indices(len(dataset)))
    return DataLoader(shard, batch_size=batch_size, shuffle=False,
                      num_workers=min(workers, len(shard)), pin_memory=pin_memory,
                      worker_init_fn=_init_worker)
