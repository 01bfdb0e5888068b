"""The private PyTorch internals this project relies on, in one place.

None has a public equivalent.  All of them exist from torch 2.0 on (the project needs 2.4 or
later) and the test suite runs each of them; when a release changes one, this is the file to
mend.
"""
import torch
import torch.distributed

__all__ = ["unwrap_model", "non_finite_check_", "can_skip_on_device", "step_unless_found_inf",
           "stop_loader_workers", "stop_persistent_workers", "reset_compiled",
           "abort_process_group", "view_base", "compile_counters"]


def unwrap_model(model):
    """The network inside DistributedDataParallel (``module``) and torch.compile (``_orig_mod``)
    wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def non_finite_check_(grads, found_inf):
    """Set the 0-dim ``found_inf`` to 1 where a tensor of ``grads`` (one dtype, one device) holds
    a NaN or infinity, in one multi-tensor pass on the device: GradScaler's own check, with a
    scale of 1.0 that leaves the gradients unchanged."""
    torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, found_inf.new_ones(()))


def can_skip_on_device(optimizer):
    """Whether ``optimizer.step`` reads a ``found_inf`` flag and skips on the device (the fused
    SGD / AdamW, as GradScaler uses them)."""
    return getattr(optimizer, "_step_supports_amp_scaling", False)


def step_unless_found_inf(optimizer, found_inf):
    """``optimizer.step()`` told the 0-dim ``found_inf`` (1 = skip the update) and no scale,
    through the attributes GradScaler sets for such optimisers."""
    optimizer.found_inf, optimizer.grad_scale = found_inf, None
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf, optimizer.grad_scale


def reset_compiled():
    """Forget every graph torch.compile made (between benchmark variants)."""
    torch._dynamo.reset()


def compile_counters():
    """What torch.compile has done in this process so far: ``frames`` compiled (a recompile
    counts again), ``graphs`` made and ``graph_breaks``, from dynamo's counters."""
    from torch._dynamo.utils import counters

    return {"frames": counters["frames"]["ok"], "graphs": counters["stats"]["unique_graphs"],
            "graph_breaks": sum(counters["graph_break"].values())}


def stop_loader_workers(iterator):
    """Stop the worker processes of a DataLoader iterator now (a no-op without workers): what
    the iterator's ``__del__`` runs; DataLoader has no public shutdown."""
    stop = getattr(iterator, "_shutdown_workers", None)
    if stop is not None:
        stop()


def stop_persistent_workers(loader):
    """Stop the persistent workers of ``loader`` (kept in its ``_iterator``), if it started any."""
    if getattr(loader, "_iterator", None) is not None:
        stop_loader_workers(loader._iterator)
        loader._iterator = None


def abort_process_group():
    """Tear the default process group down at once, without waiting for the other ranks and
    without finishing the collectives in flight (NCCL's destroy may wait for them): torch's
    private ``_abort_process_group``; releases without it fall back to the public
    ``destroy_process_group``."""
    abort = getattr(torch.distributed.distributed_c10d, "_abort_process_group", None)
    if abort is None:
        torch.distributed.destroy_process_group()
        return
    abort()


def view_base(tensor):
    """The tensor that ``tensor`` is a view of (autograd's ``_base``), or ``tensor`` itself."""
    return tensor if tensor._base is None else tensor._base
