"""The analysis mode: what the evaluation's analysis (``SegAccumulator``: trimap bands,
Boundary IoU, fusion counts of every prediction) costs beside the forward, single scale (the
costliest case: multi-scale testing runs several forwards for one analysis), on a batch of random
images at TEST.IMAGE_SIZE: the median time of each stage, in ms per image and % of the forward."""
import statistics

import torch
import torch.nn.functional as F

from ...config import amp_dtype_of
from ...evaluation.accumulator import MeasureSettings, SegAccumulator
from ...evaluation.predictions import label_size_inputs, output_predictions
from ...utils.precision import autocast
from ...utils.profiling import device_name, markdown_table, time_stages
from .bench import Bench, random_images, random_labels
from .variants import VARIANTS, variant_cfg

__all__ = ["run_analysis_mode"]


def final_labels(output, size, align_corners):
    """What an evaluation without the analysis does: ``.final`` resized to the label size, then
    its argmax."""
    return F.interpolate(output.final.float(), size=size, mode="bilinear",
                         align_corners=align_corners).argmax(dim=1)


def run_analysis_mode(cfg, settings, device):
    """``(header, table, notes, figures)``: the stages of an evaluation's iteration with the
    analysis, for the first variant of ``settings``."""
    bench = Bench(cfg, settings, device)
    variant = VARIANTS[(settings.variants or ["fp32"])[0]]
    vcfg = variant_cfg(cfg, variant)
    model, _ = bench.network(vcfg)
    images = random_images(bench.batch, bench.hw, device, bench.seed)
    labels = random_labels(bench.batch, bench.hw, cfg.DATASET.NUM_CLASSES,
                           cfg.TRAIN.IGNORE_LABEL, device, bench.seed)
    align, dtype = cfg.MODEL.ALIGN_CORNERS, amp_dtype_of(vcfg)

    def iteration(stage):
        with autocast(device, dtype):
            output = stage("forward", model, images)
        stage("final", final_labels, output, bench.hw, align)
        inputs = stage("predictions", label_size_inputs, output, bench.hw, align)
        stage("analysis", analysis.update, inputs["preds"], labels, offsets=inputs["offsets"],
              confidence=inputs["confidence"])

    with torch.inference_mode():
        predictions = output_predictions(model(images[:1]))
        analysis = SegAccumulator(cfg.DATASET.NUM_CLASSES, predictions,
                                  measures=MeasureSettings.from_config(cfg), device=device)
        times = time_stages(iteration, settings.iters, settings.warmup, bench.sync)
    ms = {name: 1e3 * statistics.median(values) / bench.batch for name, values in times.items()}
    lines = [("forward", ms["forward"]), ("final prediction resize + argmax", ms["final"]),
             ("every prediction (inputs) - final", ms["predictions"] - ms["final"]),
             ("analysis update", ms["analysis"]),
             ("added: inputs - final + update", ms["predictions"] - ms["final"] + ms["analysis"])]
    table = markdown_table(["stage", "ms/image", "% of the forward"],
                           [[n, f"{v:.1f}", f"{100 * v / ms['forward']:.1f}"] for n, v in lines])
    header = bench.header(device_name(device))
    header["predictions"] = ", ".join(predictions)
    notes = [f"variant {variant.name}; median of {settings.iters} iterations after "
             f"{settings.warmup}; final: what evaluation does without the analysis; every "
             "prediction (inputs): all predictions resized to the label size and reduced to their "
             "argmax, offsets and confidence resized "
             "(lib.evaluation.predictions.label_size_inputs); analysis update: "
             "confusion matrices by trimap band, Boundary IoU, the fusion split and histograms"]
    return header, table, notes, {"batch": bench.batch, "image_hw": list(bench.hw),
                                  "ms_per_image": ms, "predictions": predictions}
