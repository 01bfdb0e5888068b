"""Export a network to ONNX or TorchScript, and check the file against PyTorch.

The exported graph takes a normalised image batch N x 3 x H x W (RGB, ``(x / 255 - mean) / std``
with the network's ``input_normalization``; any N, H, W) and returns plain tensors, named so in
the ONNX file:

    logits      N x K x H/4 x W/4  final class logits (S_f for the offset network, else S_i)
    offsets     N x 2 x H/4 x W/4  offset field (x, y) in normalised align_corners=True units of
                                   the logit map: d pixels of that map along x are d * 2 / (w - 1)
                                   (offset network only)
    confidence  N x 1 x H/4 x W/4  confidence F in [0, 1] (offset network only)

(H/4 is rounded as the stride-2 convolutions round it.)  Resizing to the image, flipping and
multi-scale testing stay outside the graph (``lib.evaluation.protocols`` does them in PyTorch).

The file carries the normalisation its input needs (:func:`exported_normalization` reads it
back): the ONNX model's metadata ``mean`` and ``std`` (JSON lists of RGB values in [0, 1],
``onnxruntime``'s ``get_modelmeta().custom_metadata_map``), the TorchScript archive's extra file
``normalization.json`` ({"mean": [...], "std": [...]}).

Both formats are traced from the network in eval mode: the seed grid of the offset network is
computed from the traced map size, so one file serves every input size.  ONNX uses the
TorchScript-based exporter (``dynamo=False``), which needs no package beyond onnx; grid_sample
needs opset 16 or later.

The check (:func:`check`) runs the file and the network on one random image and accepts an
output when its largest difference from PyTorch is at most ``ATOL + RTOL * m``, ``m`` being the
output's largest magnitude in PyTorch (``max |y|``): torch.testing's ``atol + rtol * |y|``, with
the magnitude of the whole output rather than of each element, because fp32 rounding in a deep
network scales with the magnitudes it sums, not with the value it happens to reach at a pixel.
Two fp32 runtimes (kernels, summation orders) round differently, and the network amplifies the
difference: it grows in proportion to the output's magnitude, with the depth of the network,
and with the image size, while the width matters little (see :data:`RTOL`).  A wrong export (a
layer's weights, a resize mode, the colour order of the input) differs by a sizeable fraction
of the output and fails the check.
"""
import importlib.util
import inspect
import io
import json
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..utils.atomic import write_bytes
from ..utils.compat import unwrap_model
from ..utils.normalization import ImageNormalization
from . import input_normalization

__all__ = ["FORMATS", "OPSET", "OUTPUT_NAMES", "NORMALIZATION_FILE", "RTOL", "ATOL",
           "OutputDifference", "TensorOutputs", "export", "exported_normalization", "load_exported",
           "max_differences", "check_sizes", "check"]

FORMATS = ("onnx", "torchscript")
OPSET = 17
OUTPUT_NAMES = ("logits", "offsets", "confidence")
# Where a TorchScript archive keeps the input normalisation (ONNX: metadata "mean" and "std").
NORMALIZATION_FILE = "normalization.json"
# The check's tolerance: an output may differ from PyTorch by ATOL + RTOL * its largest magnitude.
# Measured on the CPU (docs/deployment.md: onnxruntime against PyTorch, both fp32, weights with
# logits of a trained network's scale), the difference relative to the magnitude ranges from 4e-6
# (HRNetV2-W18-small-v1 at 128x256) to 3.5e-4 (OVeNet-OCR-W48 at 1024x2048), and other W48
# weights reached 1.3e-3 at 512x1024: RTOL leaves a margin of about 3 over that carried to
# 1024x2048, while a wrong export changes an output by several percent of its magnitude.
# ATOL only matters for an output that is all but zero.
RTOL = 1e-2
ATOL = 1e-5


@dataclass(frozen=True)
class OutputDifference:
    """How far one output of an exported file is from the network's: ``largest`` =
    max |exported - PyTorch|, ``magnitude`` = max |PyTorch| (same units as the output)."""

    largest: float
    magnitude: float

    def allowed(self, rtol: float = RTOL, atol: float = ATOL) -> float:
        """The largest difference the check accepts for this output: ``atol + rtol * magnitude``."""
        return atol + rtol * self.magnitude

    def passes(self, rtol: float = RTOL, atol: float = ATOL) -> bool:
        return self.largest <= self.allowed(rtol, atol)


