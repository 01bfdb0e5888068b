"""Throughput, latency, peak memory and FLOP utilisation of the configured network.

    python tools/benchmark.py --cfg <yaml> [--mode train|infer|eval|data|memory|checkpointing|analysis]
        [--iters N] [--warmup W]
        [--variants fp32,bf16,bf16_cl,bf16_cl_compile] [--checkpointing off,on] [--batch B]
        [--size H W] [--device cpu|cuda] [--peak-tflops T] [--json PATH] [KEY VALUE ...]
    python tools/benchmark.py --mode memory [--cfg <yaml>] [--crops 512x1024,1024x1024,520x520]
        [--variants fp32,bf16] [--checkpointing off,on] [--gpu-memory 12,16,24,40,80] [--batch B]

Modes:
  train  one training step per iteration on random images and labels (0..K-1, about 10% ignore
         label) of TRAIN.IMAGE_SIZE, TRAIN.ACCUMULATE_STEPS micro-batches of
         TRAIN.BATCH_SIZE_PER_GPU (or --batch) per step: the trainer's own
         ``lib.engine.step.train_step`` (forward under autocast for bf16 variants, the configured
         criterion with the dataset's class weights, backward, the fused optimiser step that
         skips non-finite updates on the device).  --checkpointing off,on runs every variant
         without and with TRAIN.GRAD_CHECKPOINTING (default: as the config says).  One more,
         profiled step gives the GPU kernels per step and the time of OHEM's selection.
  infer  ``forward_logits`` (network + resize of the logits to the input) of a batch of 1 at
         TEST.IMAGE_SIZE, eval mode.
  eval   the reference procedure ``predict`` (TEST.SCALE_LIST, TEST.FLIP_TEST, sliding windows)
         per image of TEST.IMAGE_SIZE, e.g.
         ``TEST.SCALE_LIST 0.5,0.75,1.0,1.25,1.5,1.75 TEST.FLIP_TEST True``.  The forward inputs of
         one ``predict`` run are recorded and replayed as bare ``model(x)`` calls, alternating
         with ``predict`` in every iteration; the table gives procedure time / sum of those
         forwards (median of the per-iteration ratios): the cost of everything around the
         network (resizing, windows, flip, accumulation).
  data   samples/s of the training DataLoader of the trainer (``lib.datasets.loaders``: WORKERS,
         TrainSampler, seeded workers, pinned memory on CUDA) on DATASET.ROOT.
  checkpointing  what TRAIN.GRAD_CHECKPOINTING costs: for each variant the training step of
         train without and with it, timed in turn in every iteration (the same load of a shared
         machine for both); the ratio with / without.
  analysis  what the evaluation's analysis (SegAccumulator: trimap bands, Boundary IoU, fusion
         counts of every prediction) costs beside the forward, single scale, on --batch images of
         TEST.IMAGE_SIZE: the forward, the final prediction's resize and argmax, every
         prediction's, and the analysis update, in ms per image and % of the forward.
  memory what a training step keeps in memory (``lib.engine.memory_use``), for every crop of
         --crops (H x W), precision (--variants: fp32, bf16, ...) and TRAIN.GRAD_CHECKPOINTING
         off / on (--checkpointing): the bytes autograd saves for backward per image (saved-tensor
         hooks, the same on every device), parameters + gradients + optimiser state, autocast's
         copies of the weights (a fixed cost, like the weights), on CUDA the
         max_memory_allocated of a real training step of --batch images, the largest batch
         per GPU for the memory sizes of --gpu-memory by the rule of ``StepMemory.estimate``,
         and what to type on one GPU to train the recipe's effective batch
         (TRAIN.BATCH_SIZE_PER_GPU and TRAIN.ACCUMULATE_STEPS).
         Without --cfg: the W48 recipes of the four networks, each crop with the recipes whose
         crop it is (520x520: the ADE20K recipes, 150 classes), else the Cityscapes ones.  The
         device is CUDA when there is one, else the meta device, which saves the same tensors as
         the others without computing them (seconds per row; fp32 only, as autocast has no meta
         backend: bf16 needs --device cpu, which measures the CPU's autocast).  Off CUDA only the
         forward and the loss run.

``--size H W`` replaces the image size of train/infer/eval, ``--batch`` the batch of train/infer.
Variants (train/infer/eval): fp32, fp32_cl (channels_last), bf16 (autocast), bf16_cl,
bf16_cl_compile (+ torch.compile); default fp32 on the CPU and fp32,bf16,bf16_cl,bf16_cl_compile
on CUDA.  Every variant builds the network afresh from the same seed without pretrained weights.

FLOPs are counted once (first variant, before compiling) by torch.utils.flop_counter, which counts
matrix products and convolutions as 2 x multiply-accumulates and nothing else.  The peak FLOP/s
comes from --peak-tflops, else from a table of known GPUs (``lib.utils.profiling.PEAK_TFLOPS``), else it is
unknown and "% of peak" reads n/a.  On CUDA the memory column is max_memory_allocated, reset for
every row; on the CPU the process's peak resident set size, reset for every row where Linux
allows it (else since the process started: the notes say which).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import shlex

import torch

from lib.engine.benchmark import MODES, VARIANTS, BenchSettings, MissingDataError, run_benchmark
from lib.utils.atomic import write_json
from lib.utils.device import select_device
from tools.cli import run

DEFAULT_CROPS = "512x1024,1024x1024,520x520"
DEFAULT_GPU_GB = "12,16,24,40,80"


def _variant_names(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown or [text]}; valid: "
                                         f"{', '.join(VARIANTS)}")
    return names


def _crops(text):
    try:
        crops = [tuple(int(v) for v in c.lower().split("x")) for c in text.split(",") if c]
    except ValueError:
        crops = []
    if not crops or any(len(c) != 2 or min(c) < 1 for c in crops):
        raise argparse.ArgumentTypeError(f"crops are HxW[,HxW...], e.g. 512x1024; got {text!r}")
    return crops


def _on_off(text):
    choices = {"off": False, "on": True}
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or any(n not in choices for n in names):
        raise argparse.ArgumentTypeError(f"expected off, on or off,on; got {text!r}")
    return [choices[n] for n in names]


def _sizes_gb(text):
    try:
        sizes = [float(v) for v in text.split(",") if v]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"expected GB sizes such as 12,24,80; got {text!r}")
    return sizes


def _int_at_least(minimum):
    def integer(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return integer


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", default=None,
                        help="experiment YAML file (memory mode: default the W48 recipes)")
    parser.add_argument("--mode", choices=MODES, default="train")
    parser.add_argument("--iters", type=_int_at_least(1), default=10, help="timed iterations")
    parser.add_argument("--warmup", type=_int_at_least(0), default=3,
                        help="untimed iterations before them")
    parser.add_argument("--variants", type=_variant_names, default=None,
                        help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--batch", type=_int_at_least(1), default=None,
                        help="images per forward (train: TRAIN.BATCH_SIZE_PER_GPU, a micro-batch "
                             "of TRAIN.ACCUMULATE_STEPS; infer: 1)")
    parser.add_argument("--size", type=_int_at_least(1), nargs=2, metavar=("H", "W"),
                        default=None, help="image size (train: TRAIN.IMAGE_SIZE, infer/eval: "
                                           "TEST.IMAGE_SIZE)")
    parser.add_argument("--device", choices=("cpu", "cuda", "meta"), default=None,
                        help="default: CUDA when there is one, else the CPU (memory mode: meta)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="peak TFLOP/s of the device for the %% of peak column")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--crops", type=_crops, default=_crops(DEFAULT_CROPS),
                        help=f"memory mode: training crops HxW (default {DEFAULT_CROPS})")
    parser.add_argument("--checkpointing", type=_on_off, default=None,
                        help="train and memory modes: TRAIN.GRAD_CHECKPOINTING off, on or off,on "
                             "(default: train off, memory off,on)")
    parser.add_argument("--gpu-memory", type=_sizes_gb, default=_sizes_gb(DEFAULT_GPU_GB),
                        help=f"memory mode: GPU sizes in GB (2^30 bytes) for the largest batch "
                             f"(default {DEFAULT_GPU_GB})")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    args = parser.parse_intermixed_args(argv)
    if args.cfg is None and args.mode != "memory":
        parser.error(f"--cfg is required in --mode {args.mode}")
    if args.device == "meta" and args.mode != "memory":
        parser.error("--device meta: only --mode memory can run without arithmetic")
    if args.checkpointing is not None and args.mode not in ("train", "memory"):
        parser.error(f"--checkpointing: only for --mode train and memory, not {args.mode}")
    if args.checkpointing is None:  # train: as the config says
        args.checkpointing = [False, True] if args.mode == "memory" else [None]
    if args.mode == "memory" and args.device is None and not torch.cuda.is_available():
        args.device = "meta"
    amp = [v for v in args.variants or () if VARIANTS[v].amp]
    if args.device == "meta" and amp:
        parser.error(f"--variants {','.join(amp)}: autocast has no meta backend, and without "
                     f"CUDA the memory mode runs on the meta device (fp32 only); add --device "
                     f"cpu to measure under the CPU's autocast (a real forward: minutes for W48, "
                     f"and the CPU's autocast casts other operators than CUDA's)")
    return args


def settings_of(args):
    """The ``BenchSettings`` of the parsed command line."""
    return BenchSettings(mode=args.mode, config_file=args.cfg, opts=args.opts, iters=args.iters,
                         warmup=args.warmup, variants=args.variants, batch=args.batch,
                         size=args.size, peak_tflops=args.peak_tflops, crops=args.crops,
                         checkpointing=args.checkpointing, gpu_memory=args.gpu_memory)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        device = select_device(args.device)
    except RuntimeError as e:
        raise SystemExit(f"--device {args.device}: {e}") from None
    try:
        report = run_benchmark(settings_of(args), device)
    except MissingDataError as e:  # the message says how to make data
        print(e, file=sys.stderr)
        return 2
    report.header["command"] = "python " + shlex.join(["tools/benchmark.py", *argv])
    print(report.text())
    if args.json:
        write_json(args.json, report.record())
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
