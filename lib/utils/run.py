"""What every tool does first: output folders, device, seeding, cuDNN flags."""
import logging
import os
import random

import numpy as np
import torch

from ..config import load_cfg
from . import distributed as dist

logger = logging.getLogger(__name__)


def init_process(cfg_path, opts, local_rank_arg=None):
    """``(cfg, device, rank, world_size)`` of this process, in the launcher's process group.

    The ranks come from the launcher's environment; ``local_rank_arg`` (``--local-rank`` of
    torch.distributed.launch) is used only when LOCAL_RANK is not set.
    """
    rank, local_rank, world_size = dist.launcher_env()
    if local_rank_arg is not None and "LOCAL_RANK" not in os.environ:
        local_rank = local_rank_arg
    cfg = load_cfg(cfg_path, opts)
    device = select_device(local_rank)
    dist.init_distributed(device.type)
    return cfg, device, rank, world_size


class RunError(RuntimeError):
    """A run that cannot start; the message names the setting or path at fault."""


def run_dirs(cfg, cfg_path):
    """``(OUTPUT_DIR/<dataset>/<config name>, LOG_DIR/<dataset>/<config name>)``."""
    name = os.path.splitext(os.path.basename(cfg_path))[0] if cfg_path else "default"
    return (os.path.join(cfg.OUTPUT_DIR, cfg.DATASET.DATASET, name),
            os.path.join(cfg.LOG_DIR, cfg.DATASET.DATASET, name))


def make_writable_dir(path, key):
    """Create ``path`` and check that a file can be written there; ``key`` names the setting."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write_test{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise RunError(f"{key}: cannot write to folder {path}: {e.strerror or e}") from None
    return path


def select_device(local_rank):
    """``cuda:<local_rank>`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def configure_cudnn(cudnn_cfg):
    torch.backends.cudnn.benchmark = cudnn_cfg.BENCHMARK
    torch.backends.cudnn.deterministic = cudnn_cfg.DETERMINISTIC
    torch.backends.cudnn.enabled = cudnn_cfg.ENABLED


def seed_everything(seed):
    """Seed python, numpy and torch (all devices); a negative seed leaves them unseeded."""
    if seed < 0:
        return
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def amp_dtype(enabled):
    """bf16 when mixed precision is on, else None (fp32)."""
    return torch.bfloat16 if enabled else None


def autocast(device, dtype):
    """Autocast context for ``device`` in ``dtype``; a no-op context when dtype is None."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)
