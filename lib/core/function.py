"""Training and validation loops, the optimiser and the poly learning-rate schedule."""
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..utils import distributed as dist
from ..utils.benchmark import peak_memory_mb
from ..utils.run import autocast
from .inference import forward_logits
from .metrics import SegEvaluator

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced too many non-finite losses in a row (or corrupted batch-norm statistics)."""


OPTIMIZERS = ("sgd", "adamw")  # the names build_optimizer accepts (TRAIN.OPTIMIZER)


def build_optimizer(model, name, lr, momentum, weight_decay, nesterov):
    """SGD (the reference) or AdamW over the parameters that require gradients."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimiser {name!r}; valid: ['sgd', 'adamw']")


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

    def lr(self, iteration):
        index, epoch, batch = self.locate(iteration)
        if index == len(self.phases):
            return 0.0
        phase = self.phases[index]
        done = epoch * phase.iters_per_epoch + batch
        return phase.base_lr * (1 - done / phase.iters) ** self.power


@dataclass
class TrainState:
    """What a checkpoint must restore besides the weights and the optimiser."""

    iteration: int = 0
    best_miou: float = 0.0
    nonfinite_in_a_row: int = 0
    stop_requested: bool = False  # this rank received SIGTERM
    stop_agreed: bool = False  # every rank has seen a stop request (all-reduced)


@dataclass(frozen=True)
class StepSettings:
    """How each training step runs."""

    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    print_freq: int = 20
    max_nonfinite: int = 5
    checkpoint_interval: int = 0


def _set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


def nonfinite_tensors(named_tensors):
    """Names of the floating-point tensors that hold a NaN or an infinity (this rank only)."""
    return [n for n, t in named_tensors if t.is_floating_point() and not torch.isfinite(t).all()]


def train_one_epoch(model, criterion, optimizer, loader, device, schedule: PolySchedule,
                    state: TrainState, settings: StepSettings, writer=None,
                    save_checkpoint: Callable[[], None] | None = None, epoch_label=""):
    """One pass over ``loader`` (which may start mid-epoch when resuming).

    Every step: poly lr, forward (autocast when set), criterion terms, backward, and the optimiser
    step unless the loss is non-finite on any rank.  The finiteness and the stop request
    (SIGTERM) travel in one small all-reduce, the only synchronisation of a step; loss terms are
    accumulated on the device and read every ``print_freq`` iterations.
    Returns True when the epoch ran to its end.  A stop request sets ``state.stop_agreed``; before
    the last step it also saves a checkpoint and returns False at once.
    """
    model.train()
    sums, count, window = None, 0, 0
    tic = data_tic = time.perf_counter()
    data_time = 0.0
    for step, batch in enumerate(loader, start=1):
        images = batch[0].to(device, non_blocking=True)
        labels = batch[1].to(device, non_blocking=True)
        if settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        data_time += time.perf_counter() - data_tic
        lr = schedule.lr(state.iteration)
        _set_lr(optimizer, lr)
        with autocast(device, settings.amp_dtype):
            output = model(images)
        terms = criterion(output, labels)
        total = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()

        flags = torch.stack([(~torch.isfinite(total.detach())).float(),
                             torch.tensor(float(state.stop_requested), device=device)])
        nonfinite, stop = dist.all_reduce_sum(flags).tolist()
        if nonfinite:
            state.nonfinite_in_a_row += 1
            logger.warning("iteration %d: non-finite loss (%s); optimiser step skipped (%d in a row)",
                           state.iteration, {k: float(v.detach()) for k, v in terms.items()},
                           state.nonfinite_in_a_row)
            bad = nonfinite_tensors(model.named_buffers())
            if dist.any_rank(bool(bad), device):
                raise NonFiniteLossError(f"non-finite batch-norm statistics after a non-finite "
                                         f"step (on this rank: {bad[:3]}); resume from the last "
                                         f"checkpoint with a lower TRAIN.LR")
            if state.nonfinite_in_a_row >= settings.max_nonfinite:
                raise NonFiniteLossError(
                    f"{state.nonfinite_in_a_row} non-finite losses in a row at iteration "
                    f"{state.iteration} (TRAIN.MAX_NONFINITE = {settings.max_nonfinite}); "
                    f"no checkpoint was written from this state")
        else:
            optimizer.step()
            state.nonfinite_in_a_row = 0
            detached = torch.stack([t.detach().float() for t in terms.values()] + [total.detach()])
            sums = detached if sums is None else sums + detached
            count += 1
        state.iteration += 1
        window += 1

        if state.iteration % settings.print_freq == 0 and count:
            per_iter = (time.perf_counter() - tic) / window
            _log_progress(list(terms) + ["loss"], (sums / count).tolist(), lr, per_iter,
                          data_time / window, f"{epoch_label} [{step}/{len(loader)}]",
                          images.shape[0], device, schedule, state, writer)
            sums, count, window = None, 0, 0
            tic, data_time = time.perf_counter(), 0.0
        if stop:
            state.stop_agreed = True
            if step < len(loader):  # at the last step the epoch ends normally, with validation
                if save_checkpoint:
                    save_checkpoint()
                return False
        elif save_checkpoint and settings.checkpoint_interval and \
                state.iteration % settings.checkpoint_interval == 0:
            save_checkpoint()
        data_tic = time.perf_counter()
    return True


def _log_progress(names, means, lr, per_iter, data_per_iter, where, batch_size, device, schedule,
                  state, writer):
    remaining = (schedule.total_iters - state.iteration) * per_iter
    images_per_s = batch_size * dist.get_world_size() / per_iter
    terms = " ".join(f"{n} {v:.4f}" for n, v in zip(names, means))
    eta = time.strftime("%H:%M:%S", time.gmtime(remaining)) if remaining < 86400 \
        else f"{remaining / 86400:.1f} days"
    logger.info("%s it %d %s lr %.6f time/it %.3fs data %.3fs %.1f img/s mem %.0fMB eta %s",
                where, state.iteration, terms, lr, per_iter, data_per_iter, images_per_s,
                peak_memory_mb(device)[0], eta)
    if writer is not None:
        for name, value in zip(names, means):
            writer.add_scalar(f"train/{name}", value, state.iteration)
        writer.add_scalar("train/lr", lr, state.iteration)
        writer.add_scalar("train/images_per_s", images_per_s, state.iteration)


@torch.no_grad()
def validate(model, loader, device, num_classes, ignore_label, align_corners, amp_dtype=None,
             condition_of=None, on_first_batch=None):
    """Single-scale, no-flip evaluation; every rank sees its own exact shard of the set.

    Collective: the confusion matrices are all-reduced, so every rank must call it.
    ``condition_of(name)`` groups images (ACDC conditions); ``on_first_batch(images)`` lets the
    caller write image summaries.  Returns the SegEvaluator after the reduction.
    """
    model.eval()
    evaluator = SegEvaluator(num_classes, ignore_label=ignore_label, device=device)
    for i, (images, labels, _, names) in enumerate(loader):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        logits = forward_logits(model, images, flip=False, align_corners=align_corners,
                                amp_dtype=amp_dtype)
        if on_first_batch is not None and i == 0:
            on_first_batch(images)
        preds = logits.argmax(dim=1)
        if condition_of is None:
            evaluator.update(preds, labels)
        else:
            for pred, label, name in zip(preds, labels, names):
                evaluator.update(pred, label, group=condition_of(name))
    evaluator.reduce()
    return evaluator
