"""The measurement kit: FLOPs of a call, peak memory, timing of calls (alone, interleaved or as
stages of one iteration), peak FLOP/s of known GPUs, device names and versions, Markdown tables.
The training log, ``lib.engine.memory_use`` and the benchmark (``lib.engine.benchmark``) use it.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: it counts matrix products and
convolutions (forward and backward) as 2 x multiply-accumulates; element-wise ops, batch norm,
interpolation, grid_sample and reductions count 0.
"""
import gc
import platform
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn as nn


def count_flops(fn):
    """FLOPs of one call of ``fn()`` (matmul/conv as 2 x MACs, see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


# Linux keeps the process's peak resident set size as VmHWM in /proc/self/status and resets it
# to the current size when "5" is written to /proc/self/clear_refs (Linux 4.0 on).
_STATUS, _CLEAR_REFS = "/proc/self/status", "/proc/self/clear_refs"
# Whether reset_memory has reset the CPU peak in this process.
_rss_peak_reset = False


def _rss_peak_kib():
    """VmHWM in KiB, or None where /proc does not give it."""
    try:
        with open(_STATUS) as f:
            line = next((line for line in f if line.startswith("VmHWM:")), None)
    except OSError:
        return None
    return None if line is None else int(line.split()[1])


def synchronize(device):
    """Wait until ``device`` has done the work queued on it (CUDA); nothing elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cuda_peak_bytes(device):
    """CUDA's peak allocated bytes since the last ``reset_memory``, once the queued work is
    done; None off CUDA."""
    if device.type != "cuda":
        return None
    synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def peak_memory_mb(device):
    """``(MB, what it is)``: CUDA peak allocated since the last reset, or on the CPU (and the
    meta device) the process's peak resident set size: since the last ``reset_memory`` where
    Linux allows resetting it, else since the process started (``getrusage``)."""
    if device.type == "cuda":
        return cuda_peak_bytes(device) / 2 ** 20, "CUDA max allocated"
    peak = _rss_peak_kib()
    if peak is not None and _rss_peak_reset:
        return peak / 2 ** 10, "process peak RSS since the last reset (VmHWM)"
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
    scale = 2 ** 20 if sys.platform == "darwin" else 2 ** 10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / scale, "process peak RSS since start (never reset)"


