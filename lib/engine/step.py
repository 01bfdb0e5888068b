"""One training step, shared by the Trainer and ``tools/benchmark.py --mode train``, and the
parts it runs (``StepParts``)."""
import contextlib
from dataclasses import dataclass

import torch

from ..utils.compat import can_skip_on_device, non_finite_check_, step_unless_found_inf
from ..utils.precision import autocast


@dataclass
class StepParts:
    """What one training step needs: the network as it is trained (SyncBN, channels-last, DDP
    and compile applied), the bare network inside it, the loss, the optimiser, the loss scaler,
    the autocast dtype (None = fp32), whether the inputs go channels-last, and the device."""

    model: torch.nn.Module
    network: torch.nn.Module
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    channels_last: bool
    device: torch.device

    def inputs(self, images, labels):
        """``(images, labels)`` on the device as the step takes them: images N x 3 x H x W
        channels-last when the network is, labels N x H x W (copies that do not wait for the
        host when the batch is in pinned memory)."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels

    def run(self, images, labels, accumulate_steps=1) -> "StepOutput":
        """``train_step`` of these parts on ``images`` and ``labels`` (see ``inputs``)."""
        return train_step(self.model, self.criterion, self.optimizer, self.scaler, images,
                          labels, self.amp_dtype, accumulate_steps)


@dataclass(frozen=True)
class StepOutput:
    """What a step leaves on the device; reading any of it is a host synchronisation."""

    terms: dict  # name -> detached 0-dim loss term of this rank
    total: torch.Tensor  # detached 0-dim sum of the terms
    nonfinite: torch.Tensor  # 0-dim bool: this rank's loss is NaN or infinite
    skipped: torch.Tensor  # 0-dim float, 1.0 when the update was skipped (on every rank)


def train_step(model, criterion, optimizer, scaler, images, labels, amp_dtype=None,
               accumulate_steps=1):
    """Forward (autocast in ``amp_dtype``), criterion terms, backward and the update, with no
    host synchronisation.

    ``images`` N x 3 x H x W, ``labels`` N x H x W train ids.  ``scaler`` is a
    ``torch.amp.GradScaler``, enabled for float16 only.  The update is skipped on the device
    when a gradient is not finite; ``optimizer`` must be a fused one (``build_optimizer``).

    ``accumulate_steps`` k (TRAIN.ACCUMULATE_STEPS) splits the batch into k micro-batches of
    N / k, each with its own forward, terms and backward of loss / k, and makes one update of
    the summed gradients: the mean of the micro-batches' gradients, as DDP's are the mean of
    the ranks', so k micro-batches of B on one process train as k processes of B do (batch
    norm, OHEM's kept pixels and the reference confidence loss see a micro-batch, as they see
    one process's batch).  Under DDP the gradients are all-reduced once, in the last
    micro-batch's backward.  A non-finite loss in any micro-batch skips the whole update; the
    terms returned are the means over the micro-batches.
    """
    if images.shape[0] % accumulate_steps:
        raise ValueError(f"a batch of {images.shape[0]} images does not split into "
                         f"TRAIN.ACCUMULATE_STEPS = {accumulate_steps} equal micro-batches")
    optimizer.zero_grad(set_to_none=True)
    terms, nonfinite = {}, None
    for index, (x, y) in enumerate(_micro_batches(images, labels, accumulate_steps)):
        last = index == accumulate_steps - 1
        with contextlib.nullcontext() if last else _no_gradient_sync(model):
            micro_terms, bad = _forward_backward(model, criterion, scaler, x, y, amp_dtype,
                                                 accumulate_steps)
        nonfinite = bad if nonfinite is None else nonfinite | bad
        for name, term in micro_terms.items():
            terms[name] = term if name not in terms else terms[name] + term
    if accumulate_steps > 1:
        terms = {name: term / accumulate_steps for name, term in terms.items()}
    skipped = step_unless_nonfinite(optimizer, scaler)
    return StepOutput(terms, sum(terms.values()), nonfinite, skipped)


def _micro_batches(images, labels, k):
    if k == 1:
        return [(images, labels)]
    size = images.shape[0] // k
    return list(zip(images.split(size), labels.split(size), strict=True))


def _no_gradient_sync(model):
    """DDP's ``no_sync()`` of ``model`` or of the DDP module inside its torch.compile wrapper
    (the gradients accumulate locally until a backward outside it); a no-op without DDP."""
    while not isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = getattr(model, "_orig_mod", None)
        if model is None:
            return contextlib.nullcontext()
    return model.no_sync()


def forward_loss(model, criterion, images, labels, amp_dtype=None):
    """The loss terms of ``model`` on ``images`` (the forward under autocast in ``amp_dtype``,
    the criterion outside it: losses in fp32); a dict of 0-dim tensors with their graph."""
    with autocast(images.device, amp_dtype):
        output = model(images)
    return criterion(output, labels)


def _forward_backward(model, criterion, scaler, images, labels, amp_dtype, accumulate_steps):
    """Forward, terms and backward of one micro-batch; returns ``(detached terms, 0-dim bool
    non-finite flag)``.  The backward adds the gradients of loss / ``accumulate_steps``."""
    terms = forward_loss(model, criterion, images, labels, amp_dtype)
    total = sum(terms.values())
    nonfinite = ~torch.isfinite(total.detach())
    # A non-finite loss turns every gradient into NaN (0 * NaN is NaN), even where its own
    # gradient happens to be finite; NaN stays NaN through the sums of later micro-batches and
    # DDP's all-reduce, so every rank then sees it and skips the same update, without an extra
    # collective.
    poison = torch.where(nonfinite, float("nan"), 1.0)
    loss = total * poison
    if accumulate_steps > 1:
        loss = loss / accumulate_steps
    scaler.scale(loss).backward()
    return {name: term.detach() for name, term in terms.items()}, nonfinite


def step_unless_nonfinite(optimizer, scaler):
    """``optimizer.step()`` that does nothing, on the device, when a gradient is NaN or infinite.

    Returns that 0-dim flag (float, 1.0 = skipped).  The fused optimisers read it as
    ``found_inf``, the same contract ``GradScaler.step`` uses; for float16 the gradients are
    unscaled first and the scaler's scale is updated after.
    """
    if not can_skip_on_device(optimizer):
        raise TypeError(f"{type(optimizer).__name__} cannot skip a step on the device; "
                        f"build it with fused=True (lib.engine.schedule.build_optimizer)")
    scaler.unscale_(optimizer)
    by_dtype = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
    found_inf = torch.zeros((), device=next(iter(by_dtype.values()))[0].device)
    for grads in by_dtype.values():
        non_finite_check_(grads, found_inf)  # one multi-tensor pass per dtype
    step_unless_found_inf(optimizer, found_inf)
    scaler.update()
    return found_inf
