"""The train, infer and eval modes: one row per variant of the network's time per iteration,
throughput, peak memory and achieved FLOP/s.

- train: the trainer's own ``lib.engine.step.train_step`` on one fixed random batch (every
  micro-batch of TRAIN.ACCUMULATE_STEPS), and one more, profiled step: the GPU kernels per step
  and the time of OHEM's selection;
- infer: ``forward_logits`` (network and resize of the logits to the input) of a fixed batch;
- eval: the reference procedure ``predict`` of one image, alternating in every iteration with
  the same network inputs as bare forwards: procedure time / forwards time.
"""
import statistics

import torch

from ...config import amp_dtype_of
from ...evaluation.protocols import InferenceSettings, forward_logits, predict
from ...models import input_normalization
from ...utils.compat import reset_compiled
from ...utils.precision import autocast
from ...utils.profiling import (
    ShapeRecorder,
    Timing,
    device_name,
    markdown_table,
    peak_memory_mb,
    peak_tflops,
    precision_of,
    profile_call,
    reset_memory,
    time_interleaved,
)
from .bench import Bench, random_images
from .variants import row_settings, variant_cfg, variant_names

__all__ = ["run_model_modes", "SELECTION_OP"]

# The selection of OHEM (lib.models.losses.OhemCrossEntropy), timed in a profiled training step.
SELECTION_OP = "aten::kthvalue"


def measure_train(bench, cfg):
    """``train_step`` of the trainer on one fixed random batch."""
    parts, run = bench.train_parts(cfg)
    bench.count_once(lambda: run(parts.network))
    timing = bench.timing(lambda: run(parts.model))
    return {"timing": timing, "profile": profile_call(lambda: run(parts.model), bench.device,
                                                      ops=(SELECTION_OP,))}


def measure_infer(bench, cfg):
    """``forward_logits`` of a fixed random batch (network and resize to the input)."""
    net, bare = bench.network(cfg)
    images = random_images(bench.batch, bench.hw, bench.device, bench.seed)
    align_corners, dtype = cfg.MODEL.ALIGN_CORNERS, amp_dtype_of(cfg)

    def run(model):
        forward_logits(model, images, align_corners=align_corners, amp_dtype=dtype)

    bench.count_once(lambda: run(bare))
    return {"timing": bench.timing(lambda: run(net))}


def measure_eval(bench, cfg):
    """``predict`` of one random image, then the same network inputs as bare forwards."""
    net, bare = bench.network(cfg)
    image = random_images(1, bench.hw, bench.device, bench.seed)
    settings = InferenceSettings.from_config(cfg, input_normalization(bare))
    bench.count_once(lambda: predict(bare, image, settings))
    recorder = ShapeRecorder(net)
    predict(recorder, image, settings)
    inputs = [random_images(s[0], s[2:], bench.device, bench.seed) for s in recorder.shapes]

    def bare_forwards():
        with torch.inference_mode(), autocast(bench.device, settings.amp_dtype):
            for x in inputs:
                net(x)

    procedure, forwards = time_interleaved([lambda: predict(net, image, settings),
                                            bare_forwards], bench.settings.iters,
                                           bench.settings.warmup, bench.sync)
    ratios = [p / f for p, f in zip(procedure, forwards, strict=True)]
    return {"timing": Timing.of(procedure), "forwards": Timing.of(forwards),
            "procedure_over_forwards": statistics.median(ratios),
            "procedure_ms_each": [1e3 * t for t in procedure],
            "forwards_ms_each": [1e3 * t for t in forwards],
            "forward_shapes": [list(s) for s in recorder.shapes]}


_MEASURES = {"train": measure_train, "infer": measure_infer, "eval": measure_eval}


def variant_row(bench, variant, checkpointing=None):
    """The figures of ``variant`` (and TRAIN.GRAD_CHECKPOINTING ``checkpointing``, None: the
    config's)."""
    reset_memory(bench.device)
    cfg = variant_cfg(bench.cfg, variant, checkpointing)
    mode = bench.settings.mode
    result = _MEASURES[mode](bench, cfg)
    memory, memory_kind = peak_memory_mb(bench.device)
    timing = result.pop("timing")
    checkpointing = mode == "train" and cfg.TRAIN.GRAD_CHECKPOINTING
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
    """The peak TFLOP/s of the device ``name`` in each row's precision, the % of it achieved and
    the speed-up over the first row, added to ``rows``."""
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


def run_model_modes(cfg, settings, device):
    """``(header, table, notes, figures)`` of the train, infer or eval benchmark."""
    bench = Bench(cfg, settings, device)
    name = device_name(device)
    variants = variant_names(settings.variants, device)
    rows_of, refused = row_settings(variants, settings.checkpointing, cfg)
    rows = [variant_row(bench, variant, checkpointing) for variant, checkpointing in rows_of]
    add_peaks(rows, name, settings.peak_tflops)
    figures = {"parameters": bench.parameters, "batch": bench.batch, "image_hw": list(bench.hw),
               "flops_per_iter": bench.flops, "rows": rows}
    return (bench.header(name), model_table(rows, settings.mode),
            model_notes(rows, bench.flops, settings.mode) + refused, figures)