class TensorOutputs(nn.Module):
    """``model`` with a tuple of tensors for output: (final logits,) or (final logits, offsets,
    confidence), the fields of ``SegOutput`` an exported graph returns."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = unwrap_model(model)
        self.normalization = input_normalization(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(image)
        if output.offsets is None:
            return (output.final,)
        return output.final, output.offsets, output.confidence


def _ignore_tracing_warnings():
    """Warnings that tracing this network always gives and that change nothing here: the
    deprecation notices of torch.jit.trace / save and of the TorchScript-based ONNX exporter,
    and the tracer's notes on Python values (map sizes, recorded as graph operations)."""
    warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.(trace(_method)?|save)` is deprecated")
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")


def export(model: nn.Module, path: str, fmt: str, size_hw: tuple[int, int],
           opset: int = OPSET) -> list[str]:
    """Write ``model`` (on any device: it is traced where its weights are) traced at
    1 x 3 x ``size_hw`` to ``path``; returns the output names.  ``fmt`` is "onnx" (dynamic N,
    H, W) or "torchscript".

    The file is serialised in memory and written whole or not at all (``lib.utils.atomic``): a
    full disk raises ``FileWriteError`` naming ``path`` and leaves what was there (the
    exporters' own writers leave a partial file, or abort the process naming no file)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if fmt == "onnx" and opset < 16:
        raise ValueError(f"ONNX opset {opset} has no grid_sample: use 16 or later")
    wrapper = TensorOutputs(model).eval()
    normalization = {"mean": list(wrapper.normalization.mean),
                     "std": list(wrapper.normalization.std)}
    example = torch.zeros(1, 3, *size_hw, device=_device_of(wrapper))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        _ignore_tracing_warnings()
        names = list(OUTPUT_NAMES[:len(wrapper(example))])
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(wrapper, example, check_trace=False), buffer,
                           _extra_files={NORMALIZATION_FILE: json.dumps(normalization)})
        else:
            _export_onnx(wrapper, example, buffer, names, opset)
            buffer = io.BytesIO(_with_metadata(buffer.getvalue(), normalization))
    write_bytes(path, buffer.getbuffer())
    return names


def _with_metadata(onnx_bytes, metadata):
    """The serialised ONNX model ``onnx_bytes`` with ``metadata`` (values as JSON) added to its
    metadata_props."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    return proto.SerializeToString()


def exported_normalization(path: str, fmt: str) -> ImageNormalization:
    """The input normalisation that an exported file says its input needs (see the module's
    docstring); a file without it (written by an earlier release) raises ValueError."""
    if fmt == "onnx":
        import onnx

        found = {p.key: json.loads(p.value)
                 for p in onnx.load(path, load_external_data=False).metadata_props
                 if p.key in ("mean", "std")}
    elif fmt == "torchscript":  # a zip archive: <name>/extra/normalization.json
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f"/extra/{NORMALIZATION_FILE}")]
            found = json.loads(archive.read(names[0])) if names else {}
    else:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if "mean" not in found or "std" not in found:
        raise ValueError(f"{path} does not say how its input is normalised (no mean and std): "
                         f"export it again with tools/export.py")
    return ImageNormalization(mean=tuple(found["mean"]), std=tuple(found["std"]))


def _device_of(module):
    return next(module.parameters()).device


def _export_onnx(wrapper, example, file, names, opset):
    if importlib.util.find_spec("onnx") is None:
        raise ImportError("exporting to ONNX needs the onnx package: "
                          "pip install -r requirements-export.txt")
    axes = {"image": {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 2: "height_4", 3: "width_4"} for name in names})
    kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(wrapper, (example,), file, input_names=["image"], output_names=names,
                      dynamic_axes=axes, opset_version=opset, do_constant_folding=True, **kwargs)


def load_exported(path: str, fmt: str):
    """A function from an N x 3 x H x W float32 NumPy batch to the exported file's outputs
    (a list of NumPy arrays): onnxruntime on the CPU for ONNX, torch.jit.load for TorchScript."""
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError:
            raise ImportError("checking an ONNX file needs onnxruntime: "
                              "pip install -r requirements-export.txt") from None
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda batch: session.run(None, {"image": batch})
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated")
            module = torch.jit.load(path, map_location="cpu").eval()

        def run(batch):
            with torch.no_grad():
                return [t.numpy() for t in module(torch.from_numpy(batch))]
        return run
    raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")


def max_differences(model: nn.Module, run_exported, size_hw: tuple[int, int],
                    seed: int = 0) -> dict[str, OutputDifference]:
    """{output name: its :class:`OutputDifference`} between ``model`` (PyTorch on its device,
    fp32) and ``run_exported`` (``load_exported``, on the CPU) on one random N(0, 1) image
    1 x 3 x ``size_hw``."""
    wrapper = TensorOutputs(model).eval()
    image = torch.randn(1, 3, *size_hw, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = [t.cpu() for t in wrapper(image.to(_device_of(wrapper)))]
    got = run_exported(image.numpy())
    if len(got) != len(expected):
        raise ValueError(f"the exported file returns {len(got)} outputs, the network "
                         f"{len(expected)}")
    differences = {}
    for name, want, have in zip(OUTPUT_NAMES, expected, got):
        if tuple(want.shape) != tuple(have.shape):
            raise ValueError(f"output {name}: the exported file gives shape {tuple(have.shape)}, "
                             f"the network {tuple(want.shape)}")
        want = want.numpy()
        differences[name] = OutputDifference(float(np.abs(want - have).max()),
                                             float(np.abs(want).max()))
    return differences


def check_sizes(size_hw: tuple[int, int]) -> list[tuple[int, int]]:
    """The input sizes an export is checked at: its own and half of it (rounded up), so that a
    size fixed in the graph by mistake shows."""
    height, width = size_hw
    return [(height, width), (-(-height // 2), -(-width // 2))]


def check(model: nn.Module, path: str, fmt: str, sizes: list[tuple[int, int]]
          ) -> list[tuple[tuple[int, int], dict[str, OutputDifference]]]:
    """``max_differences`` of the exported file at ``path`` at each of ``sizes``; the file
    passes when every difference ``passes()`` (:data:`RTOL`, :data:`ATOL`)."""
    run = load_exported(path, fmt)
    return [(size, max_differences(model, run, size)) for size in sizes]
