"""Export a trained network to ONNX or TorchScript and check the file against PyTorch.

    python tools/export.py --cfg <yaml> --format onnx --output model.onnx \\
        [--size H W] [KEY VALUE ...]        # TEST.MODEL_FILE <pth> among the overrides

The file takes a normalised N x 3 x H x W RGB batch and returns the final class logits at 1/4
resolution, then for the offset network the offsets and the confidence (``lib.models.export``).  It is
traced at --size (default TEST.IMAGE_SIZE); the ONNX file accepts any N, H and W.  The tool then
runs the file (onnxruntime, or torch.jit.load) and the network in PyTorch on a random image at
that size and at half of it, prints the largest difference of each output, and exits with
status 1 when one exceeds --tolerance (1e-3).  ONNX needs ``pip install -r requirements-export.txt``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import logging

import torch

from lib.config import load_cfg
from lib.models import build_eval_model
from lib.models.export import FORMATS, OPSET, TOLERANCE, check, check_sizes, export

logger = logging.getLogger("export")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Export a network to ONNX or TorchScript.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, help="file to write")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input height and width to trace at (default TEST.IMAGE_SIZE)")
    parser.add_argument("--opset", type=int, default=OPSET, help="ONNX opset (16 or later)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help="largest difference from PyTorch accepted (default %(default)g)")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # The graph is traced from the plain network: a torch.compile wrapper cannot be exported.
    cfg = load_cfg(args.cfg, [*args.opts, "TRAIN.COMPILE", "False"])
    width, height = cfg.TEST.IMAGE_SIZE
    size = tuple(args.size) if args.size else (height, width)
    model = build_eval_model(cfg, cfg.TEST.MODEL_FILE, torch.device("cpu"))
    names = export(model, args.output, args.format, size, args.opset)
    logger.info("wrote %s (%s, traced at 1x3x%dx%d; outputs %s)", args.output, args.format,
                *size, ", ".join(names))
    worst = 0.0
    for (h, w), differences in check(model, args.output, args.format, check_sizes(size)):
        worst = max(worst, *differences.values())
        logger.info("%s vs PyTorch at 1x3x%dx%d: largest difference %.3g (%s)", args.format, h,
                    w, max(differences.values()),
                    ", ".join(f"{name} {d:.3g}" for name, d in differences.items()))
    if worst > args.tolerance:
        sys.exit(f"{args.output} differs from the PyTorch network by {worst:.3g} "
                 f"(more than {args.tolerance:g}): do not use it")
    logger.info("%s agrees with PyTorch within %g", args.output, args.tolerance)


if __name__ == "__main__":
    main()
