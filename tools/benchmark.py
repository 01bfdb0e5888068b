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
         counts of every head) costs beside the forward, single scale, on --batch images of
         TEST.IMAGE_SIZE: the forward, the final head's resize and argmax, every head's, and
         the analysis update, in ms per image and % of the forward.
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
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lib.config import amp_dtype_of, load_cfg
from lib.datasets import DatasetError, build_dataset
from lib.datasets.loaders import train_loader
from lib.engine import step
from lib.engine.build import build_step_parts
from lib.engine.launch import configure_cudnn
from lib.engine.memory_use import FREE_BYTES, FREE_SHARE, measure_step_memory
from lib.evaluation.accumulator import MeasureSettings, SegAccumulator
from lib.evaluation.heads import label_size_inputs, output_heads
from lib.evaluation.protocols import InferenceSettings, forward_logits, predict
from lib.models import apply_speed_flags, build_model
from lib.utils.atomic import write_json
from lib.utils.compat import reset_compiled
from lib.utils.device import select_device
from lib.utils.memory import GIB
from lib.utils.precision import autocast
from lib.utils.profiling import (
    ShapeRecorder,
    Timing,
    count_flops,
    device_name,
    markdown_table,
    peak_memory_mb,
    peak_tflops,
    precision_of,
    profile_call,
    reset_memory,
    time_calls,
    time_interleaved,
    versions,
)
from tools.cli import run


@dataclass(frozen=True)
class Variant:
    name: str
    amp: bool
    channels_last: bool
    compile: bool


VARIANTS = {v.name: v for v in (
    Variant("fp32", False, False, False),
    Variant("fp32_cl", False, True, False),
    Variant("bf16", True, False, False),
    Variant("bf16_cl", True, True, False),
    Variant("bf16_cl_compile", True, True, True),
)}
DEFAULT_VARIANTS = {"cpu": "fp32", "cuda": "fp32,bf16,bf16_cl,bf16_cl_compile"}
MODES = ("train", "infer", "eval", "data", "memory", "checkpointing", "analysis")
# --mode memory without --cfg: the W48 networks of the paper at their recipes' crops: the
# Cityscapes recipes (HRNetV2, HRNet-OCR, the offset network, OVeNet-OCR; 512x1024, also
# measured at 1024x1024) and the ADE20K ones (520x520, 150 classes; the offset network has an
# ADE20K recipe with OCR only).
CITYSCAPES_RECIPES = tuple(f"experiments/cityscapes/{name}.yaml" for name in (
    "seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484",
    "seg_hrnet_ocr_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484",
    "seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_8_epoch484",
    "seg_offset_hrnet_ocr_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_8_epoch484",
))
ADE20K_RECIPES = tuple(f"experiments/ade20k/{name}.yaml" for name in (
    "seg_hrnet_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120",
    "seg_hrnet_ocr_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120",
    "seg_offset_hrnet_ocr_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120",
))
DEFAULT_CROPS = "512x1024,1024x1024,520x520"
DEFAULT_GPU_GB = "12,16,24,40,80"
# Share of random training labels set to the ignore label.
IGNORED_SHARE = 0.1
# The selection of OHEM (lib.models.losses.OhemCrossEntropy), timed in a profiled training step.
SELECTION_OP = "aten::kthvalue"


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


def random_images(batch, hw, device, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *hw, generator=g).to(device)


def random_labels(batch, hw, num_classes, ignore_label, device, seed):
    g = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(0, num_classes, (batch, *hw), generator=g)
    ignored = torch.rand(batch, *hw, generator=g) < IGNORED_SHARE
    return labels.masked_fill(ignored, ignore_label).to(device)


