"""Counting the reads of device values by the host (each one a synchronisation on CUDA)."""
import traceback

import torch

# Tensor methods that hand a value to Python.
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy")


def count_host_reads(monkeypatch, skip_code=()):
    """Patch every Tensor method that hands a value to Python; returns the list of calls
    ``(method, file of the caller)``, leaving out calls with a file of ``skip_code`` (path
    parts) on the stack.  ``monkeypatch.undo()`` ends the count."""
    calls = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            frames = [f.filename for f in traceback.extract_stack()[:-1]]
            if not any(part in f for f in frames for part in skip_code):
                calls.append((_name, frames[-1]))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return calls
