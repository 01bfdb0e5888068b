"""Logging set-up for the tools and the TensorBoard writer (rank 0 only)."""
import logging
import math
import os
import sys
import time

_installed = []


def _replace_installed():
    """The root logger, less the handlers an earlier set-up installed (a second set-up in one
    process, as in tests and notebooks, replaces the first one's)."""
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()
    return root


def setup_logging(output_dir, rank, phase):
    """Log to the console and to ``<output_dir>/<phase>_<time>.log`` on rank 0; warnings elsewhere.
    The file is created with its first line (a start that fails before logging leaves none).
    ``log_ending_error`` adds the exception that ends the run to that file.

    Returns the log file path (None on other ranks).
    """
    root = _replace_installed()
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
    file_handler = logging.FileHandler(path, delay=True)  # no file until there is a line
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
    _installed.append(file_handler)
    return path


class _StdoutHandler(logging.StreamHandler):
    """Writes to ``sys.stdout`` as it is when a message is logged (a redirection or a test's
    capture made after the handler), not to the stream of the handler's creation."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stdout


def log_messages_to_stdout():
    """Log INFO and above to ``sys.stdout`` as bare messages (no time, no level): a tool whose
    output is the library's messages, as ``tools/make_lists.py``.  Replaces the handlers of an
    earlier call or of ``setup_logging``."""
    root = _replace_installed()
    console = _StdoutHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    _installed.append(console)
    root.setLevel(logging.INFO)


def log_ending_error(error: BaseException):
    """Write ``error``, the exception that ends the run, with its traceback to the log file of
    ``setup_logging`` when this process has one (rank 0); the console has Python's own report
    of it, so it is not logged there a second time."""
    record = logging.LogRecord(__name__, logging.ERROR, __file__, 0, "the run ended with an error",
                               None, (type(error), error, error.__traceback__))
    for handler in _installed:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def create_writer(log_dir, rank):
    """A tensorboardX SummaryWriter on rank 0, None on the other ranks."""
    if rank != 0:
        return None
    from tensorboardX import SummaryWriter

    return SummaryWriter(log_dir)


def add_finite_scalars(writer, scalars, step):
    """``writer.add_scalar(tag, value, step)`` of each finite value of ``scalars`` {tag: float};
    NaN and infinities (an undefined metric) are left out: tensorboardX would warn for each one,
    at every step it is written."""
    for tag, value in scalars.items():
        if math.isfinite(value):
            writer.add_scalar(tag, value, step)
