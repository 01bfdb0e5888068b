"""The data mode: samples/s of the trainer's training DataLoader (``lib.datasets.loaders``:
WORKERS, TrainSampler, seeded workers, pinned memory on CUDA) on DATASET.ROOT."""
import os

import torch

from ...datasets import DatasetError, build_dataset
from ...datasets.loaders import train_loader
from ...utils.profiling import (
    Timing,
    device_name,
    markdown_table,
    peak_memory_mb,
    time_calls,
    versions,
)

__all__ = ["run_data_mode", "MissingDataError"]


class MissingDataError(DatasetError):
    """No training data for the data mode; the message says how to make some."""


def missing_data_message(cfg):
    """What to do when DATASET.ROOT holds no training data: make a synthetic set, or link the
    real one."""
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


def run_data_mode(cfg, settings, device):
    """``(header, table, notes, figures)`` of the training DataLoader benchmark.  Raises
    ``MissingDataError`` when DATASET.ROOT has no readable training data."""
    if not os.path.isfile(os.path.join(cfg.DATASET.ROOT, cfg.DATASET.TRAIN_SET)):
        raise MissingDataError(missing_data_message(cfg))
    try:
        return _measure_loader(cfg, settings, device)
    except DatasetError as e:
        raise MissingDataError(f"{e}\n{missing_data_message(cfg)}") from e


def _measure_loader(cfg, settings, device):
    dataset = build_dataset(cfg, "train")
    loader, sampler = train_loader(dataset, cfg.TRAIN.BATCH_SIZE_PER_GPU, cfg.WORKERS,
                                   cfg.PIN_MEMORY and device.type == "cuda",
                                   max(cfg.TRAIN.SEED, 0), cfg.TRAIN.SHUFFLE)
    batches = endless_batches(loader, sampler)
    timing = Timing.of(time_calls(lambda: next(batches), settings.iters, settings.warmup,
                                  lambda: None))
    batches.close()
    memory, memory_kind = peak_memory_mb(torch.device("cpu"))
    batch, (width, height) = cfg.TRAIN.BATCH_SIZE_PER_GPU, cfg.TRAIN.IMAGE_SIZE
    header = {
        "device": device_name(device), "versions": versions(), "config": settings.config_file,
        "dataset": f"{cfg.DATASET.DATASET}, {len(dataset)} samples of {dataset.list_file}",
        "batch": f"{batch} crops of {height}x{width} (H x W) per batch",
        "loader": f"{cfg.WORKERS} workers, pin_memory {loader.pin_memory}",
        "iterations": f"{settings.warmup} warm-up + {settings.iters} timed batches",
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
