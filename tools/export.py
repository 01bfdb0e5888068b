"""Export a trained network to ONNX or TorchScript and check the file against PyTorch.

    python tools/export.py --cfg <yaml> --format onnx [--output model.onnx] \\
        [--size H W] [KEY VALUE ...]        # TEST.MODEL_FILE <pth> among the overrides

The file goes next to the weights (the run folder for a run's best.pth or final_state.pth), named
after them: ``final_state.onnx`` or ``final_state.pt``; ``--output`` names another file.

The file takes a normalised N x 3 x H x W RGB batch (the mean and std it needs are recorded in it:
``lib.models.export.exported_normalization``) and returns the final class logits at 1/4
resolution, then for the offset network the offsets and the confidence (``lib.models.export``).  It is
traced at --size (default TEST.IMAGE_SIZE); the ONNX file accepts any N, H and W.  The tool then
runs the file (onnxruntime, or torch.jit.load) and the network in PyTorch on a random image at
that size and at half of it, prints the largest difference of each output and the output's
largest magnitude, and exits with status 1 when a difference exceeds --atol + --rtol x that
magnitude (fp32 rounding grows with the magnitude, the network's depth and the image size; the
defaults and their measurements are in ``lib.models.export``).  ONNX needs
``pip install -r requirements-export.txt``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import logging

import torch

from lib.config import load_cfg
from lib.models import build_eval_model, input_normalization
from lib.models.export import ATOL, FORMATS, OPSET, RTOL, check, check_sizes, export
from tools.cli import run

logger = logging.getLogger("export")

# The file name ending of each format, and the endings of weight files that the default name
# drops (final_state.pth -> final_state.onnx, checkpoint.pth.tar -> checkpoint.pt).
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
_WEIGHT_SUFFIXES = (".tar", ".pth", ".pt", ".safetensors")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Export a network to ONNX or TorchScript.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", default=None,
                        help="file to write (default: next to the weights, named after them, "
                             "with .onnx or .pt)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input height and width to trace at (default TEST.IMAGE_SIZE)")
    parser.add_argument("--opset", type=int, default=OPSET, help="ONNX opset (16 or later)")
    parser.add_argument("--rtol", type=float, default=RTOL,
                        help="largest difference from PyTorch accepted, as a fraction of the "
                             "output's largest magnitude: fp32 rounding grows with it, with the "
                             "network's depth and with the image size (default %(default)g)")
    parser.add_argument("--atol", type=float, default=ATOL,
                        help="added to the accepted difference of every output, for outputs "
                             "near zero (default %(default)g)")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="the absolute tolerance of earlier releases: the same as "
                             "--atol TOLERANCE --rtol 0")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


def default_output(model_file, fmt):
    """The exported file's path when --output is not given: beside ``model_file``, named after
    it, with the format's ending."""
    stem, suffix = os.path.splitext(model_file)
    while suffix in _WEIGHT_SUFFIXES:
        stem, suffix = os.path.splitext(stem)
    return stem + suffix + SUFFIXES[fmt]


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.tolerance is not None:
        logger.warning("--tolerance %g is --atol %g --rtol 0; the default check (--atol, --rtol) "
                       "scales with each output's magnitude", args.tolerance, args.tolerance)
        args.atol, args.rtol = args.tolerance, 0.0
    # The graph is traced from the plain network: a torch.compile wrapper cannot be exported.
    cfg = load_cfg(args.cfg, [*args.opts, "TRAIN.COMPILE", "False"])
    width, height = cfg.TEST.IMAGE_SIZE
    size = tuple(args.size) if args.size else (height, width)
    model = build_eval_model(cfg, cfg.TEST.MODEL_FILE, torch.device("cpu"))
    output = args.output or default_output(cfg.TEST.MODEL_FILE, args.format)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    names = export(model, output, args.format, size, args.opset)
    normalization = input_normalization(model)
    logger.info("wrote %s (%s, traced at 1x3x%dx%d; outputs %s; input RGB (x / 255 - mean) / std "
                "with mean %s and std %s, recorded in the file)", output, args.format, *size,
                ", ".join(names), list(normalization.mean), list(normalization.std))
    failed = []
    for (h, w), differences in check(model, output, args.format, check_sizes(size)):
        logger.info("%s vs PyTorch at 1x3x%dx%d: largest difference %.3g (%s)", args.format, h,
                    w, max(d.largest for d in differences.values()),
                    ", ".join(f"{name} {d.largest:.3g} of {d.magnitude:.3g}"
                              for name, d in differences.items()))
        failed += [f"{name} at 1x3x{h}x{w} by {d.largest:.3g} (accepted: "
                   f"{d.allowed(args.rtol, args.atol):.3g})"
                   for name, d in differences.items() if not d.passes(args.rtol, args.atol)]
    if failed:
        sys.exit(f"{output} differs from the PyTorch network: {'; '.join(failed)}, more than "
                 f"{args.atol:g} + {args.rtol:g} x the output's largest magnitude: do not use it")
    logger.info("%s agrees with PyTorch within %g + %g x each output's largest magnitude", output,
                args.atol, args.rtol)


if __name__ == "__main__":
    sys.exit(run(main))
