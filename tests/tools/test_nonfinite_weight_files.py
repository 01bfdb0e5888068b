"""A weight file holding NaN or infinite values is refused, naming the file and the first such
tensor, wherever weights are loaded to be used: tools/test.py, the Predictor and tools/infer.py,
tools/export.py (resume: tests/engine/test_checkpointer.py)."""
import glob
import os

import pytest
import torch

from lib.config import load_cfg
from lib.evaluation.predictor import Predictor
from lib.models import CheckpointError, build_model
from tests.helpers import OFFSET_CFG, small_opts
from tools import export as export_tool
from tools import infer as infer_tool
from tools import test as test_tool

BAD = "last_layer.3.weight"


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory):
    """A complete weight file of the quick-start network with two NaNs and an infinity in BAD."""
    state = build_model(load_cfg(OFFSET_CFG, []), load_pretrained=False).state_dict()
    state[BAD].view(-1)[:3] = torch.tensor([float("nan"), float("inf"), float("nan")])
    path = str(tmp_path_factory.mktemp("weights") / "diverged.pth")
    torch.save(state, path)
    return path


def _refused(error, path):
    message = str(error.value)
    assert path in message and f"{BAD} has 3 NaN or infinite values" in message, message


def test_the_predictor_refuses_nonfinite_weights(bad_file):
    with pytest.raises(CheckpointError) as error:
        Predictor(load_cfg(OFFSET_CFG, []), model_file=bad_file, device="cpu")
    _refused(error, bad_file)


def test_tools_test_refuses_nonfinite_weights(bad_file, synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the tool leaves torch's threads alone then
    opts = small_opts(synthetic_root, str(tmp_path), **{"TEST.MODEL_FILE": bad_file})
    with pytest.raises(CheckpointError) as error:
        test_tool.main(["--cfg", OFFSET_CFG, *opts])
    _refused(error, bad_file)
    assert not glob.glob(str(tmp_path / "output" / "**" / "results.json"), recursive=True)


def test_tools_infer_refuses_nonfinite_weights(bad_file, synthetic_root, tmp_path):
    image = glob.glob(os.path.join(synthetic_root, "cityscapes", "leftImg8bit", "val", "*",
                                   "*.png"))[0]
    with pytest.raises(CheckpointError) as error:
        infer_tool.main(["--cfg", OFFSET_CFG, "--input", image, "--output", str(tmp_path / "out"),
                         "TEST.MODEL_FILE", bad_file])
    _refused(error, bad_file)
    assert not (tmp_path / "out").exists()


def test_tools_export_refuses_nonfinite_weights(bad_file, tmp_path):
    output = tmp_path / "net.torchscript"
    with pytest.raises(CheckpointError) as error:
        export_tool.main(["--cfg", OFFSET_CFG, "--format", "torchscript", "--output", str(output),
                          "TEST.MODEL_FILE", bad_file])
    _refused(error, bad_file)
    assert not output.exists()
