"""Process set-up of every tool: config, device, process group, threads, output folders, seeding,
cuDNN flags."""
import contextlib
import logging
import os
import random
import signal

import numpy as np
import torch

from ..config import load_cfg
from ..utils import distributed as dist
from ..utils.device import select_device
from ..utils.errors import RunError
from ..utils.logger import log_ending_error

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
    configure_threads(cfg.WORKERS, int(os.environ.get("LOCAL_WORLD_SIZE", world_size)))
    device = select_device(local_rank=local_rank)
    dist.init_distributed(device.type)
    return cfg, device, rank, world_size


@contextlib.contextmanager
def launched(cfg_path, opts, local_rank_arg=None):
    """``with launched(...) as (cfg, device, rank, world_size):`` ``init_process``, and the
    process group torn down at the end, whatever happens inside: after an exception it is
    aborted (``dist.abort``), so that this rank exits even while the others wait in a
    collective it will not join.  The exception that ends the run (not an exit) also goes to
    the run's log file, with its traceback (``log_ending_error``)."""
    try:
        yield init_process(cfg_path, opts, local_rank_arg)
    except BaseException as e:
        if not isinstance(e, SystemExit):
            log_ending_error(e)
        dist.abort()
        raise
    finally:
        dist.cleanup()


@contextlib.contextmanager
def stop_on_sigterm(request_stop):
    """``with stop_on_sigterm(trainer.request_stop):`` a SIGTERM (a scheduler's pre-emption,
    which torchrun passes on to its workers) calls ``request_stop()`` instead of ending the
    process: the trainer saves a checkpoint at its next check, returns, and the process exits 0.

    When the block ends with an error after a SIGTERM, no checkpoint could be saved: typically
    torchrun's agent is ending the survivors of a rank that died before it restarts the group,
    and their next collective failed.  The error is logged and the process then ends by the
    SIGTERM it received, at once, as it would have without the handler and as the launcher
    expects of the workers it stops (no clean-up that could wait on the dead rank).  Outside the
    block SIGTERM has its previous action again.
    """
    received = []

    def handler(signum, frame):
        received.append(signum)
        request_stop()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except Exception:
        if received:
            logger.exception("the run failed after a SIGTERM, before it could save; ending by "
                             "that signal")
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def intra_op_threads(workers, processes_per_node, cores):
    """Threads of torch's intra-op pool: this process's share of ``cores`` less one per loader
    worker, at least 1.  More threads than free cores make every step wait for the slowest one,
    which on a shared machine is many times slower than one thread."""
    return max(1, cores // max(processes_per_node, 1) - workers)


def configure_threads(workers, processes_per_node):
    """Set torch's intra-op threads from the cores left after the loader workers, unless
    OMP_NUM_THREADS is set (then that is the user's choice).  Returns the thread count."""
    if "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
        torch.set_num_threads(intra_op_threads(workers, processes_per_node, cores))
    return torch.get_num_threads()


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

