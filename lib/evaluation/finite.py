"""Non-finite network outputs in an evaluation: counted on the device while it runs, checked once
after it, so that the image loop reads nothing back from the device.

A diverged network (too high a learning rate, float16 overflow) can have finite weights and
still give NaN or infinite maps; its argmax is then meaningless and no metric may be reported.
"""
import torch

from ..utils.distributed import all_reduce_sum
from ..utils.errors import RunError

__all__ = ["NonFiniteOutputError", "NonFiniteOutputs"]


class NonFiniteOutputError(RunError):
    """A network gave NaN or infinite outputs in an evaluation; the message says where and what
    to do."""


class NonFiniteOutputs:
    """``with NonFiniteOutputs(model, device) as outputs:`` counts the NaN and infinite values of
    every floating-point tensor that a forward of ``model`` returns (a forward hook on ``model``,
    removed on exit), in an int64 scalar on ``device``; ``outputs.total()`` after the loop.

    Every forward counts, whoever calls it: the evaluated prediction, sliding windows, flips,
    scales, image summaries and visualisations.
    """

    def __init__(self, model: torch.nn.Module, device):
        self.model = model
        self.count = torch.zeros((), dtype=torch.int64, device=device)
        self._hook = None

    def __enter__(self):
        self._hook = self.model.register_forward_hook(self._add)
        return self

    def __exit__(self, *exc):
        self._hook.remove()

    def _add(self, module, inputs, output):
        for value in output if isinstance(output, tuple) else (output,):
            if torch.is_tensor(value) and value.is_floating_point():
                self.count += value.isfinite().logical_not_().sum().to(self.count.device)

    def total(self) -> int:
        """Collective: the count summed over ranks (one all-reduce of a scalar, one host read);
        every rank must call it."""
        return int(all_reduce_sum(self.count.clone()).item())
