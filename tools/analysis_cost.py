"""What the evaluation's analysis (lib.evaluation.SegAnalysis) costs next to the network forward.

    python tools/analysis_cost.py --cfg <yaml> [--size H W] [--batch N] [--iters I]
        [--threads T] [--device cpu|cuda] [KEY VALUE ...]

The configured network (random weights: the cost does not depend on them) runs on random images
of H x W; the labels are blocky regions with 5% ignored pixels.  Per iteration, each of these is
timed on the same batch (median over ``--iters`` after one warm-up):

  forward    ``model(images)``: what every evaluation pays;
  final      resize of ``.final`` to the label size and its argmax: what evaluation does today;
  heads      ``label_size_inputs``: every head resized and reduced to its argmax (the final
             head's among them), offsets and confidence resized; what it adds is this less
             "final";
  analysis   ``SegAnalysis.update`` of every head: confusion matrices by trimap band, Boundary
             IoU, the fusion split and histograms (TEST.TRIMAP_BANDS, TEST.BOUNDARY_IOU_RATIO).

Percentages are of the forward.  Multi-scale and flip testing run several forwards per image for
one analysis, so single scale (this script) is the costliest case.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lib.config import load_cfg
from lib.evaluation.analysis import SegAnalysis
from lib.evaluation.heads import label_size_inputs, output_heads
from lib.models import build_model
from tools.cli import run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=(1024, 2048))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads on the CPU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_args(argv)


def blocky_labels(n, h, w, num_classes, generator):
    coarse = torch.randint(0, num_classes, (n, 1, max(1, h // 32), max(1, w // 32)),
                           generator=generator)
    labels = F.interpolate(coarse.float(), size=(h, w), mode="nearest").long()[:, 0]
    labels[torch.rand(labels.shape, generator=generator) < 0.05] = 255
    return labels


def timed(device, fn, *args, **kwargs):
    """(seconds, fn(*args, **kwargs)), waiting for the device before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def final_prediction(output, size, align_corners):
    """What evaluation does today: ``.final`` resized to the label size, then its argmax."""
    return F.interpolate(output.final.float(), size=size, mode="bilinear",
                         align_corners=align_corners).argmax(dim=1)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_cfg(args.cfg, args.opts)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    h, w = args.size
    model = build_model(cfg, load_pretrained=False).to(device).eval()
    images = torch.randn(args.batch, 3, h, w, generator=generator).to(device)
    labels = blocky_labels(args.batch, h, w, cfg.DATASET.NUM_CLASSES, generator).to(device)
    align = cfg.MODEL.ALIGN_CORNERS
    times = {"forward": [], "final": [], "heads": [], "analysis": []}
    with torch.inference_mode():
        heads = output_heads(model(images[:1]))
        analysis = SegAnalysis(cfg.DATASET.NUM_CLASSES, heads, bands=cfg.TEST.TRIMAP_BANDS,
                               boundary_ratio=cfg.TEST.BOUNDARY_IOU_RATIO, device=device)
        for i in range(args.iters + 1):
            forward, output = timed(device, model, images)
            final, _ = timed(device, final_prediction, output, (h, w), align)
            every, inputs = timed(device, label_size_inputs, output, (h, w), align)
            counted, _ = timed(device, analysis.update, inputs["preds"], labels,
                               offsets=inputs["offsets"], confidence=inputs["confidence"])
            if i:  # the first iteration warms up
                for name, value in zip(times, (forward, final, every, counted), strict=True):
                    times[name].append(value)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{cfg.MODEL.NAME} ({os.path.basename(args.cfg)}), batch {args.batch} x {h} x {w}, "
          f"{cfg.DATASET.NUM_CLASSES} classes, heads {heads}, {args.device}, "
          f"{torch.get_num_threads()} thread(s), median of {args.iters}")
    extra_heads = median["heads"] - median["final"]
    for name, value in (("forward", median["forward"]), ("final head resize + argmax",
                                                          median["final"]),
                        ("every head (inputs) - final", extra_heads),
                        ("analysis update", median["analysis"]),
                        ("added: inputs - final + update", extra_heads + median["analysis"])):
        print(f"  {name:30s} {1000 * value / args.batch:10.1f} ms/image "
              f"{100 * value / median['forward']:7.1f} % of the forward")


if __name__ == "__main__":
    sys.exit(run(main))
