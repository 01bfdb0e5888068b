"""lib.models.export: ONNX files run by onnxruntime and TorchScript files agree with the PyTorch network
at several input sizes from one file; names, shapes and errors."""
import numpy as np
import pytest
import torch
from torch import nn

from lib.models import build_model
from lib.models.export import OUTPUT_NAMES, TensorOutputs, check_sizes, export, max_differences
from tests.helpers import tiny_cfg

TOLERANCE = 1e-3
SIZES = [(64, 96), (40, 136)]  # trace size, and another size and aspect


def _randomise(model, seed=0):
    """Weights that make every output vary: He-initialised convs, random BN statistics, and an
    offset head scaled so that tanh(raw offsets) is not saturated."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                    * (2.0 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                for tensor, low, high in ((module.running_mean, -0.2, 0.2),
                                          (module.running_var, 0.5, 2.0),
                                          (module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator)
                                 * (high - low) + low)
        if hasattr(model, "offset_layer"):
            model.offset_layer[3].weight.mul_(0.05)
    return model.eval()


@pytest.fixture(scope="module")
def offset_network():
    return _randomise(build_model(tiny_cfg(), load_pretrained=False))


def _images(size, batch=2, seed=1):
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def _pytorch(model, images):
    with torch.no_grad():
        output = model(images)
    return [output.final, output.offsets, output.confidence]


def _onnx_packages():
    """onnx and onnxruntime, optional (requirements-export.txt; the CI command installs them)."""
    return pytest.importorskip("onnx"), pytest.importorskip("onnxruntime")


def test_one_onnx_file_agrees_with_pytorch_at_two_sizes(offset_network, tmp_path):
    onnx, onnxruntime = _onnx_packages()
    path = str(tmp_path / "net.onnx")
    assert export(offset_network, path, "onnx", SIZES[0]) == list(OUTPUT_NAMES)
    graph = onnx.load(path)
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 16
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]  # N, 3, H, W
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    for size in SIZES:
        images = _images(size)
        expected = _pytorch(offset_network, images)
        got = session.run(None, {"image": images.numpy()})
        for name, want, have in zip(OUTPUT_NAMES, expected, got, strict=True):
            assert have.shape == tuple(want.shape), (name, size)
            assert np.abs(have - want.numpy()).max() < TOLERANCE, (name, size)
    offsets, confidence = expected[1], expected[2]
    # The check means something: offsets spread inside the threshold, confidence not constant.
    assert 0.05 < offsets.abs().max() < 0.5 and offsets.std() > 0.01
    assert confidence.std() > 0.01


def test_torchscript_file_agrees_with_pytorch_at_two_sizes(offset_network, tmp_path):
    path = str(tmp_path / "net.pt")
    export(offset_network, path, "torchscript", SIZES[0])
    module = torch.jit.load(path)
    for size in SIZES:
        images = _images(size)
        with torch.no_grad():
            got = module(images)
        for want, have in zip(_pytorch(offset_network, images), got, strict=True):
            assert (have - want).abs().max() < TOLERANCE


def test_baseline_network_exports_its_logits_alone(tmp_path):
    _, onnxruntime = _onnx_packages()
    model = _randomise(build_model(tiny_cfg("seg_hrnet"), load_pretrained=False))
    path = str(tmp_path / "baseline.onnx")
    assert export(model, path, "onnx", (32, 64)) == ["logits"]
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    images = _images((48, 80), batch=1)
    (got,) = session.run(None, {"image": images.numpy()})
    with torch.no_grad():
        want = model(images).logits
    assert got.shape == (1, 5, 12, 20)
    assert np.abs(got - want.numpy()).max() < TOLERANCE


def test_wrapper_returns_final_logits_offsets_and_confidence(offset_network):
    images = _images((32, 32), batch=1)
    with torch.no_grad():
        output = offset_network(images)
        outputs = TensorOutputs(offset_network)(images)
    assert len(outputs) == 3
    for have, want in zip(outputs, (output.fused_logits, output.offsets, output.confidence)):
        assert torch.equal(have, want)


def test_max_differences_reports_a_changed_output(offset_network):
    def perturbed(batch):
        outputs = [t.numpy() for t in _pytorch(offset_network, torch.from_numpy(batch))]
        outputs[2] = outputs[2] + 0.25
        return outputs
    differences = max_differences(offset_network, perturbed, (32, 48))
    assert differences["logits"] == differences["offsets"] == 0.0
    assert differences["confidence"] == pytest.approx(0.25, abs=1e-6)


def test_check_sizes_are_the_trace_size_and_half_of_it_rounded_up():
    assert check_sizes((1024, 2048)) == [(1024, 2048), (512, 1024)]
    assert check_sizes((65, 127)) == [(65, 127), (33, 64)]


def test_opset_without_grid_sample_and_unknown_format_are_errors(offset_network, tmp_path):
    with pytest.raises(ValueError, match="opset 15"):
        export(offset_network, str(tmp_path / "x.onnx"), "onnx", (32, 32), opset=15)
    with pytest.raises(ValueError, match="'tflite'"):
        export(offset_network, str(tmp_path / "x"), "tflite", (32, 32))
