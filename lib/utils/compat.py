"""The private PyTorch internals this project relies on, in one place.

Each has no public equivalent; all were checked against torch 2.4 to 2.14.  When a release
changes one of them, this is the file to mend.
"""
import torch

__all__ = ["unwrap_model", "non_finite_check_", "stop_loader_workers", "stop_persistent_workers"]


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
