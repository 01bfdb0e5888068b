"""lib.utils.profiling: the CPU's peak memory is reset between the rows of a benchmark; calls
and the stages of an iteration are timed with the device waited for."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from lib.utils import profiling
from lib.utils.profiling import cuda_peak_bytes, device_name, time_interleaved, time_stages
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


@pytest.fixture
def clock(monkeypatch):
    """A hand-driven ``time.perf_counter`` for lib.utils.profiling: ``clock.now`` seconds."""
    fake = SimpleNamespace(now=0.0)
    fake.perf_counter = lambda: fake.now
    monkeypatch.setattr(profiling, "time", fake)
    return fake


def test_stages_are_timed_apart_with_the_device_waited_for_after_each(clock):
    # Each stage takes its own time; the device finishes the queued work in 1 ms at every
    # sync(): the wait after a stage counts for it, the wait before it does not.
    def work(seconds, value):
        clock.now += seconds
        return value

    def device_sync():
        clock.now += 0.001

    def iteration(stage):
        x = stage("first", work, 0.002, 3)
        stage("second", work, 0.010 * x, None)  # uses the first stage's result

    seconds = time_stages(iteration, iters=2, warmup=1, sync=device_sync)
    assert list(seconds) == ["first", "second"]
    assert seconds["first"] == pytest.approx([0.003, 0.003])  # the warm-up left out
    assert seconds["second"] == pytest.approx([0.031, 0.031])


def test_interleaved_calls_are_timed_each_with_the_wait_after_it(clock):
    def work(seconds):
        return lambda: setattr(clock, "now", clock.now + seconds)

    def device_sync():
        clock.now += 0.001

    fast, slow = time_interleaved([work(0.002), work(0.005)], iters=3, warmup=2,
                                  sync=device_sync)
    assert fast == pytest.approx([0.003] * 3) and slow == pytest.approx([0.006] * 3)


def test_the_cuda_peak_is_none_off_cuda():
    assert cuda_peak_bytes(torch.device("cpu")) is None
    assert cuda_peak_bytes(torch.device("meta")) is None
