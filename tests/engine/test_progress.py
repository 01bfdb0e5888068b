"""TimedBatches on a fake clock: data time, time per iteration and the time left."""
from lib.engine.progress import Lap, TimedBatches


class _Clock:
    """Seconds that move only when the test says so."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_laps_split_the_time_between_waiting_for_batches_and_the_steps():
    clock = _Clock()

    def load(batch):  # each batch takes 1 s to load (and copy) ...
        clock.now += 1.0
        return batch * 10

    timed = TimedBatches([1, 2, 3, 4, 5], load, clock=clock)
    seen, laps = [], []
    for batch in timed:
        seen.append(batch)
        clock.now += 3.0  # ... and 3 s to train on
        if len(seen) in (2, 5):
            laps.append(timed.lap())
            clock.now += 0.5  # the rest of the check: in the next lap, not as data time
    assert seen == [10, 20, 30, 40, 50]
    assert laps[0] == Lap(iterations=2, seconds=8.0, data_seconds=2.0)
    assert laps[1] == Lap(iterations=3, seconds=12.5, data_seconds=3.0)
    assert (laps[0].per_iteration, laps[0].data_per_iteration) == (4.0, 1.0)


def test_the_time_left_is_the_remaining_iterations_at_the_lap_pace():
    lap = Lap(iterations=4, seconds=10.0, data_seconds=1.0)  # 2.5 s an iteration
    assert lap.eta(0) == "00:00:00"
    assert lap.eta(1000) == "00:41:40"
    assert lap.eta(34559) == "23:59:57"  # 86397.5 s
    assert lap.eta(34560) == "1.0 days"  # 86400 s
    assert lap.eta(100000) == "2.9 days"
