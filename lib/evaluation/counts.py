"""Fixed-size counts on the tensors' device, with no host synchronisation."""
import torch

__all__ = ["count_bins"]


def count_bins(index: torch.Tensor, valid: torch.Tensor, size: int) -> torch.Tensor:
    """int64 counts (length ``size``) of the values of ``index`` at the ``valid`` entries.

    index: integer tensor, any shape, values in [0, size) where valid; valid: bool, same shape.
    ``torch.bincount`` would read the input's maximum back to the host on CUDA, and boolean
    indexing would too, so invalid entries go to one extra bin that is dropped.
    """
    if index.shape != valid.shape:
        raise ValueError(f"index shape {tuple(index.shape)} != valid shape {tuple(valid.shape)}")
    index = torch.where(valid, index.long(), size).flatten()
    counts = torch.zeros(size + 1, dtype=torch.int64, device=index.device)
    counts.scatter_add_(0, index, torch.ones_like(index))
    return counts[:-1]
