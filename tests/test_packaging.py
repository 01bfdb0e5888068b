"""The project installs as a package (pyproject.toml): the Python API works from any folder."""
import os
import shutil
import subprocess
import sys

import torch

from lib.config import load_cfg
from lib.models import build_model
from tests.tools.helpers import BASELINE_CFG, ROOT

SCRIPT = """
import sys
import numpy as np
import lib, tools.infer
from lib.config import load_cfg
from lib.evaluation import Predictor

cfg = load_cfg(sys.argv[1], ["TEST.BASE_SIZE", "64"])
result = Predictor(cfg, model_file=sys.argv[2], device="cpu")(np.zeros((32, 64, 3), np.uint8))
print(lib.__file__, tools.infer.__file__, tuple(result.labels.shape))
"""


def test_an_installed_copy_serves_the_predictor_from_another_folder(tmp_path):
    # Build from a copy of the sources, so that the build leaves nothing in the checkout.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("lib", "tools"):
        shutil.copytree(os.path.join(ROOT, name), source / name, ignore=ignore)
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(source)],
                   check=True, capture_output=True, timeout=300)

    weights = tmp_path / "weights.pth"
    torch.save(build_model(load_cfg(BASELINE_CFG), load_pretrained=False).state_dict(), weights)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, BASELINE_CFG, str(weights)],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lib_file, tools_file, shape = proc.stdout.split(maxsplit=2)
    assert lib_file.startswith(str(site)) and tools_file.startswith(str(site))
    assert shape.strip() == "(32, 64)"
