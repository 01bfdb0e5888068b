"""SIGTERM during training (lib.engine.launch.stop_on_sigterm): a stop request that lets the run
save and exit 0; after a failure the process ends by the signal, as torchrun expects of a worker
it stops before a restart.  Each case runs in a process of its own."""
import signal
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPT = """
import os, signal, sys
from lib.engine.launch import stop_on_sigterm

def request_stop():
    print("stop requested", flush=True)

try:
    with stop_on_sigterm(request_stop):
        if "{case}" != "error without sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        if "{case}" != "sigterm, then the run saves":
            raise RuntimeError("a collective failed: the peer is gone")
finally:
    print("cleaned up", flush=True)
os.kill(os.getpid(), signal.SIGTERM)  # outside the block: the previous (default) action
print("still running", flush=True)
"""


@pytest.mark.parametrize("case, returncode, printed", [
    # The trainer saves and returns; the handler is gone afterwards.
    ("sigterm, then the run saves", -signal.SIGTERM, ["stop requested", "cleaned up"]),
    # No checkpoint could be written: the process ends by the SIGTERM, at once, after logging.
    ("sigterm, then an error", -signal.SIGTERM, ["stop requested"]),
    # An error with no SIGTERM is an ordinary error.
    ("error without sigterm", 1, ["cleaned up"]),
])
def test_sigterm_asks_for_a_stop_and_ends_the_process_when_the_run_then_fails(case, returncode,
                                                                                printed):
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(case=case)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == returncode, proc.stdout + proc.stderr
    assert proc.stdout.split("\n")[:-1] == printed
    if case == "sigterm, then an error":
        assert "the run failed after a SIGTERM" in proc.stderr
        assert "a collective failed: the peer is gone" in proc.stderr
