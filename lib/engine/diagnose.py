"""The offset network looked at from inside (``tools/diagnose_offsets.py``): where its seeds
point on the validation set, how much seed gathering could fix at best, and the gradient each
loss term sends into the trunk it shares with the class head.  Measures are defined in
``lib.evaluation.offset_diagnostics``."""
import json
import logging
import os

import torch
import torch.nn.functional as F

from ..datasets import build_dataset, dataset_tables
from ..datasets.loaders import eval_loader
from ..evaluation.offset_diagnostics import (
    fixable_share,
    seed_measures,
    seed_summary,
    shared_trunk_parameters,
    term_gradients,
)
from ..evaluation.predictions import label_size_offsets
from ..evaluation.results import upgrade
from ..models import build_eval_model, build_model, input_normalization
from ..models.losses import build_criterion
from .launch import seed_everything

__all__ = ["diagnose", "diagnostics_table", "read_validation_records", "FIXABLE_RADII"]

logger = logging.getLogger(__name__)

# Square radii (pixels of the label map) of the "fixable" oracle, besides the offset threshold.
FIXABLE_RADII = (1, 2, 4, 8, 16)


def _network(cfg, weights, device):
    """The network of ``weights`` ("" = as initialised with TRAIN.SEED, no pretrained file)."""
    if weights:
        return build_eval_model(cfg, weights, device)
    seed_everything(cfg.TRAIN.SEED)
    return build_model(cfg, load_pretrained=False).to(device).eval()


@torch.no_grad()
def _validation_measures(network, cfg, device):
    """Seed measures of the offset field (None for a baseline) and the fixable shares of S_i,
    summed over the validation set."""
    dataset = build_dataset(cfg, "val", normalization=input_normalization(network))
    loader = eval_loader(dataset, cfg.TEST.BATCH_SIZE_PER_GPU, 0, False)
    threshold = float(cfg.MODEL.EXTRA.OFFSET_THRESHOLD)
    sums, fixable, wrong = {}, {}, 0.0
    for images, labels, *_ in loader:
        images, labels = images.to(device), labels.to(device)
        output = network(images)
        size = labels.shape[-2:]
        h, w = size
        # The threshold's reach in pixels of the label map, as ``offsets_to_pixels`` scales.
        reach = (threshold * (w - 1) / 2, threshold * (h - 1) / 2)
        logits = F.interpolate(output.logits.float(), size=size, mode="bilinear",
                               align_corners=cfg.MODEL.ALIGN_CORNERS)
        pred = logits.argmax(dim=1)
        radii = {f"{r}px": (r, r) for r in FIXABLE_RADII}
        radii["threshold"] = (round(reach[1]), round(reach[0]))
        for name, radius in radii.items():
            count, wrong_here = fixable_share(pred, labels, dataset.num_classes, radius,
                                              dataset.ignore_label)
            fixable[name] = fixable.get(name, 0.0) + float(count)
        wrong += float(wrong_here)  # the same for every radius: S_i's errors of the batch
        if output.offsets is not None:
            maps = label_size_offsets(output, size, cfg.MODEL.ALIGN_CORNERS)
            batch = seed_measures(maps["offsets"], maps["confidence"], labels, reach,
                                  dataset.ignore_label)
            for key, value in batch.items():
                sums[key] = sums.get(key, 0.0) + float(value)
    result = {"S_i_wrong_pixels": wrong,
              "fixable": {k: (v / wrong if wrong else None) for k, v in fixable.items()},
              "threshold_px": {"x": reach[0], "y": reach[1]}}
    if sums:
        result["seeds"] = seed_summary(sums)
    return result


