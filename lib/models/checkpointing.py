"""Activation checkpointing: a segment of a network keeps only its inputs during the forward and
runs again in the backward to rebuild what its gradients need, trading compute for memory.

``recomputed(fn, *args, enabled=...)`` runs ``fn(*args)`` through
``torch.utils.checkpoint.checkpoint`` (non-reentrant) when ``enabled`` and grad is on, and plainly
otherwise, so evaluation, ``torch.no_grad`` / ``inference_mode`` and export run the same code as
without checkpointing.  The networks take ``GradCheckpointing`` as a mixin:
``set_grad_checkpointing(enable)`` (timm's name) switches it, off by default; it holds no tensor,
so state-dict keys are unchanged.

Exactness:

- batch norm: a recomputed batch norm in training mode would update its running statistics (and
  ``num_batches_tracked``) a second time.  During the recompute every batch norm that runs gets
  scratch copies of its running statistics for the call, which are then dropped: the recompute
  runs the very same kernel on the very same inputs as the forward (so its output is bit-equal),
  and the real statistics move once per forward.  SyncBatchNorm is a batch norm like the others.
- dropout: the checkpoint restores the RNG state of the forward before the recompute
  (``preserve_rng_state``), so the recompute draws the same masks.
- under ``torch.compile`` the compiler recomputes inside one graph whose buffer updates happen
  once, so the batch-norm guard (a Python hook that the compiler does not trace) is left out.
"""
import contextlib
from contextvars import ContextVar

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from ..utils.memory import saved_tensor_bytes

__all__ = ["GradCheckpointing", "recomputed", "segment_sizes"]


def _is_tracked_batch_norm(module):
    return (isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training
            and module.track_running_stats)


_STATS = ("running_mean", "running_var", "num_batches_tracked")


@contextlib.contextmanager
def _batch_norms_on_scratch_stats():
    """Every batch norm that runs inside updates copies of its running statistics, not them.

    The real buffers are put back on leaving, also when the checkpoint stops the recompute early
    (it raises once it has rebuilt what the backward needs)."""
    swapped = []

    def scratch(module, args):
        if _is_tracked_batch_norm(module):
            real = {name: getattr(module, name) for name in _STATS}
            swapped.append((module, real))
            for name, buffer in real.items():
                if buffer is not None:  # assigning a tensor to a buffer's name replaces it
                    setattr(module, name, buffer.clone())

    handle = nn.modules.module.register_module_forward_pre_hook(scratch)
    try:
        yield
    finally:
        handle.remove()
        for module, buffers in reversed(swapped):
            for name, buffer in buffers.items():
                setattr(module, name, buffer)


def _contexts():
    return contextlib.nullcontext(), _batch_norms_on_scratch_stats()


def _flattened(fn, args):
    """``(run, flat)``: ``run(*flat)`` is ``fn(*args)`` with the lists in ``args`` spread out.

    The checkpoint keeps its positional tensors through autograd's saved-tensor hooks, tensors
    inside lists only by reference: spread out, every kept input is seen by those hooks (by
    ``lib.utils.memory.saved_tensor_bytes``, by ``save_on_cpu``).
    """
    lengths = [len(a) if isinstance(a, list) else None for a in args]
    flat = [t for a, n in zip(args, lengths) for t in (a if n is not None else [a])]

    def run(*flat):
        rebuilt, i = [], 0
        for n in lengths:
            rebuilt.append(list(flat[i:i + n]) if n is not None else flat[i])
            i += 1 if n is None else n
        return fn(*rebuilt)
    return run, flat


# ``(sizes, exclude)`` of the active ``segment_sizes``, else None.
_segment_sizes: ContextVar[tuple | None] = ContextVar("segment_sizes", default=None)


@contextlib.contextmanager
def segment_sizes(exclude=()):
    """``with segment_sizes(params) as sizes:`` run a forward with checkpointing on; ``sizes``
    then holds, for every segment that would have been recomputed, the ``SavedBytes`` it saves
    for backward when it runs plainly (``lib.utils.memory.saved_tensor_bytes``, ``exclude`` left
    out, copies of it counted apart).  The segments run plainly meanwhile: the largest of them
    is what one recompute holds in the backward, on top of what the checkpointed forward kept."""
    sizes = []
    token = _segment_sizes.set((sizes, list(exclude)))
    try:
        yield sizes
    finally:
        _segment_sizes.reset(token)


def recomputed(fn, *args, enabled: bool):
    """``fn(*args)``; when ``enabled`` and grad is on, its intermediate tensors are not kept but
    recomputed in the backward (non-reentrant checkpoint), with batch-norm statistics updated once
    and dropout masks drawn again identically.  ``args``: tensors or lists of tensors."""
    if not (enabled and torch.is_grad_enabled()):
        return fn(*args)
    probe = _segment_sizes.get()
    if probe is not None:
        sizes, exclude = probe
        out, size = saved_tensor_bytes(lambda: fn(*args), exclude=exclude)
        sizes.append(size)
        return out
    run, flat = _flattened(fn, args)
    if torch.compiler.is_compiling():
        return checkpoint(run, *flat, use_reentrant=False)
    return checkpoint(run, *flat, use_reentrant=False, context_fn=_contexts)


class GradCheckpointing:
    """Mixin for an ``nn.Module`` network: ``set_grad_checkpointing`` and ``checkpointed``."""

    grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the segments the network marks (``checkpointed``) in the backward instead of
        storing their activations, in this module and every ``GradCheckpointing`` inside it.
        Acts only on modules in training mode with grad enabled."""
        for module in self.modules():
            if isinstance(module, GradCheckpointing):
                module.grad_checkpointing = bool(enable)

    def checkpointed(self, module: nn.Module, *args, fn=None):
        """``(fn or module)(*args)`` as one recomputed segment when checkpointing is on and
        ``module`` (the segment, or the part of it whose mode decides) is in training mode."""
        return recomputed(module if fn is None else fn, *args,
                          enabled=self.grad_checkpointing and module.training)
