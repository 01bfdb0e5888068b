"""lib.utils.profiling: the CPU's peak memory is reset between the rows of a benchmark."""
import os

import pytest
import torch

from lib.utils.profiling import device_name, peak_memory_mb, reset_memory

CPU = torch.device("cpu")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux only")
def test_the_cpu_peak_is_that_of_the_row_not_of_the_whole_process():
    reset_memory(CPU)
    big = torch.ones(256 * 2 ** 20 // 4)  # 256 MiB, written, so resident
    with_big, kind = peak_memory_mb(CPU)
    del big
    reset_memory(CPU)
    without, _ = peak_memory_mb(CPU)
    assert with_big - without > 200, (with_big, without)
    assert kind == "process peak RSS since the last reset (VmHWM)"


def test_the_meta_device_is_not_named_after_the_cpu():
    assert device_name(torch.device("meta")).startswith("meta device")
    assert device_name(CPU).startswith("CPU ")
