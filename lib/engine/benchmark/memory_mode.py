"""The memory mode: what a training step keeps in memory (``lib.engine.memory_use``), for every
crop, precision and TRAIN.GRAD_CHECKPOINTING setting, with the largest batch per GPU of each
memory size and what to type on one GPU to train the recipe's effective batch.  Without an
experiment file: the W48 recipes of the four networks, each crop with the recipes whose crop it
is (520x520: the ADE20K recipes), else the Cityscapes ones."""
import torch

from ...config import load_cfg
from ...utils.compat import reset_compiled
from ...utils.memory import GIB
from ...utils.profiling import device_name, reset_memory, versions
from ..build import build_step_parts
from ..memory_use import FREE_BYTES, FREE_SHARE, measure_step_memory
from .bench import random_images, random_labels
from .memory_tables import memory_notes, memory_table, settings_example, settings_table
from .variants import VARIANTS, variant_cfg

__all__ = ["CITYSCAPES_RECIPES", "ADE20K_RECIPES", "memory_recipes", "run_memory_mode"]

# The memory mode without an experiment file: the W48 networks of the paper at their recipes'
# crops: the Cityscapes recipes (HRNetV2, HRNet-OCR, the offset network, OVeNet-OCR; 512x1024,
# also measured at 1024x1024) and the ADE20K ones (520x520, 150 classes; the offset network has
# an ADE20K recipe with OCR only).
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


def train_crop(cfg):
    """TRAIN.IMAGE_SIZE as (H, W)."""
    width, height = cfg.TRAIN.IMAGE_SIZE
    return int(height), int(width)


def memory_recipes(config_file, opts, crops):
    """``[(crop, [(path, cfg), ...]), ...]``: the configs each crop (H, W) of ``crops`` is
    measured with: ``config_file`` (with the KEY VALUE overrides ``opts``) for every crop;
    without it, the recipes whose crop it is (the ADE20K ones at 520x520), else the Cityscapes
    ones."""
    if config_file:
        cfg = load_cfg(config_file, opts)
        return [(crop, [(config_file, cfg)]) for crop in crops]
    sets = [[(path, load_cfg(path, opts)) for path in paths]
            for paths in (CITYSCAPES_RECIPES, ADE20K_RECIPES)]
    return [(crop, next((recipes for recipes in sets
                         if all(train_crop(cfg) == crop for _, cfg in recipes)), sets[0]))
            for crop in crops]


def memory_row(path, cfg, settings, device, crop, variant, checkpointing):
    """One row of the memory table: a training step of ``cfg`` (from ``path``) at ``crop``
    (H, W)."""
    cfg = variant_cfg(cfg, variant, checkpointing)
    seed = max(cfg.TRAIN.SEED, 0)
    torch.manual_seed(seed)
    reset_memory(device)
    parts = build_step_parts(cfg, device, load_pretrained=False)
    batch = settings.batch or 1
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
                             for gb in settings.gpu_memory}}
    if variant.compile:
        reset_compiled()
    return row


def run_memory_mode(settings, device):
    """``(header, table, notes, figures)`` of the memory benchmark."""
    variants = settings.variants or (["fp32"] if device.type == "meta" else ["fp32", "bf16"])
    rows = []
    recipes = memory_recipes(settings.config_file, settings.opts, settings.crops)
    for crop, configs in recipes:
        for path, cfg in configs:
            for variant in variants:
                for checkpointing in settings.checkpointing:
                    rows.append(memory_row(path, cfg, settings, device, crop, VARIANTS[variant],
                                           checkpointing))
    paths = dict.fromkeys(path for _, configs in recipes for path, _ in configs)
    header = {"device": device_name(device), "versions": versions(),
              "config": ", ".join(paths),
              "measured": "a full training step" if device.type == "cuda" else
              f"forward and loss on the {device.type} device; gradients and optimiser state "
              f"as the step will make them"}
    figures = {"rows": rows, "gpu_memory_gb": settings.gpu_memory,
               "rule": {"free_share": FREE_SHARE, "free_bytes": FREE_BYTES}}
    table = "\n\n".join([
        memory_table(rows, settings.gpu_memory),
        "What to type on one GPU for the recipe's effective batch: b x k = "
        "TRAIN.BATCH_SIZE_PER_GPU b TRAIN.ACCUMULATE_STEPS k (b the largest divisor of the "
        "effective batch that fits; recipe = batch per GPU x its GPUs = effective batch)",
        settings_table(rows, settings.gpu_memory), settings_example(rows, settings.gpu_memory)])
    return header, table, memory_notes(rows), figures
