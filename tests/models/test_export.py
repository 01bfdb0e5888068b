"""lib.models.export: ONNX files run by onnxruntime and TorchScript files agree with the PyTorch network
at several input sizes from one file; the default check passes them and fails wrong exports;
names, shapes and errors."""
import copy
import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.models import build_model
from lib.models.export import (
    ATOL,
    OUTPUT_NAMES,
    OutputDifference,
    TensorOutputs,
    check,
    check_sizes,
    export,
    exported_normalization,
    max_differences,
)
from lib.utils.normalization import IMAGENET, ImageNormalization
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


def test_max_differences_reports_a_changed_output_and_each_outputs_magnitude(offset_network):
    def perturbed(batch):
        outputs = [t.numpy() for t in _pytorch(offset_network, torch.from_numpy(batch))]
        outputs[2] = outputs[2] + 0.25
        return outputs
    differences = max_differences(offset_network, perturbed, (32, 48))
    assert differences["logits"].largest == differences["offsets"].largest == 0.0
    assert differences["confidence"].largest == pytest.approx(0.25, abs=1e-6)
    image = torch.randn(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    for name, output in zip(OUTPUT_NAMES, _pytorch(offset_network, image), strict=True):
        assert differences[name].magnitude == pytest.approx(float(output.abs().max()))
    assert not differences["confidence"].passes() and differences["logits"].passes()


def test_the_accepted_difference_is_atol_plus_rtol_times_the_magnitude():
    difference = OutputDifference(largest=0.021, magnitude=2.0)
    assert difference.allowed(rtol=0.01, atol=0.001) == pytest.approx(0.021)
    assert difference.passes(rtol=0.01, atol=0.001)
    assert not difference.passes(rtol=0.01, atol=0.0009)
    assert OutputDifference(largest=ATOL, magnitude=0.0).passes()  # an output that is all zero


def _check_passes(model, path, fmt, size):
    """Whether every output at ``size`` and half of it passes the default check."""
    return all(d.passes() for _, found in check(model, path, fmt, check_sizes(size))
               for d in found.values())


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_real_export_of_a_tiny_network_passes_the_default_check(offset_network, tmp_path, fmt):
    if fmt == "onnx":
        _onnx_packages()
    path = str(tmp_path / f"net.{fmt}")
    export(offset_network, path, fmt, SIZES[0])
    assert _check_passes(offset_network, path, fmt, SIZES[0])


def _nearest_resizing(model, monkeypatch):
    """F.interpolate resizes to the nearest pixel whatever the network asks (the fusion's and
    the head's bilinear upsampling)."""
    interpolate = F.interpolate

    def nearest(x, size=None, scale_factor=None, mode="nearest", align_corners=None, **kwargs):
        return interpolate(x, size=size, scale_factor=scale_factor, mode="nearest")
    monkeypatch.setattr(F, "interpolate", nearest)


def _bgr_input(model, monkeypatch):
    """The first convolution reads the channels in BGR order."""
    with torch.no_grad():
        model.conv1.weight.copy_(model.conv1.weight.flip(1))


def _one_batch_norm_unset(model, monkeypatch):
    """One batch norm of the last stage exported with its initial statistics (mean 0, variance 1)."""
    norms = [m for name, m in model.named_modules()
             if name.startswith("stage4") and isinstance(m, nn.BatchNorm2d)]
    norms[len(norms) // 2].reset_running_stats()


@pytest.mark.parametrize("mistake", [_nearest_resizing, _bgr_input, _one_batch_norm_unset],
                         ids=["nearest resizing", "BGR input", "one batch norm unset"])
def test_a_wrong_export_fails_the_default_check(offset_network, tmp_path, monkeypatch, mistake):
    _onnx_packages()
    wrong = copy.deepcopy(offset_network)
    mistake(wrong, monkeypatch)
    path = str(tmp_path / "wrong.onnx")
    export(wrong, path, "onnx", SIZES[0])
    monkeypatch.undo()
    assert not _check_passes(offset_network, path, "onnx", SIZES[0])


def test_check_sizes_are_the_trace_size_and_half_of_it_rounded_up():
    assert check_sizes((1024, 2048)) == [(1024, 2048), (512, 1024)]
    assert check_sizes((65, 127)) == [(65, 127), (33, 64)]


def test_opset_without_grid_sample_and_unknown_format_are_errors(offset_network, tmp_path):
    with pytest.raises(ValueError, match="opset 15"):
        export(offset_network, str(tmp_path / "x.onnx"), "onnx", (32, 32), opset=15)
    with pytest.raises(ValueError, match="'tflite'"):
        export(offset_network, str(tmp_path / "x"), "tflite", (32, 32))


OTHER = ImageNormalization(mean=(0.5, 0.25, 0.0), std=(0.5, 2.0, 1.0))


def test_an_onnx_file_says_how_its_input_is_normalised(tmp_path):
    onnx, onnxruntime = _onnx_packages()
    model = build_model(tiny_cfg("seg_hrnet"), load_pretrained=False).eval()
    model.normalization = OTHER  # a network that takes other statistics says so
    path = str(tmp_path / "net.onnx")
    export(model, path, "onnx", (32, 32))
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["mean"]) == [0.5, 0.25, 0.0]
    assert json.loads(metadata["std"]) == [0.5, 2.0, 1.0]
    assert exported_normalization(path, "onnx") == OTHER
    # A file without them (an earlier release's) is named.
    proto = onnx.load(path)
    del proto.metadata_props[:]
    onnx.save(proto, path)
    with pytest.raises(ValueError, match="net.onnx does not say how its input is normalised"):
        exported_normalization(path, "onnx")


def test_a_torchscript_file_says_how_its_input_is_normalised(tmp_path):
    model = build_model(tiny_cfg("seg_hrnet"), load_pretrained=False).eval()
    path = str(tmp_path / "net.pt")
    export(model, path, "torchscript", (32, 32))
    extra = {"normalization.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(path, _extra_files=extra)
    assert json.loads(extra["normalization.json"]) == {"mean": [0.485, 0.456, 0.406],
                                                       "std": [0.229, 0.224, 0.225]}
    assert exported_normalization(path, "torchscript") == IMAGENET
