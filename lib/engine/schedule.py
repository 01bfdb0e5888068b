"""The optimiser and the poly learning-rate schedule over one or two phases of epochs."""
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..config import ConfigError
from ..config.choices import OPTIMIZERS


def build_optimizer(model, name, lr, momentum, weight_decay, nesterov, nonbackbone_keywords=(),
                    nonbackbone_lr_mult=1.0):
    """SGD (the reference) or AdamW over the parameters that require gradients.

    With ``nonbackbone_keywords`` (TRAIN.NONBACKBONE_KEYWORDS) the parameters whose name contains
    one of them form a second group whose learning rate is ``nonbackbone_lr_mult``
    (TRAIN.NONBACKBONE_MULT)
    times the schedule's, as HRNet-OCR trains PASCAL-Context and COCO-Stuff; each group keeps
    its factor as ``lr_mult`` for ``set_lr``.

    Fused implementations: they take ``found_inf`` and skip a step on the device (see
    ``lib.engine.step``).  SGD's momentum buffers start at zero rather than lazily at the first
    gradient: the same update (``0 * momentum + grad``), and a first step that is skipped leaves
    no uninitialised buffer behind.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    named_by = [any(k in n for k in nonbackbone_keywords) for n, _ in named]
    nonbackbone = [p for (_, p), chosen in zip(named, named_by, strict=True) if chosen]
    backbone = [p for (_, p), chosen in zip(named, named_by, strict=True) if not chosen]
    if nonbackbone_keywords and not nonbackbone:
        raise ConfigError(f"TRAIN.NONBACKBONE_KEYWORDS {list(nonbackbone_keywords)} name no "
                          f"parameter of the network")
    params = [{"params": backbone, "lr": lr, "lr_mult": 1.0}]
    if nonbackbone:
        params.append({"params": nonbackbone, "lr": lr * nonbackbone_lr_mult,
                       "lr_mult": float(nonbackbone_lr_mult)})
    if name == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                                    nesterov=nesterov, fused=True)
        if momentum:
            for _, p in named:
                optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)
        return optimizer
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    raise ValueError(f"unknown optimiser {name!r}; valid: {list(OPTIMIZERS)}")


def set_lr(optimizer, lr):
    """The schedule's ``lr`` on every parameter group, times the group's ``lr_mult``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


@dataclass(frozen=True)
class Phase:
    """A stretch of training with its own poly schedule: ``epochs`` epochs of ``iters_per_epoch``."""

    name: str
    base_lr: float
    epochs: int
    iters_per_epoch: int

    @property
    def iters(self):
        return self.epochs * self.iters_per_epoch


@dataclass(frozen=True)
class Epoch:
    """One epoch of a schedule, as the loop runs it."""

    phase: int  # index of its phase
    index: int  # epoch within the phase, from 0
    number: int  # epoch over all phases, from 0 (seeds the sampler's shuffle)
    first_batch: int  # batches of it already done (a resumed run), 0 otherwise
    last: bool  # the last epoch of the run


class PolySchedule:
    """lr = base * (1 - i / max_i) ** power within each phase; ``i`` counts from the phase start.

    The iteration passed in is global (counted over all phases), so a resumed run continues the
    same curve from its saved iteration.
    """

    def __init__(self, phases: list[Phase], power=0.9):
        self.phases, self.power = phases, power

    @property
    def total_iters(self):
        return sum(p.iters for p in self.phases)

    def locate(self, iteration):
        """``(phase index, epoch within the phase, batch within the epoch)`` of an iteration."""
        for index, phase in enumerate(self.phases):
            if iteration < phase.iters:
                epoch, batch = divmod(iteration, phase.iters_per_epoch)
                return index, epoch, batch
            iteration -= phase.iters
        return len(self.phases), 0, 0

    def epochs(self, iteration) -> Iterator[Epoch]:
        """The epochs still to run from global ``iteration`` on, the first one maybe begun."""
        start, number = 0, 0
        last = sum(p.epochs for p in self.phases) - 1
        for p, phase in enumerate(self.phases):
            for index in range(phase.epochs):
                done = iteration - start
                if done < phase.iters_per_epoch:
                    yield Epoch(p, index, number, max(done, 0), number == last)
                start += phase.iters_per_epoch
                number += 1

    def lr(self, iteration):
        index, epoch, batch = self.locate(iteration)
        if index == len(self.phases):
            return 0.0
        phase = self.phases[index]
        done = epoch * phase.iters_per_epoch + batch
        return phase.base_lr * (1 - done / phase.iters) ** self.power
