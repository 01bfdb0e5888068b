"""Checkpointer: our format, the previous checkpoint kept, fallbacks, full disks, finiteness."""
import errno
import logging
import os

import pytest
import torch
import torch.nn as nn

from lib.engine.checkpointer import Checkpointer, CheckpointError
from lib.utils import atomic
from tests.helpers import free_port


def _parts(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, optimizer, torch.amp.GradScaler("cpu", init_scale=8.0)


def _checkpointer(folder, parts, iters=(4,)):
    model, optimizer, scaler = parts
    return Checkpointer(str(folder), model, optimizer, scaler, iters_per_epoch=list(iters),
                        config_text="A: 1\n", device=torch.device("cpu"))


def _train(parts, steps=1):
    model, optimizer, _ = parts
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(2, 3, 4, 4)).square().mean().backward()
        optimizer.step()


def test_round_trip_restores_weights_optimiser_scaler_rng_and_counters(tmp_path):
    parts = _parts()
    _train(parts, 2)
    parts[2].scale(torch.ones(()))  # the scale is made lazily
    parts[2].update(new_scale=2.0)
    _checkpointer(tmp_path, parts).save(iteration=7, best_miou=0.25)
    expected_draw = torch.rand(3)
    fresh = _parts(seed=1)
    torch.rand(5)  # move the generator on
    assert _checkpointer(tmp_path, fresh).resume() == (7, 0.25)
    assert torch.equal(torch.rand(3), expected_draw)
    for a, b in zip(parts[0].state_dict().values(), fresh[0].state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert fresh[2].get_scale() == 2.0
    assert str(fresh[1].state_dict()) == str(parts[1].state_dict())
    ckpt = torch.load(tmp_path / "checkpoint.pth.tar", weights_only=True)
    assert {"model", "optimizer", "scaler", "iteration", "iters_per_epoch", "batch_split",
            "best_mIoU", "rng", "config"} == set(ckpt)


def test_each_save_keeps_the_one_before_as_the_previous_checkpoint(tmp_path):
    parts = _parts()
    saver = _checkpointer(tmp_path, parts)
    for iteration in (1, 2, 3):
        saver.save(iteration, 0.0)
    newest = torch.load(tmp_path / "checkpoint.pth.tar", weights_only=True)
    previous = torch.load(tmp_path / "checkpoint_prev.pth.tar", weights_only=True)
    assert (newest["iteration"], previous["iteration"]) == (3, 2)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pth.tar", "checkpoint_prev.pth.tar"]


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, caplog):
    parts = _parts()
    saver = _checkpointer(tmp_path, parts)
    saver.save(1, 0.0)
    saver.save(2, 0.0)
    newest = tmp_path / "checkpoint.pth.tar"
    newest.write_bytes(newest.read_bytes()[:100])  # cut short, as a crash of the disk would
    with caplog.at_level(logging.WARNING):
        assert _checkpointer(tmp_path, _parts(seed=1)).resume() == (1, 0.0)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(newest) in warning and str(tmp_path / "checkpoint_prev.pth.tar") in warning


def test_a_corrupt_checkpoint_without_a_previous_one_is_named(tmp_path):
    (tmp_path / "checkpoint.pth.tar").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="checkpoint.pth.tar"):
        _checkpointer(tmp_path, _parts()).resume()


def test_another_batch_size_or_world_size_is_refused_on_resume(tmp_path):
    _checkpointer(tmp_path, _parts(), iters=(4,)).save(1, 0.0)
    with pytest.raises(CheckpointError, match=r"\[4\] iterations per epoch, this run has \[2\]"):
        _checkpointer(tmp_path, _parts(), iters=(2,)).resume()


def test_resuming_from_the_previous_checkpoint_keeps_it_when_the_next_save_comes(tmp_path):
    """The unreadable newest file must not become the previous one, over the only good file."""
    saver = _checkpointer(tmp_path, _parts())
    saver.save(1, 0.0)
    saver.save(2, 0.0)
    (tmp_path / "checkpoint.pth.tar").write_bytes(b"")
    resumed = _checkpointer(tmp_path, _parts(seed=1))
    assert resumed.resume() == (1, 0.0)
    resumed.save(3, 0.0)
    previous = torch.load(tmp_path / "checkpoint_prev.pth.tar", weights_only=True)
    newest = torch.load(tmp_path / "checkpoint.pth.tar", weights_only=True)
    assert (newest["iteration"], previous["iteration"]) == (3, 1)
    resumed.save(4, 0.0)  # from now on each save keeps the one before, as usual
    previous = torch.load(tmp_path / "checkpoint_prev.pth.tar", weights_only=True)
    assert previous["iteration"] == 3


def test_an_empty_checkpoint_is_named_as_empty(tmp_path):
    (tmp_path / "checkpoint.pth.tar").write_bytes(b"")
    with pytest.raises(CheckpointError) as error:
        _checkpointer(tmp_path, _parts()).resume()
    message = str(error.value)
    assert f"{tmp_path / 'checkpoint.pth.tar'} is empty (0 bytes)" in message
    assert "TRAIN.RESUME False" in message


def test_a_weight_file_in_place_of_the_checkpoint_is_named_with_what_to_do(tmp_path):
    torch.save(_parts()[0].state_dict(), tmp_path / "checkpoint.pth.tar")  # e.g. a best.pth
    with pytest.raises(CheckpointError) as error:
        _checkpointer(tmp_path, _parts()).resume()
    message = str(error.value)
    assert str(tmp_path / "checkpoint.pth.tar") in message
    assert "not a training checkpoint" in message and "MODEL.PRETRAINED" in message


