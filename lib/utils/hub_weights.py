"""Weight files from the model hubs: timm's HRNet state dicts and the Hugging Face hub's
``model.safetensors``.

timm's ``hrnet_w48`` and ``hrnet_w48_ssld`` (the Paddle SSLD ImageNet weights) keep the module
names of the official HRNet classification code: the stem ``conv1 bn1 conv2 bn2`` (timm's
``act1``/``act2`` hold no tensors), ``layer1``, ``transition1..3``, ``stage2..4`` with
``branches`` and ``fuse_layers`` (its resize layers hold no tensors either), then the
classification head ``incre_modules``, ``downsamp_modules``, ``final_layer`` and ``classifier``
(SSLD's head convolutions have no bias).  Their state dicts therefore need no renaming: every one
of the 1,830 trunk tensors of HRNetV2-W48 keeps its key, and the head is left out as for the
official ImageNet file (tests/utils/test_hub_weights.py checks this against the installed timm).

One difference is in the architecture, not in the names: timm's fusion upsamples lower
branches with nearest-neighbour resizing, as the official classification network does, whereas
the segmentation trunk resizes bilinearly, as the official segmentation network does.  Both kinds
of ImageNet weights are therefore used exactly as HRNetV2 uses the official file.
"""
from collections import OrderedDict

import torch
from safetensors.torch import load_file

from .checkpoint import CheckpointError

__all__ = ["read_safetensors"]


def read_safetensors(path: str) -> "OrderedDict[str, torch.Tensor]":
    """The tensors of a ``.safetensors`` file (e.g. the hub's ``model.safetensors``), on the CPU.

    safetensors files hold tensors only, so reading one runs no code, on every torch version.
    Raises CheckpointError naming the file when it is not in the format.
    """
    try:
        return OrderedDict(load_file(path, device="cpu"))
    except Exception as e:  # the reader raises its own error types and OSError
        raise CheckpointError(f"cannot read weight file {path}: {e}") from e
