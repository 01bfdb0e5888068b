"""The loop's periodic rules, each on its own: when a log line, a checkpoint and a validation
are due."""
from lib.engine.periodic import CheckpointEvery, EvaluateEvery, LogEvery
from lib.engine.schedule import Phase, PolySchedule


def test_a_log_line_is_due_at_every_multiple_of_print_freq():
    assert [i for i in range(1, 13) if LogEvery(4).due(i)] == [4, 8, 12]
    assert [i for i in range(1, 4) if LogEvery(1).due(i)] == [1, 2, 3]


def test_a_checkpoint_is_due_at_each_interval_and_at_every_epoch_end():
    every_5 = CheckpointEvery(5)
    assert [i for i in range(1, 16) if every_5.due(i)] == [5, 10, 15]
    assert every_5.due(7, epoch_end=True)
    never = CheckpointEvery(0)  # TRAIN.CHECKPOINT_INTERVAL 0: epoch ends only
    assert not any(never.due(i) for i in range(1, 100))
    assert never.due(3, epoch_end=True)


def test_validation_is_due_every_interval_of_a_phase_and_after_the_last_epoch():
    # Two phases of 5 and 3 epochs: every second epoch counts from each phase's start.
    epochs = list(PolySchedule([Phase("main", 0.01, 5, 10), Phase("extra", 0.001, 3, 10)])
                  .epochs(0))
    due = [(e.phase, e.index) for e in epochs if EvaluateEvery(2).due(e)]
    assert due == [(0, 1), (0, 3), (1, 1), (1, 2)]
    assert [(e.phase, e.index) for e in epochs if EvaluateEvery(0).due(e)] == [(1, 2)]
    assert len([e for e in epochs if EvaluateEvery(1).due(e)]) == 8
