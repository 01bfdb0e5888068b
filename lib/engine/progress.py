"""The pace of a loop over a loader: ``TimedBatches`` yields the batches and measures the time
spent waiting for them and the time per iteration; a ``Lap`` gives both per iteration and the time
left (torchvision's ``MetricLogger.log_every`` idea; the printing stays with the caller, which
logs device-side sums it must first read).

Times are host wall-clock seconds (``time.perf_counter``).  A step that only queues device work
returns at once, so on a GPU the time of the steps shows where the host next waits for the device:
take a lap after such a read, and the steps before it are counted whole.
"""
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Lap:
    """A stretch of ``iterations`` iterations: ``seconds`` in all, ``data_seconds`` of them spent
    waiting for batches (loading them and copying them to the device)."""

    iterations: int
    seconds: float
    data_seconds: float

    @property
    def per_iteration(self) -> float:
        return self.seconds / self.iterations

    @property
    def data_per_iteration(self) -> float:
        return self.data_seconds / self.iterations

    def eta(self, remaining: int) -> str:
        """The time ``remaining`` iterations take at this lap's pace: H:MM:SS below a day, else
        days with one decimal."""
        seconds = remaining * self.per_iteration
        if seconds < 86400:
            return time.strftime("%H:%M:%S", time.gmtime(seconds))
        return f"{seconds / 86400:.1f} days"


class TimedBatches:
    """``for batch in TimedBatches(loader, prepare)``: the batches of ``loader``, each passed
    through ``prepare`` (e.g. the copy to the device, counted as waiting for data); ``lap()``
    returns the ``Lap`` since the previous lap, or since this object was made, and starts the
    next one.  ``clock``: a function returning seconds (a test's fake clock)."""

    def __init__(self, batches, prepare=lambda batch: batch, clock=time.perf_counter):
        self.batches, self.prepare, self.clock = batches, prepare, clock
        self.started, self.iterations, self.data_seconds = clock(), 0, 0.0

    def __iter__(self):
        waiting_since = self.clock()
        for batch in self.batches:
            batch = self.prepare(batch)
            self.data_seconds += self.clock() - waiting_since
            self.iterations += 1
            yield batch
            waiting_since = self.clock()

    def lap(self) -> Lap:
        now = self.clock()
        lap = Lap(self.iterations, now - self.started, self.data_seconds)
        self.started, self.iterations, self.data_seconds = now, 0, 0.0
        return lap
