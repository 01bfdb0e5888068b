"""Fixtures shared by the whole suite: tiny network configurations, a tiny synthetic dataset
and a trained tiny network (made once per session)."""
import os

import pytest
import torch

from tests.helpers import OFFSET_CFG, latest_run, run_tool, small_opts, tiny_cfg

CUDA_SKIP = ("needs a CUDA device: tools/gpu_check.py runs these on a GPU, and "
             "--cuda-dry-run runs them on the CPU at tiny sizes")


def pytest_addoption(parser):
    parser.addoption("--cuda-dry-run", action="store_true",
                     help="run the tests marked cuda on the CPU with tiny networks and images "
                          "(what tools/gpu_check.py --dry-run does)")


def pytest_collection_modifyitems(config, items):
    """Without a CUDA device the tests marked cuda are skipped, unless --cuda-dry-run."""
    if torch.cuda.is_available() or config.getoption("--cuda-dry-run"):
        return
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(pytest.mark.skip(reason=CUDA_SKIP))


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


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    run_tool(["tools/make_synthetic_dataset.py", "--root", str(root), "--dataset", "cityscapes",
              "--train", "8", "--val", "4", "--test", "2", "--size", "64", "128", "--seed", "3"])
    return str(root)


@pytest.fixture(scope="session")
def trained_run(synthetic_root, tmp_path_factory):
    """(config path, overrides, output folder) of a finished one-epoch run of the offset network."""
    out = str(tmp_path_factory.mktemp("trained"))
    # With loader workers (persistent for training): the run must also exit cleanly with them.
    opts = small_opts(synthetic_root, out, epochs=1, WORKERS=1)
    run_tool(["tools/train.py", "--cfg", OFFSET_CFG, *opts], timeout=180)
    return OFFSET_CFG, opts, os.path.realpath(latest_run(out))