def test_a_checkpoint_of_another_network_names_the_file_the_tensor_and_what_to_do(tmp_path):
    _checkpointer(tmp_path, _parts()).save(1, 0.0)
    torch.manual_seed(0)
    wider = nn.Sequential(nn.Conv2d(3, 6, 1), nn.BatchNorm2d(6))
    parts = (wider, torch.optim.SGD(wider.parameters(), lr=0.1), torch.amp.GradScaler("cpu"))
    with pytest.raises(CheckpointError) as error:
        _checkpointer(tmp_path, parts).resume()
    message = str(error.value)
    assert str(tmp_path / "checkpoint.pth.tar") in message
    assert "0.weight: file (4, 3, 1, 1) vs model (6, 3, 1, 1)" in message
    assert "TRAIN.RESUME False" in message


def _poison(path, tensor):
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"][tensor][0] = float("inf")
    torch.save(ckpt, path)


def test_nonfinite_weights_in_the_newest_checkpoint_fall_back_to_the_previous(tmp_path, caplog):
    saver = _checkpointer(tmp_path, _parts())
    saver.save(1, 0.0)
    saver.save(2, 0.0)
    _poison(tmp_path / "checkpoint.pth.tar", "1.running_mean")
    fresh = _parts(seed=1)
    with caplog.at_level(logging.WARNING):
        assert _checkpointer(tmp_path, fresh).resume() == (1, 0.0)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(tmp_path / "checkpoint.pth.tar") in warning and "1.running_mean" in warning
    assert str(tmp_path / "checkpoint_prev.pth.tar") in warning
    assert all(torch.isfinite(t).all() for t in fresh[0].state_dict().values())


def test_nonfinite_weights_in_both_checkpoints_are_refused_naming_both(tmp_path):
    saver = _checkpointer(tmp_path, _parts())
    saver.save(1, 0.0)
    saver.save(2, 0.0)
    for name in ("checkpoint.pth.tar", "checkpoint_prev.pth.tar"):
        _poison(tmp_path / name, "0.bias")
    with pytest.raises(CheckpointError) as error:
        _checkpointer(tmp_path, _parts()).resume()
    message = str(error.value)
    for name in ("checkpoint.pth.tar", "checkpoint_prev.pth.tar"):
        assert f"{tmp_path / name} holds non-finite weights: 0.bias" in message


def test_the_same_batch_split_differently_is_resumed_with_a_note(tmp_path, caplog):
    model, optimizer, scaler = _parts()
    Checkpointer(str(tmp_path), model, optimizer, scaler, iters_per_epoch=[4], config_text="",
                 device=torch.device("cpu"), batch_split=(8, 1, 1)).save(3, 0.0)
    model, optimizer, scaler = _parts(seed=1)
    split = Checkpointer(str(tmp_path), model, optimizer, scaler, iters_per_epoch=[4],
                         config_text="", device=torch.device("cpu"), batch_split=(4, 2, 1))
    with caplog.at_level(logging.WARNING):
        assert split.resume() == (3, 0.0)
    assert "batch of 8 x 1 x 1 = 8" in caplog.text and "as 4 x 2 x 1 = 8" in caplog.text


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, path, mode):
        self.file = open(path, mode)  # noqa: SIM115 (closed in __exit__)

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_a_full_disk_names_the_file_and_the_cause_and_loses_nothing(tmp_path, monkeypatch):
    parts = _parts()
    saver = _checkpointer(tmp_path, parts)
    saver.save(1, 0.0)
    saved = (tmp_path / "checkpoint.pth.tar").read_bytes()
    monkeypatch.setattr(atomic, "open", _FullDisk, raising=False)
    with pytest.raises(CheckpointError) as error:
        saver.save(2, 0.0)
    message = str(error.value)
    assert str(tmp_path / "checkpoint.pth.tar") in message
    assert "No space left on device" in message and "ENOSPC" in message
    assert (tmp_path / "checkpoint.pth.tar").read_bytes() == saved
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pth.tar"]


@pytest.mark.parametrize("tensor", ["0.weight", "1.running_var"])
def test_no_file_is_written_from_a_model_with_a_nonfinite_value(tmp_path, tensor):
    parts = _parts()
    saver = _checkpointer(tmp_path, parts)
    with torch.no_grad():
        parts[0].state_dict()[tensor][0] = float("nan")
    for save in (lambda: saver.save(1, 0.0), lambda: saver.save_weights("best.pth")):
        with pytest.raises(CheckpointError, match=tensor):
            save()
    assert os.listdir(tmp_path) == []


def _rank_whose_rank_0_disk_is_full(rank, port, folder, results):
    """One of two gloo ranks saving a checkpoint; rank 0's write fails with ENOSPC."""
    import datetime

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2, timeout=datetime.timedelta(seconds=60))
    try:
        model, optimizer, scaler = _parts()
        saver = Checkpointer(folder, model, optimizer, scaler, iters_per_epoch=[4],
                             config_text="A: 1\n", device=torch.device("cpu"))
        if rank == 0:
            def full(*_):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            saver._write = full
        try:
            saver.save(4, 0.5)
            results[rank] = "returned"
        except (OSError, CheckpointError) as e:
            results[rank] = type(e).__name__
    finally:
        dist.destroy_process_group()


def test_a_failed_write_on_rank_0_raises_on_every_rank_instead_of_leaving_them_waiting(tmp_path):
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_rank_whose_rank_0_disk_is_full,
                                args=(free_port(), str(tmp_path), results), nprocs=2)
    assert dict(results) == {0: "OSError", 1: "CheckpointError"}
