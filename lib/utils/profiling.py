"""Measurements the training log reports: FLOPs of a call and peak memory.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: it counts matrix products and
convolutions (forward and backward) as 2 x multiply-accumulates; element-wise ops, batch norm,
interpolation, grid_sample and reductions count 0.
"""
import resource
import sys

import torch


def count_flops(fn):
    """FLOPs of one call of ``fn()`` (matmul/conv as 2 x MACs, see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def peak_memory_mb(device):
    """``(MB, what it is)``: CUDA peak allocated since the last reset, or on the CPU the process's
    peak resident set size (``getrusage``), a high-water mark since the process started."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20, "CUDA max allocated"
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
    scale = 2 ** 20 if sys.platform == "darwin" else 2 ** 10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / scale, "process peak RSS since start"
