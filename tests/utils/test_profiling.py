"""lib.utils.profiling: the CPU's peak memory is reset between the rows of a benchmark; calls
and the stages of an iteration are timed with the device waited for; FLOPs, peak FLOP/s, timing
summaries and Markdown tables."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from lib.utils import profiling
from lib.utils.profiling import (
    Timing,
    count_flops,
    cuda_peak_bytes,
    device_name,
    markdown_table,
    peak_tflops,
    time_interleaved,
    time_stages,
)
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


def test_flop_counter_counts_a_convolution_as_two_flops_per_multiply_accumulate():
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert count_flops(lambda: conv(torch.zeros(1, 3, 8, 8))) == 2 * (4 * 3 * 3 * 3) * 8 * 8


def test_peak_table_matches_device_names_and_the_override_wins():
    assert peak_tflops("NVIDIA H200", "bf16")[0] == 989.4
    assert peak_tflops("NVIDIA H100 80GB HBM3", "tf32")[0] == 494.7
    assert peak_tflops("NVIDIA H100 PCIe", "bf16")[0] == 756.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "fp32")[0] == 19.5
    assert peak_tflops("NVIDIA L40S", "bf16")[0] is None  # "L4" must not match L40S
    assert peak_tflops("CPU AMD EPYC", "fp32") == (None, "unknown (give --peak-tflops)")
    assert peak_tflops("NVIDIA H200", "bf16", override=100) == (100.0, "--peak-tflops")


def test_timing_gives_mean_median_and_nearest_rank_p90_in_ms():
    timing = Timing.of([0.010, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009])
    assert timing.mean == pytest.approx(5.5)
    assert timing.median == pytest.approx(5.5)
    assert timing.p90 == pytest.approx(9.0)


def test_markdown_table_pads_columns_and_right_aligns():
    assert markdown_table(["a", "bb"], [["1", "2"], ["333", "4"]]).splitlines() == [
        "|   a | bb |", "|----:|---:|", "|   1 |  2 |", "| 333 |  4 |"]


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
