"""What the CUDA tests run on: the W48 recipes at their real sizes on a CUDA device, or, with
--cuda-dry-run (``tools/gpu_check.py --dry-run``), the same recipes with tiny widths and images
on the CPU, so that a machine without a GPU runs every line of these tests."""
import json
import os
from dataclasses import dataclass

import pytest
import torch

from lib.config import load_cfg
from lib.engine.build import build_step_parts
from tests.helpers import ROOT
from tools.gpu_check import NETWORKS, REAL, RESULTS_ENV, TINY, TINY_OPTS


@dataclass(frozen=True)
class Target:
    """The device and sizes of a run of the CUDA tests."""

    device: torch.device
    dry_run: bool

    @property
    def sizes(self):
        return TINY if self.dry_run else REAL

    def cfg(self, network, *opts):
        """The W48 recipe of ``network`` (a key of ``NETWORKS``) at the training crop, tiny in
        a dry run, with ``opts`` (KEY VALUE strings) on top."""
        height, width = self.sizes.crop
        shrink = TINY_OPTS if self.dry_run else []
        return load_cfg(f"{ROOT}/{NETWORKS[network]}", [
            *shrink, "TRAIN.IMAGE_SIZE", f"[{width},{height}]",
            "TRAIN.BATCH_SIZE_PER_GPU", str(self.sizes.batch), *map(str, opts)])

    def parts(self, cfg, world_size=1, seed=0):
        """The step parts of ``cfg`` on the device, as training builds them, from ``seed``."""
        torch.manual_seed(seed)
        return build_step_parts(cfg, self.device, world_size=world_size, load_pretrained=False)

    def batch(self, cfg, n=None, hw=None, seed=0):
        """``(images n x 3 x H x W, labels n x H x W)`` on the device: random images, labels
        of blocks of classes (32 x 32 pixels at the real sizes) with 10% ignored."""
        n = n or self.sizes.batch
        height, width = hw or self.sizes.crop
        g = torch.Generator().manual_seed(seed)
        images = torch.randn(n, 3, height, width, generator=g)
        block = 4 if self.dry_run else 32
        coarse = torch.randint(0, cfg.DATASET.NUM_CLASSES, (n, 1, -(-height // block),
                                                             -(-width // block)), generator=g)
        labels = coarse.repeat_interleave(block, 2).repeat_interleave(block, 3)[:, 0, :height,
                                                                                 :width]
        labels = labels.masked_fill(torch.rand(labels.shape, generator=g) < 0.1,
                                    cfg.TRAIN.IGNORE_LABEL)
        return images.to(self.device), labels.to(self.device)

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def peak_bytes(self):
        """``torch.cuda.max_memory_allocated`` since the last ``reset_peak``; None on the CPU."""
        return torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" \
            else None

    def reset_peak(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def tolerance(self, dtype=None):
        """Largest ``relative_difference`` of two computations that should agree up to the
        rounding of ``dtype`` (None: fp32, which is TF32 in cuDNN's convolutions on CUDA)."""
        if dtype is not None:
            return 5e-2
        return 1e-2 if self.device.type == "cuda" else 1e-4


@pytest.fixture(scope="session")
def target(request):
    if request.config.getoption("--cuda-dry-run"):
        return Target(torch.device("cpu"), dry_run=True)
    return Target(torch.device("cuda", torch.cuda.current_device()), dry_run=False)


@pytest.fixture(autouse=True)
def free_device_memory(target):
    """Each test starts with the memory of the ones before it freed and the peak reset."""
    yield
    target.reset_peak()


@pytest.fixture
def full_fp32():
    """fp32 arithmetic on the device: TF32 would round the products' inputs to 10 bits."""
    convolutions, products = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    yield
    torch.backends.cudnn.allow_tf32 = convolutions
    torch.set_float32_matmul_precision(products)


def _record(line):
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line, default=str) + "\n")


def pytest_collection_finish(session):
    """Where tools/gpu_check.py asks for it (GPU_CHECK_RESULTS), the id of every test that
    runs, as JSON lines."""
    for item in session.items:
        _record({"nodeid": item.nodeid, "when": "collected"})


def pytest_runtest_logreport(report):
    """Where tools/gpu_check.py asks for it (GPU_CHECK_RESULTS), each phase of each test as a
    JSON line: its outcome, time, recorded figures and the end of its failure."""
    if report.when != "call" and report.outcome == "passed":
        return
    message = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        message = report.longrepr[2]
    elif report.failed:
        message = "\n".join(report.longreprtext.splitlines()[-30:])
    _record({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
             "duration": report.duration, "properties": dict(report.user_properties),
             "message": message})
