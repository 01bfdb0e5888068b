"""Throughput, latency, peak memory and FLOP utilisation of a configured network
(``tools/benchmark.py``; its help describes every mode).

``run_benchmark(settings, device)`` runs the mode of ``settings`` (a ``BenchSettings``) and
returns a ``BenchReport``.  One module a concern: ``bench`` (settings, random inputs, the set-up
the modes that time a network share), ``variants`` (precision, memory format, compile),
``model_modes`` (train, infer, eval), ``checkpointing_mode``, ``analysis_mode``, ``memory_mode``
and its ``memory_tables``, ``data_mode``, and ``report`` (the printed page and the record).
"""
from ...config import load_cfg
from ..launch import configure_cudnn
from .analysis_mode import run_analysis_mode
from .bench import BenchSettings
from .checkpointing_mode import run_checkpointing_mode
from .data_mode import MissingDataError, run_data_mode
from .memory_mode import ADE20K_RECIPES, CITYSCAPES_RECIPES, run_memory_mode
from .model_modes import run_model_modes
from .report import BenchReport
from .variants import DEFAULT_VARIANTS, VARIANTS

__all__ = ["run_benchmark", "BenchSettings", "BenchReport", "MissingDataError", "MODES",
           "VARIANTS", "DEFAULT_VARIANTS", "CITYSCAPES_RECIPES", "ADE20K_RECIPES"]

# Every mode, in the order of the help: (cfg, settings, device) -> (header, table, notes,
# figures).  The memory mode loads its recipes itself (without an experiment file, several).
_RUNS = {"train": run_model_modes, "infer": run_model_modes, "eval": run_model_modes,
         "data": run_data_mode,
         "memory": lambda _cfg, settings, device: run_memory_mode(settings, device),
         "checkpointing": run_checkpointing_mode, "analysis": run_analysis_mode}
MODES = tuple(_RUNS)


def run_benchmark(settings, device):
    """``BenchReport`` of the mode of ``settings`` on ``device``.  cuDNN is configured from the
    experiment file (without one, the first Cityscapes W48 recipe's).  The data mode raises
    ``MissingDataError``, with how to make data, when DATASET.ROOT has none."""
    cfg = load_cfg(settings.config_file or CITYSCAPES_RECIPES[0], settings.opts)
    configure_cudnn(cfg.CUDNN)
    return BenchReport(settings.mode, *_RUNS[settings.mode](cfg, settings, device))
