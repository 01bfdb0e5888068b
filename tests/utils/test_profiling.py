"""lib.utils.profiling: the CPU's peak memory is reset between the rows of a benchmark."""
import os
import subprocess
import sys

import pytest
import torch

from lib.utils.profiling import device_name
from tests.helpers import ROOT

CPU = torch.device("cpu")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux only")
def test_the_cpu_peak_is_that_of_the_row_not_of_the_whole_process():
    # In a fresh process: a long test session keeps freed memory resident, which hides the
    # 256 MiB this measures.
    code = (
        "import torch\n"
        "from lib.utils.profiling import peak_memory_mb, reset_memory\n"
        "cpu = torch.device('cpu')\n"
        "reset_memory(cpu)\n"
        "big = torch.ones(256 * 2 ** 20 // 4)\n"
        "with_big, kind = peak_memory_mb(cpu)\n"
        "del big\n"
        "reset_memory(cpu)\n"
        "without, _ = peak_memory_mb(cpu)\n"
        "print(with_big, without, kind, sep='|')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip().split("|")
    with_big, without, kind = float(out[0]), float(out[1]), out[2]
    assert with_big - without > 200, (with_big, without)
    assert kind == "process peak RSS since the last reset (VmHWM)"


def test_the_meta_device_is_not_named_after_the_cpu():
    assert device_name(torch.device("meta")).startswith("meta device")
    assert device_name(CPU).startswith("CPU ")
