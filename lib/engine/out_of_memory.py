"""Out of device memory: one error that says what ran out of memory and what to change.

A CUDA ``torch.OutOfMemoryError`` in a training step, in validation or in a test run becomes an
``OutOfMemoryRunError`` whose message names the network, the input and batch, the precision,
the device with its total and peak allocated memory, and the settings that make the run fit.
Nothing is saved from the failed step: the error leaves the loop before any checkpoint.
"""
import contextlib
from dataclasses import dataclass

import torch

from ..config import amp_dtype_of
from ..utils.compat import unwrap_model
from ..utils.device import describe_memory
from ..utils.errors import RunError

__all__ = ["OutOfMemoryRunError", "OutOfMemoryMessage", "InputWatch", "explain_out_of_memory"]


class OutOfMemoryRunError(RunError):
    """The device ran out of memory; the message says what ran and what to change."""


@dataclass(frozen=True)
class OutOfMemoryMessage:
    """The message of an out-of-memory error of one stage of a run, in the words of its config:
    the ``stage`` ("training", "validation", "testing"), the ``network`` (MODEL.NAME), the
    ``settings`` that size its memory and the ``remedies`` (overrides to try); ``error()`` makes
    the error of one failure."""

    stage: str
    network: str
    settings: tuple[str, ...] = ()
    remedies: tuple[str, ...] = ()

    @classmethod
    def of_model(cls, stage, model):
        """A message naming the network by its class only (parts built without a config)."""
        return cls(stage, type(unwrap_model(model)).__name__)

    @classmethod
    def training(cls, cfg):
        train = cfg.TRAIN
        batch, k = train.BATCH_SIZE_PER_GPU, train.ACCUMULATE_STEPS
        remedies = [] if train.GRAD_CHECKPOINTING else [
            "TRAIN.GRAD_CHECKPOINTING True (recompute activations in the backward pass instead "
            "of keeping them)"]
        smaller = max((d for d in range(1, batch) if batch % d == 0), default=None)
        if smaller is not None:
            remedies.append(f"TRAIN.BATCH_SIZE_PER_GPU {smaller} TRAIN.ACCUMULATE_STEPS "
                            f"{k * batch // smaller} (the same effective batch of {batch * k} "
                            f"per GPU in smaller micro-batches)")
        remedies += _precision_remedies(cfg)
        if smaller is None:
            remedies.append("a smaller crop TRAIN.IMAGE_SIZE (this changes the recipe)")
        return cls("training", cfg.MODEL.NAME, (
            f"crop {list(train.IMAGE_SIZE)} [w, h] (TRAIN.IMAGE_SIZE)",
            f"TRAIN.BATCH_SIZE_PER_GPU {batch} x TRAIN.ACCUMULATE_STEPS {k} per optimiser step",
            _precision(cfg)), tuple(remedies))

    @classmethod
    def validation(cls, cfg):
        batch = cfg.TEST.BATCH_SIZE_PER_GPU
        remedies = [f"TEST.BATCH_SIZE_PER_GPU {max(1, batch // 2)} (images per validation "
                    f"forward)"] if batch > 1 else []
        return cls("validation", cfg.MODEL.NAME, (
            f"whole images, TEST.BATCH_SIZE_PER_GPU {batch}", _precision(cfg)),
            tuple(remedies + _precision_remedies(cfg)))

    @classmethod
    def testing(cls, cfg):
        test = cfg.TEST
        remedies = [f"TEST.WINDOW_BATCH {max(1, test.WINDOW_BATCH // 2)} (sliding windows per "
                    f"forward)"] if test.WINDOW_BATCH > 1 else []
        return cls("testing", cfg.MODEL.NAME, (
            f"scales {list(test.SCALE_LIST)} of TEST.BASE_SIZE {test.BASE_SIZE}, flip "
            f"{test.FLIP_TEST}, windows {list(test.IMAGE_SIZE)} [w, h] (TEST.IMAGE_SIZE), "
            f"TEST.WINDOW_BATCH {test.WINDOW_BATCH}, one image per batch", _precision(cfg)),
            tuple(remedies + _precision_remedies(cfg)))

    def error(self, device, input_shape, cause):
        """The ``OutOfMemoryRunError`` of ``cause`` on ``device`` while the input of shape
        ``input_shape`` (N x C x H x W, or None) was being processed."""
        lines = [f"out of memory in {self.stage} of {self.network} on {describe_memory(device)}"]
        if input_shape is not None:
            n, _, h, w = input_shape
            lines.append(f"  input: {n} image{'s' if n != 1 else ''} of {h}x{w} (H x W)")
        lines += [f"  {setting}" for setting in self.settings]
        text = str(cause).strip()
        lines.append(f"  cause: {text.splitlines()[0] if text else type(cause).__name__}")
        if self.remedies:
            lines.append("to fit, try one of:")
            lines += [f"  {remedy}" for remedy in self.remedies]
        return OutOfMemoryRunError("\n".join(lines))


def _precision(cfg):
    if cfg.TRAIN.AMP:
        return f"autocast {cfg.TRAIN.AMP_DTYPE} (TRAIN.AMP True)"
    return "fp32 (TRAIN.AMP False)"


def _precision_remedies(cfg):
    if amp_dtype_of(cfg) is not None:
        return []
    return ["TRAIN.AMP True (bfloat16 autocast: activations of half the size; "
            "TRAIN.AMP_DTYPE float16 on GPUs without bf16)"]


class InputWatch:
    """Calls ``fn(images, ...)`` and remembers the shape of the last ``images`` (the input that
    was being processed when the memory ran out)."""

    def __init__(self, fn):
        self.fn, self.shape = fn, None

    def __call__(self, images, *args, **kwargs):
        self.shape = tuple(images.shape)
        return self.fn(images, *args, **kwargs)


@contextlib.contextmanager
def explain_out_of_memory(message, device, watch=None):
    """Turn a ``torch.OutOfMemoryError`` inside into ``message``'s ``OutOfMemoryRunError`` (an
    ``OutOfMemoryMessage``); ``watch`` (an ``InputWatch``) gives the input shape."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as e:  # torch.OutOfMemoryError from torch 2.5 on
        raise message.error(device, watch.shape if watch is not None else None, e) from e
