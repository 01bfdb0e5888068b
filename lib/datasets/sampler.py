"""The training sampler: shuffled, split across ranks, a pure function of (seed, epoch)."""
import torch
from torch.utils.data import Sampler


class TrainSampler(Sampler):
    """Indices of one rank for one epoch, resumable at any batch.

    Each epoch shuffles with a generator seeded by ``seed + epoch`` (the same on every rank), keeps
    the largest prefix that gives every rank ``batches_per_epoch`` full batches, and deals rank r
    the positions r, r + W, r + 2W, ...  It yields ``(index, epoch)`` pairs: the training dataset
    derives each sample's random augmentation from them, so a run is reproducible whatever the
    number of workers and after a resume in the middle of an epoch.
    """

    def __init__(self, num_items, batch_size, rank=0, world_size=1, seed=0, shuffle=True):
        self.num_items = num_items
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.batches_per_epoch = num_items // world_size // batch_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch, start_batch=0):
        """Select the epoch and skip its first ``start_batch`` batches (resuming)."""
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_items, generator=g)
        else:
            order = torch.arange(self.num_items)
        used = self.batches_per_epoch * self.batch_size * self.world_size
        mine = order[:used][self.rank::self.world_size][self.start_batch * self.batch_size:]
        return iter([(int(i), self.epoch) for i in mine])

    def __len__(self):
        return (self.batches_per_epoch - self.start_batch) * self.batch_size
