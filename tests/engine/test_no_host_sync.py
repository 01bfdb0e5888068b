"""The training loop reads nothing back from the device between its checks; validation reads
nothing inside its image loop."""
import contextlib
import os

import pytest
import torch

from lib.evaluation.finite import NonFiniteOutputError
from tests.engine.handmade import PixelOffsetNet, batches, validator
from tests.host_reads import count_host_reads

# Data loading runs on the CPU ahead of the device (in worker processes when WORKERS > 0).
DATA_CODE = (os.path.join("torch", "utils", "data"), os.path.join("lib", "datasets"))


def _count_syncs(monkeypatch):
    return count_host_reads(monkeypatch, skip_code=DATA_CODE)


@pytest.mark.parametrize("accumulate_steps", [1, 2])
def test_a_step_loop_synchronises_once_per_print_freq(make_trainer, monkeypatch,
                                                      accumulate_steps):
    # 8 images: 8 steps of 1 with a check every 4, or 4 steps of 2 micro-batches of 1 with a
    # check every 2: two checks either way, and no other host read.
    trainer = make_trainer(epochs=1, PRINT_FREQ=4 // accumulate_steps, **{
        "TRAIN.BATCH_SIZE_PER_GPU": 1, "TRAIN.ACCUMULATE_STEPS": accumulate_steps})
    epoch = next(trainer.parts.schedule.epochs(0))
    iterations = len(trainer.loader)
    assert iterations == 8 // accumulate_steps
    calls = _count_syncs(monkeypatch)
    list(trainer.train_epoch(epoch))
    monkeypatch.undo()
    assert trainer.iteration == iterations
    assert len(calls) == 2, calls


def test_the_counter_sees_a_host_read(monkeypatch):
    calls = _count_syncs(monkeypatch)
    torch.ones(2).sum().item()
    bool(torch.ones(()) > 0)
    monkeypatch.undo()
    assert [name for name, _ in calls] == ["item", "__bool__"]


@pytest.mark.parametrize("nan_pixels", [[], [(1, 2)]], ids=["finite", "nan_confidence"])
def test_validation_reads_the_device_the_same_number_of_times_for_any_number_of_batches(
        monkeypatch, nan_pixels):
    # The non-finite check counts on the device and reads its total once, after the loop.
    model = PixelOffsetNet(nan_pixels).eval()
    reads = []
    for count in (1, 4):
        run = validator(batches(count))
        calls = _count_syncs(monkeypatch)
        with pytest.raises(NonFiniteOutputError) if nan_pixels else contextlib.nullcontext():
            run(model, iteration=0)
        monkeypatch.undo()
        reads.append(len(calls))
    assert reads[0] == reads[1], reads