def _gradient_measures(network, cfg, device, batches):
    """Term gradients on the shared trunk, averaged over ``batches`` training batches (the
    training transform, seeded with TRAIN.SEED), the network in training mode on a copy of
    its batch-norm statistics (nothing of it is kept)."""
    dataset = build_dataset(cfg, "train", normalization=input_normalization(network))
    generator = torch.Generator().manual_seed(max(cfg.TRAIN.SEED, 0))
    order = torch.randperm(len(dataset), generator=generator).tolist()
    size = cfg.TRAIN.BATCH_SIZE_PER_GPU
    weights = dataset_tables(cfg).class_weight_table if cfg.LOSS.CLASS_BALANCE else None
    criterion = build_criterion(cfg, weights).to(device)
    state = {k: v.clone() for k, v in network.state_dict().items()}
    network.train()
    totals = {}
    try:
        for b in range(batches):
            items = [dataset[i] for i in order[b * size:(b + 1) * size]]
            images = torch.stack([torch.as_tensor(it[0]) for it in items]).to(device)
            labels = torch.stack([torch.as_tensor(it[1]) for it in items]).to(device)
            params = [p for _, p in shared_trunk_parameters(network, images)]
            for term, values in term_gradients(network, criterion, images, labels,
                                               params).items():
                entry = totals.setdefault(term, {"norm": [], "cos_seg": []})
                entry["norm"].append(values["norm"])
                if values["cos_seg"] is not None:
                    entry["cos_seg"].append(values["cos_seg"])
    finally:
        network.load_state_dict(state)
        network.eval()
    return {term: {key: (sum(v) / len(v) if v else None) for key, v in entry.items()}
            for term, entry in totals.items()}


def diagnose(cfg, weights: str, device, gradient_batches: int = 4) -> dict:
    """{"weights", "validation": seed and fixable measures, "gradients": per-term gradient
    norms and cosines on the shared trunk (offset networks only)} of the network in
    ``weights`` ("" = as initialised)."""
    network = _network(cfg, weights, device)
    result = {"weights": weights or "initialisation",
              "validation": _validation_measures(network, cfg, device)}
    if hasattr(network, "offset_settings") and gradient_batches > 0:
        result["gradients"] = _gradient_measures(network, cfg, device, gradient_batches)
    logger.info("diagnosed %s", result["weights"])
    return result


def diagnostics_table(results) -> str:
    """Markdown: one column a diagnosed network, one row a measure (shares in %)."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    def num(v):
        return "-" if v is None else f"{v:.3g}"

    rows = []
    first = results[0]["validation"]
    for key in first["fixable"]:
        rows.append((f"S_i errors fixable within {key} (%)",
                     [pct(r["validation"]["fixable"].get(key)) for r in results]))
    for key in (first.get("seeds") or {}):
        fmt = num if key.startswith("mean_length") else pct
        rows.append((f"seeds: {key}" + ("" if fmt is num else " (%)"),
                     [fmt((r["validation"].get("seeds") or {}).get(key)) for r in results]))
    for term in (results[0].get("gradients") or {}):
        rows.append((f"grad norm on shared trunk: {term}",
                     [num(r.get("gradients", {}).get(term, {}).get("norm")) for r in results]))
        rows.append((f"grad cosine with seg: {term}",
                     [num(r.get("gradients", {}).get(term, {}).get("cos_seg"))
                      for r in results]))
    header = ["measure", *(os.path.basename(r["weights"]) if r["weights"] != "initialisation"
                           else "initialisation" for r in results)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] *
                                                              len(results)) + "|"]
    lines += ["| " + " | ".join([name, *values]) + " |" for name, values in rows]
    return "\n".join(lines) + "\n"


def read_validation_records(run_dir: str) -> list[dict]:
    """The validation records of a run (``Validator``: ``<run_dir>/validation/iter<k>.json``),
    in order of iteration, in the current layout (``lib.evaluation.results.upgrade``)."""
    folder = os.path.join(run_dir, "validation")
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith("iter")
                       and n.endswith(".json"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} does not exist: train with TRAIN.EVAL_INTERVAL > 0 "
                                f"to record validations") from None
    records = []
    for name in names:
        with open(os.path.join(folder, name)) as f:
            records.append(upgrade(json.load(f)))
    return records
