"""A tiny synthetic dataset and a trained tiny network, made once for the tool tests."""
import os

import pytest

from tests.tools.helpers import OFFSET_CFG, run_tool, small_opts


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
    folder = os.path.join(out, "output", "cityscapes", os.path.splitext(os.path.basename(OFFSET_CFG))[0])
    return OFFSET_CFG, opts, folder
