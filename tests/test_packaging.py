"""The project installs as a package under its own name, ``ovenet`` (pyproject.toml maps it to lib/):
a wheel claims no generic top-level name, serves the Predictor from any folder beside another
project's ``lib``, and runs the Python API example of docs/deployment.md as written."""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from lib.config import load_cfg
from lib.models import build_model
from tests.helpers import BASELINE_CFG, ROOT

PREDICT = """
import importlib.util, json, sys
import numpy as np
import lib  # the other project's
from ovenet.config import load_cfg
from ovenet.evaluation.predictor import Predictor
import ovenet

cfg = load_cfg(sys.argv[1], ["TEST.BASE_SIZE", "64"])
result = Predictor(cfg, model_file=sys.argv[2], device="cpu")(np.zeros((32, 64, 3), np.uint8))
site = sys.argv[3]
loaded = {m.split(".")[0] for m, mod in list(sys.modules.items())
          if (getattr(mod, "__file__", None) or "").startswith(site)}
print(json.dumps({"lib": lib.__file__, "ovenet": ovenet.__file__,
                  "shape": list(result.labels.shape), "loaded_from_site": sorted(loaded),
                  "tools": importlib.util.find_spec("tools") is not None}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A wheel built from a copy of the sources (the build leaves nothing in the checkout),
    installed into ``site``, and ``other``: a project with a top-level ``lib`` of its own."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("lib", "tools"):
        shutil.copytree(os.path.join(ROOT, name), source / name, ignore=ignore)
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    wheel, = (tmp / "dist").glob("*.whl")
    site = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    other = tmp / "other"
    (other / "lib").mkdir(parents=True)
    (other / "lib" / "__init__.py").write_text("")
    (other / "lib" / "config.py").write_text("OTHER_PROJECT = True\n")  # no load_cfg
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=os.pathsep.join([str(other), str(site)]), OMP_NUM_THREADS="1")
    return SimpleNamespace(wheel=wheel, site=site, other=other, env=env)


def _run(args, cwd, env):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_wheel_holds_every_package_of_lib_as_ovenet_and_no_other_top_level_name(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"ovenet", "ovenet-1.0.0.dist-info"}
    packages = {os.path.dirname(n) for n in names if n.endswith("/__init__.py")}
    lib_packages = {os.path.relpath(folder, ROOT).replace("lib", "ovenet", 1)
                    for folder, _, files in os.walk(os.path.join(ROOT, "lib"))
                    if "__init__.py" in files}
    assert packages == lib_packages


def test_the_installed_predictor_works_from_another_folder_beside_another_lib(installed,
                                                                              tmp_path):
    weights = tmp_path / "weights.pth"
    torch.save(build_model(load_cfg(BASELINE_CFG), load_pretrained=False).state_dict(), weights)
    out = _run(["-c", PREDICT, BASELINE_CFG, str(weights), str(installed.site)], tmp_path,
               installed.env)
    found = json.loads(out)
    assert found["lib"] == str(installed.other / "lib" / "__init__.py")
    assert found["ovenet"] == str(installed.site / "ovenet" / "__init__.py")
    assert found["shape"] == [32, 64]
    assert found["loaded_from_site"] == ["ovenet"] and not found["tools"]


def _python_api_block():
    guide = open(os.path.join(ROOT, "docs", "deployment.md")).read()
    section = guide[guide.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_python_api_example_of_the_deployment_guide_runs_as_written(installed, tmp_path):
    code = _python_api_block()
    # The files it names, made where it expects them: its experiment file, weights for that
    # network, and an image the size of the synthetic set's.
    paths = re.findall(r'"((?:experiments|output|data)/[^"]+)"', code)
    cfg_path = next(p for p in paths if p.endswith(".yaml"))
    assert {os.path.splitext(p)[1] for p in paths} == {".yaml", ".pth", ".png"}, paths
    for path in paths:
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(".yaml"):
            shutil.copy(os.path.join(ROOT, path), target)
        elif path.endswith(".pth"):
            model = build_model(load_cfg(os.path.join(ROOT, cfg_path)), load_pretrained=False)
            torch.save(model.state_dict(), target)
        else:
            image = np.random.default_rng(0).integers(0, 256, (128, 256, 3), dtype=np.uint8)
            assert cv2.imwrite(str(target), image)
    _run(["-c", code + "\nassert scores.shape == (19, 128, 256) and result.labels.shape == "
                       "(128, 256)\n"], tmp_path, installed.env)


def test_one_process_cannot_import_the_folder_under_both_names():
    import lib  # noqa: F401  (imported as lib here, as by the tools)

    spec = importlib.util.spec_from_file_location(
        "ovenet", os.path.join(ROOT, "lib", "__init__.py"),
        submodule_search_locations=[os.path.join(ROOT, "lib")])
    with pytest.raises(ImportError, match="already imported as 'lib'"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert "ovenet" not in sys.modules
