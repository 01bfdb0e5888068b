"""Fixtures shared by the whole suite: tiny network configurations."""
import pytest
import torch

from lib.config import get_cfg


def tiny_cfg(name="branched_seg_hrnet", offset_branch=4, stage4_modules=1, num_classes=5):
    """A mutable config of a very small HRNet (widths 8-64, one block per branch)."""
    cfg = get_cfg()
    cfg.MODEL.NAME = name
    cfg.DATASET.NUM_CLASSES = num_classes
    extra = cfg.MODEL.EXTRA
    extra.OFFSET_BRANCH = offset_branch
    extra.STAGE1.NUM_BLOCKS, extra.STAGE1.NUM_CHANNELS = [1], [8]
    widths = [8, 16, 32, 64]
    for k in (2, 3, 4):
        for suffix in ("", "_2"):
            stage = extra[f"STAGE{k}{suffix}"]
            stage.NUM_MODULES = 1
            stage.NUM_BLOCKS = [1] * k
            stage.NUM_CHANNELS = widths[:k]
    extra.STAGE4.NUM_MODULES = stage4_modules
    return cfg


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """In-process work uses one thread, as the tools started by the tests do (OMP_NUM_THREADS=1):
    the same kernels give the same logits, and two threads on two shared cores are many times
    slower while a tool runs beside them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_tiny_cfg():
    return tiny_cfg
