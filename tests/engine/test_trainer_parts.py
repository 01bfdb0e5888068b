"""A Trainer built from small parts, without a config file: the seam between the loop and the
builder."""
import os

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from lib.datasets.loaders import train_loader
from lib.engine.checkpointer import Checkpointer
from lib.engine.periodic import CheckpointEvery, EvaluateEvery, LogEvery
from lib.engine.schedule import Phase, PolySchedule, build_optimizer
from lib.engine.step import StepParts
from lib.engine.trainer import LoopSettings, Trainer, TrainingParts
from lib.models import SegOutput
from lib.models.losses import CrossEntropy, SegLoss


class _Tensors(Dataset):
    """Items of two tensors, fetched as the training sampler asks: by ``(index, epoch)``."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        index, _ = key
        return self.images[index], self.labels[index]


class _PixelClassifier(nn.Module):
    """A 1x1 convolution: logits at the input's resolution, the baseline's one output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return SegOutput(logits=self.conv(self.bn(x)))


def _parts(tmp_path, epochs=2, validator=None):
    torch.manual_seed(0)
    images = torch.randn(8, 3, 4, 4)
    labels = (images[:, 0] > 0).long()  # class 1 where the first channel is positive
    model = _PixelClassifier()
    optimizer = build_optimizer(model, "sgd", 0.5, 0.9, 0.0, False)
    loader, sampler = train_loader(_Tensors(images, labels), 2, 0, False, 0, True)
    schedule = PolySchedule([Phase("main", 0.5, epochs, len(loader))])
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    checkpointer = Checkpointer(str(tmp_path), model, optimizer, scaler,
                                iters_per_epoch=[len(loader)], config_text="", device="cpu")
    step = StepParts(model, model, SegLoss(CrossEntropy(), None), optimizer, scaler,
                     amp_dtype=None, channels_last=False, device=torch.device("cpu"))
    settings = LoopSettings(LogEvery(2), CheckpointEvery(0), EvaluateEvery(1), max_nonfinite=3)
    parts = TrainingParts(step, [(loader, sampler)], schedule, checkpointer, validator)
    return Trainer(parts, settings), images, labels


def test_a_trainer_of_small_parts_learns_and_writes_its_files(tmp_path):
    trainer, images, labels = _parts(tmp_path, epochs=6)
    loss = nn.functional.cross_entropy
    model = trainer.parts.step.model
    before = loss(model.eval()(images).logits, labels).item()
    assert trainer.fit()
    assert trainer.iteration == 6 * 4
    after = loss(model.eval()(images).logits, labels).item()
    assert after < 0.5 * before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pth.tar", "checkpoint_prev.pth.tar",
                                            "final_state.pth"]


def test_the_validator_is_called_at_each_epoch_end_and_best_pth_follows_it(tmp_path):
    calls = []

    def validator(model, iteration):
        calls.append((iteration, model.training))
        return [0.2, 0.5, 0.4][len(calls) - 1]

    trainer, _, _ = _parts(tmp_path, epochs=3, validator=validator)
    trainer.fit()
    assert calls == [(4, False), (8, False), (12, False)]
    assert trainer.state.best_miou == 0.5
    assert os.path.isfile(tmp_path / "best.pth")


def test_a_stop_request_ends_the_run_with_a_checkpoint_at_the_next_check(tmp_path):
    trainer, _, _ = _parts(tmp_path, epochs=2)
    trainer.request_stop()
    assert trainer.fit() is False
    assert trainer.iteration == 2  # the first check (PRINT_FREQ 2) inside the first epoch
    ckpt = torch.load(tmp_path / "checkpoint.pth.tar", weights_only=True)
    assert ckpt["iteration"] == 2
    assert not os.path.exists(tmp_path / "final_state.pth")