# Timing conventions: times are measured with ``time.perf_counter`` around each call, after
# ``sync()`` on both sides (``torch.cuda.synchronize`` on CUDA), and reported in milliseconds.
# Peak FLOP/s of known GPUs are dense (no sparsity) figures of NVIDIA's data sheets:
# (device-name pattern, dense TFLOP/s per precision); the first match wins, so specific names
# come before general ones.  H200 has the H100 SXM tensor cores (same clocks, more memory).
PEAK_TFLOPS = (
    (r"H100.*(PCIe|NVL)", {"bf16": 756.0, "tf32": 378.0, "fp32": 51.2}),
    (r"H200|H100", {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    (r"\bL4\b", {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3}),
)
PEAK_SOURCE = "NVIDIA data sheet, dense"


@dataclass(frozen=True)
class Timing:
    """Summary of per-call times, milliseconds: mean, median and 90th percentile (nearest rank)."""

    mean: float
    median: float
    p90: float

    @classmethod
    def of(cls, seconds):
        ms = sorted(s * 1e3 for s in seconds)
        if not ms:
            raise ValueError("no timed calls")
        p90 = ms[max(0, -(-9 * len(ms) // 10) - 1)]
        return cls(statistics.fmean(ms), statistics.median(ms), p90)


def precision_of(device, amp):
    """Arithmetic the convolutions run in: "bf16" under autocast; for fp32 on CUDA "tf32" when
    cuDNN may use TF32 (PyTorch's default for convolutions, which dominate these networks)."""
    if amp:
        return "bf16"
    if device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "fp32"


def peak_tflops(device_name, precision, override=None):
    """``(peak TFLOP/s or None, where it comes from)`` for ``device_name`` in ``precision``.

    ``override`` (the user's ``--peak-tflops``) wins; then the first matching row of
    ``PEAK_TFLOPS``; otherwise the peak is unknown.
    """
    if override is not None:
        return float(override), "--peak-tflops"
    for pattern, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name) and precision in peaks:
            return peaks[precision], f"{PEAK_SOURCE} {precision} ({pattern!r})"
    return None, "unknown (give --peak-tflops)"


def time_calls(fn, iters, warmup, sync):
    """Call ``fn()`` ``warmup`` times untimed, then ``iters`` times; per-call seconds."""
    return time_interleaved([fn], iters, warmup, sync)[0]


def time_interleaved(fns, iters, warmup, sync):
    """``time_calls`` of several functions called in turn within each iteration, so that all of
    them meet the same load of a shared machine; one list of per-call seconds per function."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    seconds = [[] for _ in fns]
    for _ in range(iters):
        for fn, times in zip(fns, seconds, strict=True):
            timed_call(sync, times, fn)
    return seconds


def time_stages(iteration, iters, warmup, sync):
    """Per-stage seconds of ``iteration(stage)``, called ``warmup`` times untimed, then
    ``iters`` times: ``{stage name: [seconds of each timed iteration]}``, in the order the
    stages first ran.

    ``iteration`` runs its stages, each a call whose result the next ones may use, as
    ``stage(name, fn, *args, **kwargs)``, which returns ``fn(*args, **kwargs)``; each stage runs
    once per iteration.
    """
    seconds = {}

    def untimed(_name, fn, *args, **kwargs):
        return timed_call(sync, None, fn, *args, **kwargs)

    def timed(name, fn, *args, **kwargs):
        return timed_call(sync, seconds.setdefault(name, []), fn, *args, **kwargs)

    for _ in range(warmup):
        iteration(untimed)
    for _ in range(iters):
        iteration(timed)
    return seconds


def timed_call(sync, seconds, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` between two ``sync()``; its seconds are appended to the list
    ``seconds`` (None: not kept)."""
    sync()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    sync()
    if seconds is not None:
        seconds.append(time.perf_counter() - start)
    return out


@dataclass(frozen=True)
class CallProfile:
    """What one call ran: ``kernels`` launched on the GPU (None off CUDA), and for each operator
    asked for, its ``calls`` (outermost only) and their time in ms (``op_ms``: the time of the
    kernels they launched on CUDA, CPU time elsewhere)."""

    kernels: int | None
    calls: dict
    op_ms: dict


def profile_call(fn, device, ops=()):
    """``CallProfile`` of one call of ``fn()`` under ``torch.profiler`` (an extra call: the
    profiler slows it down, so time it apart).  ``ops``: operator names such as
    ``"aten::kthvalue"``."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        fn()
        synchronize(device)
    events = prof.events()
    kernels = None
    if device.type == "cuda":
        kernels = sum(1 for e in events if e.device_type == DeviceType.CUDA
                      and not e.name.startswith(("Memcpy", "Memset")))
    calls, op_ms = {}, {}
    for op in ops:
        # an operator may call itself (its out= variant): count the outermost calls only
        outer = [e for e in events if e.name == op and (e.cpu_parent is None or
                                                        e.cpu_parent.name != op)]
        calls[op] = len(outer)
        op_ms[op] = sum(_device_time_us(e) if device.type == "cuda" else e.cpu_time_total
                        for e in outer) / 1e3
    return CallProfile(kernels, calls, op_ms)


def _device_time_us(event):
    # device_time_total from torch 2.4 on; cuda_time_total before
    total = getattr(event, "device_time_total", None)
    return event.cuda_time_total if total is None else total


def reset_memory(device):
    """Free what earlier runs left (the caller drops its references first); reset the peak that
    ``peak_memory_mb`` reads: CUDA's, or the process's peak resident set size where Linux
    allows it."""
    global _rss_peak_reset
    gc.collect()
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        _rss_peak_reset = True
    except OSError:
        pass  # not Linux, or not allowed: the peak stays the one since the start


class ShapeRecorder(nn.Module):
    """Calls ``model`` unchanged and appends the shape of every input to ``shapes``.

    Wrapping a network in it during one inference run gives the exact list of forward inputs
    that the run performs, without restating the inference logic.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.model(x)


def markdown_table(headers, rows):
    """A Markdown table with columns padded to equal width; cells are strings."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "meta":
        return "meta device (shapes and dtypes only, no arithmetic and no memory)"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {model} ({torch.get_num_threads()} torch threads)"


def versions():
    try:
        import torchvision
        vision = torchvision.__version__
    except ImportError:
        vision = "not installed"
    return (f"torch {torch.__version__}, torchvision {vision}, "
            f"cuDNN {torch.backends.cudnn.version()}, Python {platform.python_version()}")
