"""When the training loop logs, saves and validates: small rules that the loop asks ``due(...)``.

The shape of detectron2's ``PeriodicCheckpointer`` and ``EvalHook`` (a period, and the run's end
always), without a hook machinery: the Trainer holds one rule of each kind and decides what to do
where it asks them.
"""
from dataclasses import dataclass

from .schedule import Epoch


@dataclass(frozen=True)
class LogEvery:
    """A log line every ``iterations`` iterations (PRINT_FREQ, 1 or more); the loop reads the
    device's sums there, its only host synchronisation between epoch ends."""

    iterations: int

    def due(self, iteration: int) -> bool:
        """After global ``iteration`` (counted from 1 after the first step)."""
        return iteration % self.iterations == 0


@dataclass(frozen=True)
class CheckpointEvery:
    """``checkpoint.pth.tar`` at every epoch end, and every ``iterations`` iterations
    (TRAIN.CHECKPOINT_INTERVAL; 0 = at epoch ends only)."""

    iterations: int

    def due(self, iteration: int, epoch_end: bool = False) -> bool:
        return epoch_end or (self.iterations > 0 and iteration % self.iterations == 0)


@dataclass(frozen=True)
class EvaluateEvery:
    """Validation after every ``epochs``-th epoch of a phase (TRAIN.EVAL_INTERVAL; 0 = none
    before the last) and after the last epoch of the run."""

    epochs: int

    def due(self, epoch: Epoch) -> bool:
        return epoch.last or (self.epochs > 0 and (epoch.index + 1) % self.epochs == 0)
