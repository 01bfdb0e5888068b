"""What the loop keeps on the device between checks: loss sums and the non-finite streak, and
the batch-norm snapshot that a non-finite forward is undone from."""
import math

import torch
import torch.nn as nn

from lib.engine.step import StepOutput
from lib.engine.window import BufferGuard, StepWindow


def _out(seg, finite=True):
    seg = torch.tensor(seg if finite else math.nan)
    return StepOutput({"seg": seg}, seg.clone(), ~torch.isfinite(seg), torch.tensor(0.0))


def test_the_window_sums_finite_steps_and_leaves_non_finite_ones_out():
    window = StepWindow("cpu")
    for seg, finite in ((1.0, True), (0.0, False), (3.0, True)):
        window.add(_out(seg, finite))
    assert window.names == ["seg", "loss"]
    assert window.sums.tolist() == [4.0, 4.0]
    assert (window.finite.item(), window.nonfinite.item()) == (2, 1)
    window.count_labelled(torch.tensor([[0, 255], [255, 1]]), ignore_label=255)
    assert window.labelled.item() == 2


def test_a_streak_of_non_finite_losses_counts_whole_across_resets():
    window = StepWindow("cpu")
    for finite in (True, False, False):
        window.add(_out(1.0, finite))
    assert window.longest_streak.item() == 2
    window.reset()  # a check: the sums start again, the streak goes on
    assert window.sums is None and window.longest_streak.item() == 2
    window.add(_out(1.0, False))
    window.add(_out(1.0, True))  # ends the streak at 3
    window.add(_out(1.0, False))
    assert (window.streak.item(), window.longest_streak.item()) == (1, 3)
    window.reset()
    assert window.longest_streak.item() == 1  # only the streak still running reaches on


def test_the_guard_puts_back_the_snapshot_only_when_a_buffer_is_not_finite():
    bn = nn.BatchNorm2d(2)
    guard = BufferGuard(bn, "cpu")
    bn.running_mean.copy_(torch.tensor([1.0, 2.0]))
    guard.snapshot(iteration=5)
    bn.running_mean.copy_(torch.tensor([3.0, 4.0]))
    assert not guard.restore()  # finite: kept as they are
    assert bn.running_mean.tolist() == [3.0, 4.0]
    bn.running_var[1] = math.inf
    assert guard.restore()
    assert bn.running_mean.tolist() == [1.0, 2.0] and bn.running_var.tolist() == [1.0, 1.0]
    assert guard.iteration == 5  # the statistics put back are those of iteration 5
