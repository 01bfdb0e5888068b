"""Fixed-size counts on the tensors' device, with no host synchronisation."""
import torch

__all__ = ["count_bins"]


def count_bins(index: torch.Tensor, size: int) -> torch.Tensor:
    """int64 counts (length ``size``) of the values of ``index`` (integer, any shape, in
    [0, size)).

    ``torch.bincount`` would read the input's maximum back to the host on CUDA, and boolean
    indexing would too; callers leave out entries by sending them to trailing bins they drop.
    """
    index = index.flatten().long()
    counts = torch.zeros(size, dtype=torch.int64, device=index.device)
    return counts.scatter_add_(0, index, torch.ones_like(index))
