"""Logging set-up for the tools and the TensorBoard writer (rank 0 only)."""
import logging
import os
import sys
import time

_installed = []


def setup_logging(output_dir, rank, phase):
    """Log to the console and to ``<output_dir>/<phase>_<time>.log`` on rank 0; warnings elsewhere.

    Returns the log file path (None on other ranks).
    """
    root = logging.getLogger()
    for handler in _installed:  # a second call (tests, notebooks) replaces the first one's
        root.removeHandler(handler)
        handler.close()
    _installed.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    root.addHandler(console)
    _installed.append(console)
    if rank != 0:
        root.setLevel(logging.WARNING)
        return None
    root.setLevel(logging.INFO)
    path = os.path.join(output_dir, f"{phase}_{time.strftime('%Y-%m-%d-%H-%M-%S')}.log")
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    _installed.append(file_handler)
    return path


def create_writer(log_dir, rank):
    """A tensorboardX SummaryWriter on rank 0, None on the other ranks."""
    if rank != 0:
        return None
    from tensorboardX import SummaryWriter

    return SummaryWriter(log_dir)
