"""How every tool ends: ``sys.exit(run(main))``.

An error of the library's own types (``ProjectError``: ConfigError, DatasetError, CheckpointError,
RunError, ...) is a setting, file or input at fault, and its message already says which and what to
do; the tool prints ``error: <message>`` on stderr and exits with status 2, without the traceback.
``--debug`` anywhere on the command line, or the environment variable ``OVENET_DEBUG=1``, prints the
traceback as well.  Any other exception is a bug and keeps Python's own report.
"""
import os
import sys
import traceback

from lib.utils.distributed import launcher_env
from lib.utils.errors import ProjectError

DEBUG_FLAG = "--debug"
DEBUG_ENV = "OVENET_DEBUG"
# The exit status of an error of the project's own types (argparse uses it for usage errors too).
ERROR_STATUS = 2


def debug_requested(argv):
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run(main, argv=None):
    """``main(argv)`` with ``argv`` (default ``sys.argv[1:]``) less ``--debug``; returns its exit
    status (None for 0), or 2 after printing an error of the project's own types.

    In a run of several processes every rank that meets the error exits with status 2; each names
    its rank (the launchers print every rank's stderr).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    try:
        return main([a for a in argv if a != DEBUG_FLAG])
    except ProjectError as e:
        if debug:
            traceback.print_exc()
        rank, _, world_size = launcher_env()
        where = f"rank {rank}: " if world_size > 1 else ""
        print(f"error: {where}{e}", file=sys.stderr)
        return ERROR_STATUS
