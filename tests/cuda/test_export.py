"""The Python API and the ONNX export of a network on the device, against the CPU."""
import numpy as np
import pytest
import torch

from lib.evaluation.predictor import Predictor
from lib.models import build_model
from lib.models.export import check, check_sizes, export
from tests.cuda.helpers import classes_differ_at_near_ties

pytestmark = pytest.mark.cuda


def weights_file(cfg, folder):
    torch.manual_seed(0)
    path = folder / "weights.pth"
    torch.save(build_model(cfg, load_pretrained=False).state_dict(), path)
    return str(path)


@pytest.mark.parametrize("network", ["offset", "ovenet_ocr"])
def test_the_predictor_on_the_device_agrees_with_the_cpu(target, network, tmp_path, full_fp32,
                                                         record_property):
    height, width = target.sizes.small
    cfg = target.cfg(network, "TEST.BASE_SIZE", width, "TEST.IMAGE_SIZE", f"[{width},{height}]")
    model_file = weights_file(cfg, tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    got, expected = (Predictor(cfg, model_file, device=device)(image, return_scores=True)
                     for device in (target.device, "cpu"))
    assert got.labels.shape == (height, width) and got.scores.dtype == np.float32
    flipped = classes_differ_at_near_ties(torch.from_numpy(got.scores)[None],
                                          torch.from_numpy(expected.scores)[None])
    record_property("pixels whose class differs (near ties)", flipped)
    assert np.abs(got.offsets - expected.offsets).max() < 1e-3  # input pixels
    assert np.abs(got.confidence - expected.confidence).max() < 1e-4


@pytest.mark.parametrize("network", ["offset", "ovenet_ocr"])
def test_an_onnx_file_of_a_network_on_the_device_agrees_with_onnxruntime(
        target, network, tmp_path, full_fp32, record_property):
    pytest.importorskip("onnxruntime")
    cfg = target.cfg(network)
    torch.manual_seed(0)
    model = build_model(cfg, load_pretrained=False).to(target.device).eval()
    path = str(tmp_path / "model.onnx")
    size = target.sizes.small
    assert export(model, path, "onnx", size) == ["logits", "offsets", "confidence"]
    differences = check(model, path, "onnx", check_sizes(size))
    record_property("largest differences from onnxruntime (CPU), of the largest magnitude", {
        f"{h}x{w}": {name: f"{d.largest:.1e} of {d.magnitude:.2g}" for name, d in found.items()}
        for (h, w), found in differences})
    assert all(d.passes() for _, found in differences for d in found.values())
