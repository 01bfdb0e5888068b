"""One training step, shared by the Trainer and ``tools/benchmark.py --mode train``."""
from dataclasses import dataclass

import torch

from ..utils.compat import can_skip_on_device, non_finite_check_, step_unless_found_inf
from ..utils.precision import autocast


@dataclass(frozen=True)
class StepOutput:
    """What a step leaves on the device; reading any of it is a host synchronisation."""

    terms: dict  # name -> detached 0-dim loss term of this rank
    total: torch.Tensor  # detached 0-dim sum of the terms
    nonfinite: torch.Tensor  # 0-dim bool: this rank's loss is NaN or infinite
    skipped: torch.Tensor  # 0-dim float, 1.0 when the update was skipped (on every rank)


def train_step(model, criterion, optimizer, scaler, images, labels, amp_dtype=None):
    """Forward (autocast in ``amp_dtype``), criterion terms, backward and the update, with no
    host synchronisation.

    ``images`` N x 3 x H x W, ``labels`` N x H x W train ids.  ``scaler`` is a
    ``torch.amp.GradScaler``, enabled for float16 only.  The update is skipped on the device
    when a gradient is not finite; ``optimizer`` must be a fused one (``build_optimizer``).
    """
    with autocast(images.device, amp_dtype):
        output = model(images)
    terms = criterion(output, labels)
    total = sum(terms.values())
    nonfinite = ~torch.isfinite(total.detach())
    optimizer.zero_grad(set_to_none=True)
    # A non-finite loss turns every gradient into NaN (0 * NaN is NaN), even where its own
    # gradient happens to be finite; after DDP's all-reduce every rank then sees it and skips the
    # same update, without an extra collective.
    poison = torch.where(nonfinite, float("nan"), 1.0)
    scaler.scale(total * poison).backward()
    skipped = step_unless_nonfinite(optimizer, scaler)
    detached = {name: term.detach() for name, term in terms.items()}
    return StepOutput(detached, total.detach(), nonfinite, skipped)


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
