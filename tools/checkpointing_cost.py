"""What TRAIN.GRAD_CHECKPOINTING costs: the trainer's training step with and without it, timed
in turn on the same batch.

    python tools/checkpointing_cost.py --cfg <yaml> [--size H W] [--batch N] [--iters I]
        [--device cpu|cuda] [KEY VALUE ...]

Both step parts are built as training builds them (``build_step_parts``, random weights from the
same seed) and run ``lib.engine.step.train_step`` (forward, loss, backward, update) on one random
batch of H x W (default TRAIN.IMAGE_SIZE); one warm-up, then ``--iters`` iterations that each
time one step without and one with checkpointing, so that both meet the same load of a shared
machine.  Printed: the step times and the ratio with / without (median of the per-iteration
ratios, and the ratio of the means).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import statistics

import torch

from lib.config import load_cfg
from lib.engine import step
from lib.engine.build import build_step_parts
from lib.utils.device import select_device
from lib.utils.profiling import device_name, time_interleaved, versions
from tools.cli import run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="image size (default TRAIN.IMAGE_SIZE)")
    parser.add_argument("--batch", type=int, default=1, help="images per step")
    parser.add_argument("--iters", type=int, default=6, help="timed iterations")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    args = parser.parse_intermixed_args(argv)
    if args.batch < 1 or args.iters < 1 or (args.size and min(args.size) < 1):
        parser.error("--batch, --iters and --size must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    device = select_device(args.device)
    parts = []
    for on in (False, True):
        cfg = load_cfg(args.cfg, [*args.opts, "TRAIN.GRAD_CHECKPOINTING", str(on)])
        torch.manual_seed(max(cfg.TRAIN.SEED, 0))
        parts.append(build_step_parts(cfg, device, load_pretrained=False))
    hw = tuple(args.size) if args.size else (cfg.TRAIN.IMAGE_SIZE[1], cfg.TRAIN.IMAGE_SIZE[0])
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, *hw, generator=g).to(device)
    labels = torch.randint(0, cfg.DATASET.NUM_CLASSES, (args.batch, *hw), generator=g).to(device)
    if cfg.TRAIN.CHANNELS_LAST:
        images = images.contiguous(memory_format=torch.channels_last)

    def run(p):
        return lambda: step.train_step(p.model, p.criterion, p.optimizer, p.scaler, images,
                                       labels, p.amp_dtype)

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    off, on = time_interleaved([run(p) for p in parts], args.iters, 1, sync)
    ratios = [b / a for a, b in zip(off, on, strict=True)]
    print(f"{cfg.MODEL.NAME}, {args.batch} x {hw[0]}x{hw[1]}, {device_name(device)}, "
          f"{versions()}")
    print(f"step ms without checkpointing: {[round(t * 1e3) for t in off]}")
    print(f"step ms with checkpointing:    {[round(t * 1e3) for t in on]}")
    print(f"with / without: median {statistics.median(ratios):.3f}, "
          f"ratio of means {sum(on) / sum(off):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
