"""The device a process computes on, chosen once (by the tools) and passed down."""
import torch

from .errors import RunError

__all__ = ["select_device", "describe_memory"]


def select_device(choice: str | None = None, local_rank: int = 0) -> torch.device:
    """``choice`` None: ``cuda:<local_rank>`` when CUDA is available, else the CPU.  "cpu",
    "cuda" (= ``cuda:<local_rank>``) or "cuda:N" choose; CUDA without a CUDA device is an error.
    A CUDA device also becomes the current one (what NCCL and ``torch.cuda`` calls use)."""
    device = torch.device(choice) if choice else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise RunError(f"device {choice!r}: CUDA is not available on this machine")
    device = torch.device("cuda", local_rank if device.index is None else device.index)
    torch.cuda.set_device(device)
    return device


def describe_memory(device) -> str:
    """``"cuda:0 (NVIDIA H200, 139.8 GiB total, 120.5 GiB peak allocated)"``: the device, its
    name and memory (``torch.cuda.get_device_properties``) and the most this process's tensors
    have held on it since the start or the last peak reset; ``"device cpu"`` elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"device {device.type}"
    index = torch.cuda.current_device() if device.index is None else device.index
    props = torch.cuda.get_device_properties(index)
    peak = torch.cuda.max_memory_allocated(index)
    return (f"cuda:{index} ({props.name}, {props.total_memory / 2 ** 30:.1f} GiB total, "
            f"{peak / 2 ** 30:.1f} GiB peak allocated)")
