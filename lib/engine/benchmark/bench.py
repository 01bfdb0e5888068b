"""What the modes of a benchmark share: the run's settings, random inputs, and ``Bench``, the
set-up of the modes that time a network (sizes, seed, networks and step parts built afresh,
FLOPs counted once, timing, the printed header)."""
from dataclasses import dataclass
from functools import partial

import torch

from ...models import apply_speed_flags, build_model
from ...utils.profiling import Timing, count_flops, synchronize, time_calls, versions
from .. import step
from ..build import build_step_parts

__all__ = ["BenchSettings", "Bench", "random_images", "random_labels"]

# Share of random training labels set to the ignore label.
IGNORED_SHARE = 0.1


@dataclass(frozen=True)
class BenchSettings:
    """What a benchmark run measures (the command line of ``tools/benchmark.py``)."""

    mode: str  # one of lib.engine.benchmark.MODES
    config_file: str | None  # the experiment file; None: the memory mode's W48 recipes
    opts: list  # KEY VALUE overrides of the config
    iters: int  # timed iterations
    warmup: int  # untimed iterations before them
    variants: list | None  # names of VARIANTS; None: the device's (memory mode: its own)
    batch: int | None  # images per forward; None: the mode's default
    size: tuple | None  # (H, W) in place of the config's image size; None: the config's
    peak_tflops: float | None  # the device's peak; None: from the table of known GPUs
    crops: list  # memory mode: training crops [(H, W), ...]
    checkpointing: list  # TRAIN.GRAD_CHECKPOINTING settings (train, memory); [None]: config's
    gpu_memory: list  # memory mode: GPU sizes in GB (2^30 bytes) for the largest batch


def random_images(batch, hw, device, seed):
    """``batch`` x 3 x H x W standard-normal images of ``hw`` (H, W), from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *hw, generator=g).to(device)


def random_labels(batch, hw, num_classes, ignore_label, device, seed):
    """``batch`` x H x W labels 0..num_classes-1, about ``IGNORED_SHARE`` of them
    ``ignore_label``, from ``seed``."""
    g = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(0, num_classes, (batch, *hw), generator=g)
    ignored = torch.rand(batch, *hw, generator=g) < IGNORED_SHARE
    return labels.masked_fill(ignored, ignore_label).to(device)


class Bench:
    """What every variant of a run shares: config, settings, device, sizes, iterations, FLOPs."""

    def __init__(self, cfg, settings, device):
        self.cfg, self.settings, self.device = cfg, settings, device
        self.seed = max(cfg.TRAIN.SEED, 0)
        self.flops = self.parameters = None
        self.sync = partial(synchronize, device)
        training = settings.mode in ("train", "checkpointing")
        self.accumulate = cfg.TRAIN.ACCUMULATE_STEPS if training else 1
        if training:
            width, height = cfg.TRAIN.IMAGE_SIZE
            # images per iteration: every micro-batch of the optimiser step
            self.batch = (settings.batch or cfg.TRAIN.BATCH_SIZE_PER_GPU) * self.accumulate
        else:
            width, height = cfg.TEST.IMAGE_SIZE
            self.batch = 1 if settings.mode == "eval" else (settings.batch or 1)
        self.hw = tuple(settings.size) if settings.size else (int(height), int(width))

    def network(self, cfg):
        """The configured network for inference, randomly initialised from the run's seed, in
        eval mode on the device, with the variant's channels-last and compile; and the bare
        network (for counting FLOPs)."""
        torch.manual_seed(self.seed)
        bare = build_model(cfg, load_pretrained=False).to(self.device).eval()
        self.parameters = sum(p.numel() for p in bare.parameters())
        return apply_speed_flags(bare, channels_last=cfg.TRAIN.CHANNELS_LAST,
                                 compile=cfg.TRAIN.COMPILE), bare

    def timing(self, fn):
        """``Timing`` of ``fn()`` over the run's iterations, after its warm-up."""
        return Timing.of(time_calls(fn, self.settings.iters, self.settings.warmup, self.sync))

    def count_once(self, fn):
        """Count the FLOPs of ``fn()`` unless an earlier variant has."""
        if self.flops is None:
            self.flops = count_flops(fn)

    def train_parts(self, cfg):
        """``(parts, run)``: the step parts of ``cfg`` as training builds them (without the
        learning-rate schedule and the logging around them), and ``run(model)``, one
        ``train_step`` of them on one fixed random batch."""
        torch.manual_seed(self.seed)
        parts = build_step_parts(cfg, self.device, load_pretrained=False)
        self.parameters = sum(p.numel() for p in parts.network.parameters())
        images, labels = parts.inputs(
            random_images(self.batch, self.hw, self.device, self.seed),
            random_labels(self.batch, self.hw, cfg.DATASET.NUM_CLASSES, cfg.TRAIN.IGNORE_LABEL,
                          self.device, self.seed))

        def run(net):
            step.train_step(net, parts.criterion, parts.optimizer, parts.scaler, images, labels,
                            parts.amp_dtype, self.accumulate)
        return parts, run

    def header(self, device_name):
        """The printed header of the run on the device ``device_name``: what was measured."""
        cfg, settings = self.cfg, self.settings
        what = {"train": "per training step", "checkpointing": "per training step",
                "infer": "per forward_logits call", "eval": "per predict call",
                "analysis": "per forward"}[settings.mode]
        images = f"{self.batch} image{'' if self.batch == 1 else 's'}"
        if self.accumulate > 1:
            images += f" ({self.accumulate} micro-batches of {self.batch // self.accumulate})"
        header = {
            "device": device_name, "versions": versions(), "config": settings.config_file,
            "model": f"{cfg.MODEL.NAME}, {self.parameters:,} parameters",
            "batch": f"{images} {what}, {self.hw[0]}x{self.hw[1]} (H x W)",
            "iterations": f"{settings.warmup} warm-up + {settings.iters} timed",
            "cudnn.benchmark": str(torch.backends.cudnn.benchmark),
        }
        if settings.mode == "eval":
            test = cfg.TEST
            header["procedure"] = (f"scales {list(test.SCALE_LIST)}, flip {test.FLIP_TEST}, "
                                   f"base size {test.BASE_SIZE}, window {list(test.IMAGE_SIZE)} "
                                   f"[w, h], stride ratio {test.STRIDE_RATIO}")
        return header