def variant_cfg(cfg, variant, checkpointing=None):
    """``cfg`` with the variant's TRAIN.AMP, TRAIN.CHANNELS_LAST and TRAIN.COMPILE (and
    TRAIN.GRAD_CHECKPOINTING unless None): every variant is built by the builders of training and
    testing from its own config."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.TRAIN.AMP, cfg.TRAIN.CHANNELS_LAST = variant.amp, variant.channels_last
    cfg.TRAIN.COMPILE = variant.compile
    if checkpointing is not None:
        cfg.TRAIN.GRAD_CHECKPOINTING = checkpointing
    cfg.freeze()
    return cfg


class Bench:
    """What every variant of a run shares: config, device, sizes, iterations, FLOPs."""

    def __init__(self, cfg, args, device):
        self.cfg, self.args, self.device = cfg, args, device
        self.seed = max(cfg.TRAIN.SEED, 0)
        self.flops = self.parameters = None
        self.sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" \
            else (lambda: None)
        training = args.mode in ("train", "checkpointing")
        self.accumulate = cfg.TRAIN.ACCUMULATE_STEPS if training else 1
        if training:
            width, height = cfg.TRAIN.IMAGE_SIZE
            # images per iteration: every micro-batch of the optimiser step
            self.batch = (args.batch or cfg.TRAIN.BATCH_SIZE_PER_GPU) * self.accumulate
        else:
            width, height = cfg.TEST.IMAGE_SIZE
            self.batch = 1 if args.mode == "eval" else (args.batch or 1)
        self.hw = tuple(args.size) if args.size else (int(height), int(width))

    def network(self, cfg):
        """The configured network for inference, randomly initialised from the run's seed, in
        eval mode on the device, with the variant's channels-last and compile; and the bare
        network (for counting FLOPs)."""
        torch.manual_seed(self.seed)
        bare = build_model(cfg, load_pretrained=False).to(self.device).eval()
        self.parameters = sum(p.numel() for p in bare.parameters())
        return apply_speed_flags(bare, channels_last=cfg.TRAIN.CHANNELS_LAST,
                                 compile=cfg.TRAIN.COMPILE), bare

    def timed(self, fn):
        return Timing.of(time_calls(fn, self.args.iters, self.args.warmup, self.sync))

    def count_once(self, fn):
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

    def train(self, cfg):
        """``train_step`` of the trainer on one fixed random batch."""
        parts, run = self.train_parts(cfg)
        self.count_once(lambda: run(parts.network))
        timing = self.timed(lambda: run(parts.model))
        return {"timing": timing, "profile": profile_call(lambda: run(parts.model), self.device,
                                                          ops=(SELECTION_OP,))}

    def infer(self, cfg):
        """``forward_logits`` of a fixed random batch (network and resize to the input)."""
        net, bare = self.network(cfg)
        images = random_images(self.batch, self.hw, self.device, self.seed)
        align_corners, dtype = cfg.MODEL.ALIGN_CORNERS, amp_dtype_of(cfg)

        def run(model):
            forward_logits(model, images, align_corners=align_corners, amp_dtype=dtype)

        self.count_once(lambda: run(bare))
        return {"timing": self.timed(lambda: run(net))}

    def eval(self, cfg):
        """``predict`` of one random image, then the same network inputs as bare forwards."""
        net, bare = self.network(cfg)
        image = random_images(1, self.hw, self.device, self.seed)
        settings = InferenceSettings.from_config(cfg)
        self.count_once(lambda: predict(bare, image, settings))
        recorder = ShapeRecorder(net)
        predict(recorder, image, settings)
        inputs = [random_images(s[0], s[2:], self.device, self.seed) for s in recorder.shapes]

        def bare_forwards():
            with torch.inference_mode(), autocast(self.device, settings.amp_dtype):
                for x in inputs:
                    net(x)

        procedure, forwards = time_interleaved([lambda: predict(net, image, settings),
                                                bare_forwards], self.args.iters,
                                               self.args.warmup, self.sync)
        ratios = [p / f for p, f in zip(procedure, forwards, strict=True)]
        return {"timing": Timing.of(procedure), "forwards": Timing.of(forwards),
                "procedure_over_forwards": statistics.median(ratios),
                "procedure_ms_each": [1e3 * t for t in procedure],
                "forwards_ms_each": [1e3 * t for t in forwards],
                "forward_shapes": [list(s) for s in recorder.shapes]}


def variant_row(bench, variant, checkpointing=None):
    """The figures of ``variant`` (and TRAIN.GRAD_CHECKPOINTING ``checkpointing``, None: the
    config's)."""
    reset_memory(bench.device)
    cfg = variant_cfg(bench.cfg, variant, checkpointing)
    result = getattr(bench, bench.args.mode)(cfg)
    memory, memory_kind = peak_memory_mb(bench.device)
    timing = result.pop("timing")
    checkpointing = bench.args.mode == "train" and cfg.TRAIN.GRAD_CHECKPOINTING
    row = {"variant": variant.name + (" +ckpt" if checkpointing else ""),
           "checkpointing": checkpointing, "precision": precision_of(bench.device, variant.amp),
           "images_per_s": bench.batch / (timing.mean / 1e3), "ms_mean": timing.mean,
           "ms_median": timing.median, "ms_p90": timing.p90, "peak_mem_mb": memory,
           "memory": memory_kind, "tflops": bench.flops / (timing.mean / 1e3) / 1e12}
    if "profile" in result:
        profile = result.pop("profile")
        row.update(kernels_per_iter=profile.kernels, selection_calls=profile.calls[SELECTION_OP],
                   selection_ms=profile.op_ms[SELECTION_OP])
    if "forwards" in result:
        forwards = result.pop("forwards")
        row.update(forwards_ms_mean=forwards.mean, forwards_ms_median=forwards.median, **result)
    if variant.compile:
        reset_compiled()
    return row


def add_peaks(rows, name, override):
    for row in rows:
        peak, source = peak_tflops(name, row["precision"], override)
        row.update(peak_tflops=peak, peak_source=source,
                   pct_of_peak=None if peak is None else 100 * row["tflops"] / peak,
                   speedup=rows[0]["ms_mean"] / row["ms_mean"])


def _pct(value):
    return "n/a" if value is None else f"{value:.2f}"


def model_table(rows, mode):
    first = rows[0]["variant"]
    headers = ["variant", "images/s", "ms/iter mean", "median", "p90", "peak mem MB", "TFLOP/s",
               "% of peak", f"speed vs {first}"]
    if mode == "eval":
        headers += ["forwards ms", "proc/fwd"]
    if mode == "train":
        headers += ["kernels/step", "kthvalue ms (calls)"]
    lines = []
    for r in rows:
        cells = [r["variant"], f"{r['images_per_s']:.2f}", f"{r['ms_mean']:.1f}",
                 f"{r['ms_median']:.1f}", f"{r['ms_p90']:.1f}", f"{r['peak_mem_mb']:.0f}",
                 f"{r['tflops']:.4f}", _pct(r["pct_of_peak"]), f"{r['speedup']:.2f}x"]
        if mode == "eval":
            cells += [f"{r['forwards_ms_median']:.1f}", f"{r['procedure_over_forwards']:.3f}"]
        if mode == "train":
            kernels = r["kernels_per_iter"]
            cells += ["n/a" if kernels is None else str(kernels),
                      f"{r['selection_ms']:.2f} ({r['selection_calls']})"]
        lines.append(cells)
    return markdown_table(headers, lines)


def model_header(cfg, args, bench, name):
    what = {"train": "per training step", "checkpointing": "per training step",
            "infer": "per forward_logits call", "eval": "per predict call",
            "analysis": "per forward"}[args.mode]
    images = f"{bench.batch} image{'' if bench.batch == 1 else 's'}"
    if bench.accumulate > 1:
        images += f" ({bench.accumulate} micro-batches of {bench.batch // bench.accumulate})"
    header = {
        "device": name, "versions": versions(), "config": args.cfg,
        "model": f"{cfg.MODEL.NAME}, {bench.parameters:,} parameters",
        "batch": f"{images} {what}, {bench.hw[0]}x{bench.hw[1]} (H x W)",
        "iterations": f"{args.warmup} warm-up + {args.iters} timed",
        "cudnn.benchmark": str(torch.backends.cudnn.benchmark),
    }
    if args.mode == "eval":
        test = cfg.TEST
        header["procedure"] = (f"scales {list(test.SCALE_LIST)}, flip {test.FLIP_TEST}, base "
                               f"size {test.BASE_SIZE}, window {list(test.IMAGE_SIZE)} [w, h], "
                               f"stride ratio {test.STRIDE_RATIO}")
    return header


def model_notes(rows, flops, mode):
    notes = [f"FLOPs per iteration: {flops / 1e9:.3f} GFLOP (torch.utils.flop_counter: "
             f"matmul/conv as 2 x MACs, other ops not counted); TFLOP/s = FLOPs / mean time",
             f"peak mem: {rows[0]['memory']} (MB)"]
    notes += [f"peak assumed for {r['variant']} ({r['precision']}): "
              f"{'unknown' if r['peak_tflops'] is None else r['peak_tflops']} TFLOP/s, "
              f"source: {r['peak_source']}" for r in rows]
    if mode == "train":
        notes.append(f"kernels/step: GPU kernels of one profiled step (torch.profiler; n/a off "
                     f"CUDA); kthvalue ms (calls): OHEM's selection ({SELECTION_OP}) in that "
                     f"step, its kernels' time on CUDA, CPU time elsewhere; the TFLOP/s of a "
                     f"+ckpt row count the FLOPs of the first row (the recompute not counted)")
    if mode == "eval":
        notes.append(f"forwards per image: {len(rows[0]['forward_shapes'])}, input shapes "
                     f"{rows[0]['forward_shapes']}; each timed iteration runs predict, then those "
                     f"inputs as bare forwards; proc/fwd = median over iterations of the ratio")
    return notes


def row_settings(variants, checkpointing, cfg):
    """``([(Variant, checkpointing), ...], notes)``: every variant named in ``variants`` with
    every setting of ``checkpointing`` (None: the config's), but torch.compile with
    checkpointing, which training refuses (a note says so)."""
    settings, refused = [], []
    for name in variants:
        for on in checkpointing:
            if VARIANTS[name].compile and (on or on is None and cfg.TRAIN.GRAD_CHECKPOINTING):
                refused.append(f"{name} with checkpointing: not run (TRAIN.COMPILE refuses "
                               f"TRAIN.GRAD_CHECKPOINTING)")
            else:
                settings.append((VARIANTS[name], on))
    return settings, refused


def run_model_modes(cfg, args, device):
    """``(header, table, notes, figures)`` of the train, infer or eval benchmark."""
    bench = Bench(cfg, args, device)
    name = device_name(device)
    variants = args.variants or DEFAULT_VARIANTS[device.type].split(",")
    settings, refused = row_settings(variants, args.checkpointing, cfg)
    rows = [variant_row(bench, variant, checkpointing) for variant, checkpointing in settings]
    add_peaks(rows, name, args.peak_tflops)
    figures = {"parameters": bench.parameters, "batch": bench.batch, "image_hw": list(bench.hw),
               "flops_per_iter": bench.flops, "rows": rows}
    return (model_header(cfg, args, bench, name), model_table(rows, args.mode),
            model_notes(rows, bench.flops, args.mode) + refused, figures)


def run_checkpointing_mode(cfg, args, device):
    """``(header, table, notes, figures)``: what TRAIN.GRAD_CHECKPOINTING costs, for each
    variant the training step without and with it, timed in turn in every iteration so that both
    meet the same load of a shared machine."""
    bench = Bench(cfg, args, device)
    variants = args.variants or DEFAULT_VARIANTS[device.type].split(",")
    settings, refused = row_settings(variants, [True], cfg)
    rows = []
    for variant, _ in settings:
        steps = [bench.train_parts(variant_cfg(cfg, variant, on)) for on in (False, True)]
        off, on = time_interleaved([lambda p=p, run=run: run(p.model) for p, run in steps],
                                   args.iters, args.warmup, bench.sync)
        rows.append({"variant": variant.name, "without_ms": Timing.of(off).median,
                     "with_ms": Timing.of(on).median,
                     "ratio_median": statistics.median(b / a for a, b in zip(off, on)),
                     "ratio_of_means": sum(on) / sum(off),
                     "without_ms_each": [1e3 * t for t in off],
                     "with_ms_each": [1e3 * t for t in on]})
        if variant.compile:
            reset_compiled()
    table = markdown_table(
        ["variant", "ms without (median)", "ms with (median)", "with / without (median)",
         "ratio of means"],
        [[r["variant"], f"{r['without_ms']:.1f}", f"{r['with_ms']:.1f}",
          f"{r['ratio_median']:.3f}", f"{r['ratio_of_means']:.3f}"] for r in rows])
    notes = ["with / without: median over the iterations of the ratio of the two steps' "
             "times"] + refused
    return (model_header(cfg, args, bench, device_name(device)), table, notes,
            {"batch": bench.batch, "image_hw": list(bench.hw), "rows": rows})


def timed(sync, seconds, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; its time, waiting for the device on both sides, is appended to
    ``seconds``."""
    sync()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    sync()
    seconds.append(time.perf_counter() - start)
    return out


def final_prediction(output, size, align_corners):
    """What an evaluation without the analysis does: ``.final`` resized to the label size, then
    its argmax."""
    return F.interpolate(output.final.float(), size=size, mode="bilinear",
                         align_corners=align_corners).argmax(dim=1)


def run_analysis_mode(cfg, args, device):
    """``(header, table, notes, figures)``: what the evaluation's analysis
    (``lib.evaluation.accumulator.SegAccumulator``) costs beside the forward of the first
    variant, on a batch of random images at TEST.IMAGE_SIZE (single scale, the costliest case:
    multi-scale testing runs several forwards for one analysis): the median time of each
    stage."""
    bench = Bench(cfg, args, device)
    variant = VARIANTS[(args.variants or ["fp32"])[0]]
    vcfg = variant_cfg(cfg, variant)
    model, _ = bench.network(vcfg)
    images = random_images(bench.batch, bench.hw, device, bench.seed)
    labels = random_labels(bench.batch, bench.hw, cfg.DATASET.NUM_CLASSES,
                           cfg.TRAIN.IGNORE_LABEL, device, bench.seed)
    align, dtype = cfg.MODEL.ALIGN_CORNERS, amp_dtype_of(vcfg)
    times = {"forward": [], "final": [], "heads": [], "analysis": []}
    with torch.inference_mode():
        heads = output_heads(model(images[:1]))
        analysis = SegAccumulator(cfg.DATASET.NUM_CLASSES, heads,
                                  measures=MeasureSettings.from_config(cfg), device=device)
        for i in range(args.warmup + args.iters):
            stages = []
            with autocast(device, dtype):
                output = timed(bench.sync, stages, model, images)
            timed(bench.sync, stages, final_prediction, output, bench.hw, align)
            inputs = timed(bench.sync, stages, label_size_inputs, output, bench.hw, align)
            timed(bench.sync, stages, analysis.update, inputs["preds"], labels,
                  offsets=inputs["offsets"], confidence=inputs["confidence"])
            if i >= args.warmup:
                for name, value in zip(times, stages, strict=True):
                    times[name].append(value)
    ms = {name: 1e3 * statistics.median(values) / bench.batch for name, values in times.items()}
    lines = [("forward", ms["forward"]), ("final head resize + argmax", ms["final"]),
             ("every head (inputs) - final", ms["heads"] - ms["final"]),
             ("analysis update", ms["analysis"]),
             ("added: inputs - final + update", ms["heads"] - ms["final"] + ms["analysis"])]
    table = markdown_table(["stage", "ms/image", "% of the forward"],
                           [[n, f"{v:.1f}", f"{100 * v / ms['forward']:.1f}"] for n, v in lines])
    header = model_header(cfg, args, bench, device_name(device))
    header["heads"] = ", ".join(heads)
    notes = [f"variant {variant.name}; median of {args.iters} iterations after {args.warmup}; "
             "final: what evaluation does without the analysis; every head (inputs): all heads "
             "resized to the label size and reduced to their argmax, offsets and confidence "
             "resized (lib.evaluation.heads.label_size_inputs); analysis update: confusion "
             "matrices by trimap band, Boundary IoU, the fusion split and histograms"]
    return header, table, notes, {"batch": bench.batch, "image_hw": list(bench.hw),
                                  "ms_per_image": ms, "heads": heads}


def train_crop(cfg):
    """TRAIN.IMAGE_SIZE as (H, W)."""
    width, height = cfg.TRAIN.IMAGE_SIZE
    return int(height), int(width)


def memory_recipes(args):
    """``[(crop, [(path, cfg), ...]), ...]``: the configs each crop of --crops is measured with:
    --cfg for every crop; without it, the recipes whose crop it is (the ADE20K ones at
    520x520), else the Cityscapes ones."""
    if args.cfg:
        cfg = load_cfg(args.cfg, args.opts)
        return [(crop, [(args.cfg, cfg)]) for crop in args.crops]
    sets = [[(path, load_cfg(path, args.opts)) for path in paths]
            for paths in (CITYSCAPES_RECIPES, ADE20K_RECIPES)]
    return [(crop, next((recipes for recipes in sets
                         if all(train_crop(cfg) == crop for _, cfg in recipes)), sets[0]))
            for crop in args.crops]


def memory_row(path, cfg, args, device, crop, variant, checkpointing):
    """One row of the memory table: a training step of ``cfg`` (from ``path``) at ``crop``
    (H, W)."""
    cfg = variant_cfg(cfg, variant, checkpointing)
    seed = max(cfg.TRAIN.SEED, 0)
    torch.manual_seed(seed)
    reset_memory(device)
    parts = build_step_parts(cfg, device, load_pretrained=False)
    batch = args.batch or 1
    images, labels = parts.inputs(
        random_images(batch, crop, device, seed),
        random_labels(batch, crop, cfg.DATASET.NUM_CLASSES, cfg.TRAIN.IGNORE_LABEL, device, seed))
    use = measure_step_memory(parts, images, labels)
    row = {"network": cfg.MODEL.NAME, "config": path, "dataset": cfg.DATASET.DATASET,
           "classes": cfg.DATASET.NUM_CLASSES, "recipe_crop": list(train_crop(cfg)),
           "recipe_batch_per_gpu": cfg.TRAIN.BATCH_SIZE_PER_GPU, "recipe_gpus": len(cfg.GPUS),
           "recipe_accumulate_steps": cfg.TRAIN.ACCUMULATE_STEPS,
           "crop": list(crop), "variant": variant.name,
           "checkpointing": checkpointing, "batch": batch,
           "saved_per_image_bytes": use.saved_per_image,
           "recompute_per_image_bytes": use.recompute_per_image,
           "parameter_copies_bytes": use.parameter_copies,
           "parameters_bytes": use.parameters.parameters,
           "gradients_bytes": use.parameters.gradients,
           "optimizer_state_bytes": use.parameters.optimizer_state,
           "cuda_peak_bytes": use.cuda_peak,
           "largest_batch": {f"{gb:g}": use.largest_batch(int(gb * GIB))
                             for gb in args.gpu_memory}}
    if variant.compile:
        reset_compiled()
    return row


def _crop_text(crop):
    return "x".join(map(str, crop))


def memory_table(rows, sizes_gb):
    headers = ["network", "dataset (classes)", "crop", "precision", "checkpointing",
               "saved GiB/image", "recompute GiB/image", "params+grads+opt GiB",
               "weight copies GiB", "CUDA peak GiB (batch)"] + \
        [f"batch @ {gb:g} GB" for gb in sizes_gb]
    lines = []
    for r in rows:
        fixed = r["parameters_bytes"] + r["gradients_bytes"] + r["optimizer_state_bytes"]
        peak = "n/a" if r["cuda_peak_bytes"] is None \
            else f"{r['cuda_peak_bytes'] / GIB:.2f} ({r['batch']})"
        lines.append([r["network"], f"{r['dataset']} ({r['classes']})", _crop_text(r["crop"]),
                      r["variant"], "on" if r["checkpointing"] else "off",
                      f"{r['saved_per_image_bytes'] / GIB:.3f}",
                      f"{r['recompute_per_image_bytes'] / GIB:.3f}", f"{fixed / GIB:.3f}",
                      f"{r['parameter_copies_bytes'] / GIB:.3f}", peak]
                     + [str(r["largest_batch"][f"{gb:g}"]) for gb in sizes_gb])
    return markdown_table(headers, lines)


def effective_batch(row):
    """The recipe's images per optimiser step: batch per GPU x GPUs x accumulation steps."""
    return row["recipe_batch_per_gpu"] * row["recipe_gpus"] * row["recipe_accumulate_steps"]


def one_gpu_settings(effective, largest):
    """``(TRAIN.BATCH_SIZE_PER_GPU, TRAIN.ACCUMULATE_STEPS)`` that train ``effective`` images
    per step on one GPU that fits ``largest`` images: the largest divisor of ``effective`` that
    fits, and the steps that make up the rest; None when not even one image fits."""
    if largest < 1:
        return None
    batch = max(b for b in range(1, min(largest, effective) + 1) if effective % b == 0)
    return batch, effective // batch


def settings_table(rows, sizes_gb):
    """What to type on one GPU of each size to train the recipe's effective batch."""
    headers = ["network", "dataset", "crop", "precision", "checkpointing", "recipe"] + \
        [f"{gb:g} GB" for gb in sizes_gb]
    lines = []
    for r in rows:
        recipe = (f"{r['recipe_batch_per_gpu']} x {r['recipe_gpus']} GPUs"
                  + (f" x {r['recipe_accumulate_steps']}" if r["recipe_accumulate_steps"] > 1
                     else "") + f" = {effective_batch(r)}")
        cells = []
        for gb in sizes_gb:
            settings = one_gpu_settings(effective_batch(r), r["largest_batch"][f"{gb:g}"])
            cells.append("does not fit" if settings is None else f"{settings[0]} x {settings[1]}")
        lines.append([r["network"], r["dataset"], _crop_text(r["crop"]), r["variant"],
                      "on" if r["checkpointing"] else "off", recipe] + cells)
    return markdown_table(headers, lines)


def settings_example(rows, sizes_gb):
    """The command line of the first row that fits, on the largest GPU size."""
    gb = max(sizes_gb)
    for r in rows:
        settings = one_gpu_settings(effective_batch(r), r["largest_batch"][f"{gb:g}"])
        if settings is not None:
            variant = VARIANTS[r["variant"]]
            flags = [word for key, on in (("TRAIN.AMP", variant.amp),
                                          ("TRAIN.CHANNELS_LAST", variant.channels_last),
                                          ("TRAIN.COMPILE", variant.compile),
                                          ("TRAIN.GRAD_CHECKPOINTING", r["checkpointing"]))
                     if on for word in (key, "True")]
            return (f"e.g. {r['network']} at {_crop_text(r['crop'])} on one {gb:g} GB GPU: "
                    "python " + shlex.join(["tools/train.py", "--cfg", r["config"], *flags,
                                            "TRAIN.BATCH_SIZE_PER_GPU", str(settings[0]),
                                            "TRAIN.ACCUMULATE_STEPS", str(settings[1])]))
    return f"not one image fits on {gb:g} GB in any row"


def memory_notes(rows):
    notes = ["saved GiB/image: distinct storages that autograd saves for backward in the forward "
             "and the loss (lib.utils.memory.saved_tensor_bytes), parameters and their copies "
             "left out",
             "recompute GiB/image: with checkpointing, what the largest recomputed segment "
             "saves (the backward holds it while it recomputes that segment)",
             "weight copies GiB: autocast's bf16 copies of the weights that the forward saves "
             "(and the largest recomputed segment makes again): once per step whatever the "
             "batch, like the weights",
             f"batch @ N GB: the largest B with params+grads+opt + weight copies + B x (saved + "
             f"recompute) <= N GB x {1 - FREE_SHARE:g} - {FREE_BYTES / GIB:g} GiB "
             f"(lib.engine.memory_use), an estimate; GB = 2^30 bytes"]
    for crop in dict.fromkeys(tuple(r["crop"]) for r in rows):
        crop_rows = [r for r in rows if tuple(r["crop"]) == crop]
        classes = sorted({(r["dataset"], r["classes"]) for r in crop_rows})
        foreign = sorted({_crop_text(r["recipe_crop"]) for r in crop_rows
                          if tuple(r["recipe_crop"]) != crop})
        notes.append(f"{_crop_text(crop)}: the {', '.join(f'{d} ({k} classes)' for d, k in classes)}"
                     f" recipes" + (f", whose own crop is {', '.join(foreign)} (H x W)"
                                    if foreign else ""))
    off = {(r["config"], tuple(r["crop"]), r["variant"]): r for r in rows
           if not r["checkpointing"]}
    for r in rows:
        base = off.get((r["config"], tuple(r["crop"]), r["variant"]))
        if r["checkpointing"] and base is not None:
            share = r["saved_per_image_bytes"] / base["saved_per_image_bytes"]
            notes.append(f"{r['network']} {_crop_text(r['crop'])} {r['variant']}: "
                         f"checkpointing keeps {share:.3f} of the saved bytes")
    return notes


def run_memory_mode(args, device):
    """``(header, table, notes, figures)`` of the memory benchmark."""
    variants = args.variants or (["fp32"] if device.type == "meta" else ["fp32", "bf16"])
    rows = []
    recipes = memory_recipes(args)
    for crop, configs in recipes:
        for path, cfg in configs:
            for variant in variants:
                for checkpointing in args.checkpointing:
                    rows.append(memory_row(path, cfg, args, device, crop, VARIANTS[variant],
                                           checkpointing))
    paths = dict.fromkeys(path for _, configs in recipes for path, _ in configs)
    header = {"device": device_name(device), "versions": versions(),
              "config": ", ".join(paths),
              "measured": "a full training step" if device.type == "cuda" else
              f"forward and loss on the {device.type} device; gradients and optimiser state "
              f"as the step will make them"}
    figures = {"rows": rows, "gpu_memory_gb": args.gpu_memory,
               "rule": {"free_share": FREE_SHARE, "free_bytes": FREE_BYTES}}
    table = "\n\n".join([
        memory_table(rows, args.gpu_memory),
        "What to type on one GPU for the recipe's effective batch: b x k = "
        "TRAIN.BATCH_SIZE_PER_GPU b TRAIN.ACCUMULATE_STEPS k (b the largest divisor of the "
        "effective batch that fits; recipe = batch per GPU x its GPUs = effective batch)",
        settings_table(rows, args.gpu_memory), settings_example(rows, args.gpu_memory)])
    return header, table, memory_notes(rows), figures


def missing_data_message(cfg):
    root = cfg.DATASET.ROOT
    return (f"no training data for the data benchmark: DATASET.ROOT {root} must hold "
            f"{cfg.DATASET.DATASET}/ and {cfg.DATASET.TRAIN_SET}.  Make a synthetic set with\n"
            f"  python tools/make_synthetic_dataset.py --root {root} --dataset "
            f"{cfg.DATASET.DATASET} --train 20 --val 2 --test 0 --size 1024 2048 --seed 0\n"
            f"or point DATASET.ROOT at the real data (see data/README.md).")


def endless_batches(loader, sampler):
    """Batches of the training loader, epoch after epoch, as the trainer sets the epochs."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def run_data_mode(cfg, args, device):
    """``(header, table, notes, figures)`` of the training DataLoader benchmark."""
    dataset = build_dataset(cfg, "train")
    loader, sampler = train_loader(dataset, cfg.TRAIN.BATCH_SIZE_PER_GPU, cfg.WORKERS,
                                   cfg.PIN_MEMORY and device.type == "cuda",
                                   max(cfg.TRAIN.SEED, 0), cfg.TRAIN.SHUFFLE)
    batches = endless_batches(loader, sampler)
    timing = Timing.of(time_calls(lambda: next(batches), args.iters, args.warmup, lambda: None))
    batches.close()
    memory, memory_kind = peak_memory_mb(torch.device("cpu"))
    batch, (width, height) = cfg.TRAIN.BATCH_SIZE_PER_GPU, cfg.TRAIN.IMAGE_SIZE
    header = {
        "device": device_name(device), "versions": versions(), "config": args.cfg,
        "dataset": f"{cfg.DATASET.DATASET}, {len(dataset)} samples of {dataset.list_file}",
        "batch": f"{batch} crops of {height}x{width} (H x W) per batch",
        "loader": f"{cfg.WORKERS} workers, pin_memory {loader.pin_memory}",
        "iterations": f"{args.warmup} warm-up + {args.iters} timed batches",
    }
    row = {"variant": f"train loader, {cfg.WORKERS} workers",
           "samples_per_s": batch / (timing.mean / 1e3), "ms_mean": timing.mean,
           "ms_median": timing.median, "ms_p90": timing.p90, "peak_mem_mb": memory,
           "memory": f"{memory_kind}, main process"}
    table = markdown_table(
        ["loader", "samples/s", "ms/batch mean", "median", "p90", "peak mem MB"],
        [[row["variant"], f"{row['samples_per_s']:.2f}", f"{row['ms_mean']:.1f}",
          f"{row['ms_median']:.1f}", f"{row['ms_p90']:.1f}", f"{row['peak_mem_mb']:.0f}"]])
    notes = [f"peak mem: {row['memory']} (MB); ms/batch = time waiting for the next batch"]
    figures = {"batch": batch, "image_hw": [int(height), int(width)], "workers": cfg.WORKERS,
               "samples": len(dataset), "rows": [row]}
    return header, table, notes, figures


def report(mode, header, table, notes, figures, json_path):
    print(f"## tools/benchmark.py --mode {mode}")
    for key, value in header.items():
        print(f"{key + ':':<18}{value}")
    print()
    print(table)
    print()
    for note in notes:
        print(note)
    if json_path:
        write_json(json_path, {"mode": mode, "header": header, **figures})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cfg = load_cfg(args.cfg or CITYSCAPES_RECIPES[0], args.opts)
    try:
        device = select_device(args.device)
    except RuntimeError as e:
        raise SystemExit(f"--device {args.device}: {e}") from None
    configure_cudnn(cfg.CUDNN)
    command = "python " + shlex.join(["tools/benchmark.py", *argv])
    if args.mode == "memory":
        header, table, notes, figures = run_memory_mode(args, device)
    elif args.mode == "data":
        if not os.path.isfile(os.path.join(cfg.DATASET.ROOT, cfg.DATASET.TRAIN_SET)):
            print(missing_data_message(cfg), file=sys.stderr)
            return 2
        try:
            header, table, notes, figures = run_data_mode(cfg, args, device)
        except DatasetError as e:
            print(f"{e}\n{missing_data_message(cfg)}", file=sys.stderr)
            return 2
    elif args.mode == "checkpointing":
        header, table, notes, figures = run_checkpointing_mode(cfg, args, device)
    elif args.mode == "analysis":
        header, table, notes, figures = run_analysis_mode(cfg, args, device)
    else:
        header, table, notes, figures = run_model_modes(cfg, args, device)
    header["command"] = command
    report(args.mode, header, table, notes, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
