"""The Trainer's stop, checkpoint and non-finite policy, in one process on the synthetic data."""
import logging
import os

import pytest
import torch

from lib.engine.launch import configure_threads, intra_op_threads
from lib.engine.schedule import Epoch, Phase, PolySchedule
from lib.engine.trainer import NonFiniteLossError
from lib.evaluation.finite import NonFiniteOutputError
from lib.models.weights import CheckpointError
from lib.utils.precision import amp_dtype
from tests.helpers import BASELINE_CFG

QUIET = {"TRAIN.EVAL_INTERVAL": 0}


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _stop_at_call(trainer, call):
    """Make the criterion request a stop during its ``call``-th step (as SIGTERM would)."""
    criterion, calls = trainer.parts.step.criterion, []

    def stopping(output, target):
        calls.append(1)
        if len(calls) == call:
            trainer.request_stop()
        return criterion(output, target)

    trainer.parts.step.criterion = stopping
    return calls


def test_epochs_resume_inside_the_epoch_of_the_saved_iteration():
    schedule = PolySchedule([Phase("main", 0.01, 2, 5), Phase("extra", 0.001, 1, 4)])
    assert list(schedule.epochs(0))[0] == Epoch(0, 0, 0, 0, False)
    assert list(schedule.epochs(7)) == [Epoch(0, 1, 1, 2, False), Epoch(1, 0, 2, 0, True)]
    assert list(schedule.epochs(11)) == [Epoch(1, 0, 2, 1, True)]
    assert list(schedule.epochs(14)) == []


def test_a_stop_during_the_last_step_of_the_run_still_writes_final_state(make_trainer, tmp_path):
    trainer = make_trainer(epochs=2, **QUIET)
    calls = _stop_at_call(trainer, 2 * len(trainer.loader))
    assert trainer.fit() is True
    assert len(calls) == 2 * len(trainer.loader)
    assert os.path.isfile(os.path.join(trainer.output_dir, "final_state.pth"))


def test_after_a_resume_the_progress_label_counts_the_position_in_the_epoch(make_trainer,
                                                                          tmp_path, caplog):
    first = make_trainer(epochs=1, **QUIET)
    _stop_at_call(first, 1)
    assert first.fit() is False  # stopped at the first check, iteration 2 of 4
    assert _load(os.path.join(first.output_dir, "checkpoint.pth.tar"))["iteration"] == 2
    first.close()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert make_trainer(epochs=1, **QUIET, **{"TRAIN.RESUME": True}).fit()
    assert "main epoch 1/1 [4/4] it 4 " in caplog.text
    assert "[2/2]" not in caplog.text


def test_best_pth_is_never_written_from_nonfinite_weights(make_trainer):
    trainer = make_trainer(epochs=1)
    optimizer, steps = trainer.parts.step.optimizer, []
    real_step = optimizer.step

    def poisoning_step(*args, **kwargs):  # the last step of the epoch leaves a NaN weight
        result = real_step(*args, **kwargs)
        steps.append(1)
        if len(steps) == len(trainer.loader):
            with torch.no_grad():
                next(trainer.parts.step.network.parameters())[0] = float("nan")
        return result

    optimizer.step = poisoning_step
    with pytest.raises(CheckpointError, match="non-finite"):
        trainer.fit()
    assert len(steps) == len(trainer.loader)
    assert not os.path.exists(os.path.join(trainer.output_dir, "best.pth"))
    assert not os.path.exists(os.path.join(trainer.output_dir, "checkpoint.pth.tar"))


class _NaNImagesAt:
    """Wraps the network; the forward of the given calls sees NaN images, so batch norm's
    running statistics turn NaN along with the loss.  Used on the baseline network: a NaN
    sampling grid is the offset network's own guard to keep from grid_sample."""

    def __init__(self, model, calls):
        self.model, self.calls, self.count = model, set(calls), 0

    def __call__(self, images):
        self.count += 1
        if self.count in self.calls:
            images = images * float("nan")
        return self.model(images)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_batch_norm_statistics_corrupted_by_a_nan_forward_never_reach_a_checkpoint(
        make_trainer, caplog):
    trainer = make_trainer(epochs=1, cfg_path=BASELINE_CFG, **QUIET)
    trainer.parts.step.model = _NaNImagesAt(trainer.parts.step.model, calls={3})
    with caplog.at_level(logging.WARNING):
        assert trainer.fit()
    assert "non-finite batch-norm statistics" in caplog.text and "non-finite loss" in caplog.text
    for name in ("checkpoint.pth.tar", "final_state.pth"):
        state = _load(os.path.join(trainer.output_dir, name))
        state = state.get("model", state)
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), name


def test_nan_forwards_in_a_row_stop_the_run_naming_the_key(make_trainer):
    trainer = make_trainer(epochs=2, cfg_path=BASELINE_CFG, **QUIET, **{"TRAIN.MAX_NONFINITE": 3})
    trainer.parts.step.model = _NaNImagesAt(trainer.parts.step.model, calls={2, 3, 4, 5, 6})
    with pytest.raises(NonFiniteLossError, match="TRAIN.MAX_NONFINITE = 3"):
        trainer.fit()
    assert not os.path.exists(os.path.join(trainer.output_dir, "checkpoint.pth.tar"))


def test_the_nonfinite_loss_stop_says_what_to_do_and_names_the_last_checkpoint(make_trainer):
    probe = make_trainer(epochs=2, cfg_path=BASELINE_CFG, **QUIET)
    per_epoch = len(probe.loader)
    probe.close()
    # The first epoch ends with checkpoints; every forward of the second one is NaN.
    trainer = make_trainer(epochs=2, cfg_path=BASELINE_CFG, **QUIET,
                           **{"TRAIN.MAX_NONFINITE": 2, "TRAIN.LR": 0.25})
    trainer.parts.step.model = _NaNImagesAt(trainer.parts.step.model,
                                            calls=range(per_epoch + 1, 2 * per_epoch + 1))
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    newest = os.path.join(trainer.output_dir, "checkpoint.pth.tar")
    assert _load(newest)["iteration"] == per_epoch
    advice = str(info.value).splitlines()[-1]
    assert advice.startswith("What to do: check the training data")
    assert "TRAIN.RESUME True" in advice and "lower TRAIN.LR (now 0.25)" in advice
    assert f"from its last checkpoint, {newest}" in advice


def test_nonfinite_validation_outputs_stop_the_run_before_best_pth_and_the_checkpoint(
        make_trainer):
    trainer = make_trainer(epochs=1, **{"TRAIN.LR": 0.25})
    trainer.parts.checkpointer.save(0, 0.0)  # the run's last checkpoint, from before it diverged
    newest = os.path.join(trainer.output_dir, "checkpoint.pth.tar")
    validator = trainer.parts.validator
    # Finite weights, NaN maps (confidence included), as after a learning rate far too high.
    validator.loader = [(batch[0] * float("nan"), *batch[1:]) for batch in validator.loader]
    with pytest.raises(NonFiniteOutputError) as info:
        trainer.fit()
    what, advice = str(info.value).splitlines()
    assert what.startswith(f"validation at iteration {len(trainer.loader)}: the network's "
                           f"outputs are not finite")
    assert "no checkpoint or best.pth was written" in what
    assert advice == (f"What to do: resume the run (TRAIN.RESUME True) with a lower TRAIN.LR "
                      f"(now 0.25) from its last checkpoint, {newest}")
    assert not os.path.exists(os.path.join(trainer.output_dir, "best.pth"))
    assert _load(newest)["iteration"] == 0
    assert not os.path.exists(os.path.join(trainer.output_dir, "checkpoint_prev.pth.tar"))


def test_a_streak_of_nan_forwards_is_counted_across_epoch_ends(make_trainer):
    # Every forward is NaN; the limit is one more than an epoch holds, so only a streak that
    # survives the epoch end reaches it.
    probe = make_trainer(epochs=3, cfg_path=BASELINE_CFG, **QUIET)
    per_epoch = len(probe.loader)
    probe.close()
    trainer = make_trainer(epochs=3, cfg_path=BASELINE_CFG, **QUIET,
                           **{"TRAIN.MAX_NONFINITE": per_epoch + 1})
    trainer.parts.step.model = _NaNImagesAt(trainer.parts.step.model,
                                            calls=range(1, 3 * per_epoch + 1))
    with pytest.raises(NonFiniteLossError):
        trainer.fit()
    assert not os.path.exists(os.path.join(trainer.output_dir, "final_state.pth"))


def test_float16_training_resumes_exactly_with_its_grad_scaler(make_trainer, tmp_path):
    fp16 = {"TRAIN.AMP": True, "TRAIN.AMP_DTYPE": "float16", **QUIET}
    straight = make_trainer(tmp_path / "straight", epochs=2, **fp16)
    assert straight.parts.step.amp_dtype == torch.float16 and \
        straight.parts.step.scaler.is_enabled()
    assert straight.fit()
    stopped = make_trainer(tmp_path / "broken", epochs=2, **fp16)
    _stop_at_call(stopped, len(stopped.loader) + 1)
    assert stopped.fit() is False
    saved = _load(os.path.join(stopped.output_dir, "checkpoint.pth.tar"))
    assert saved["iteration"] == len(stopped.loader) + 2 and "scale" in saved["scaler"]
    stopped.close()
    resumed = make_trainer(tmp_path / "broken", epochs=2, **fp16, **{"TRAIN.RESUME": True})
    assert resumed.fit()
    assert resumed.parts.step.scaler.get_scale() == straight.parts.step.scaler.get_scale()
    a = _load(os.path.join(straight.output_dir, "final_state.pth"))
    b = _load(os.path.join(resumed.output_dir, "final_state.pth"))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_amp_dtype_names_the_key_of_an_unknown_value():
    assert amp_dtype(True, "float16") == torch.float16 and amp_dtype(False, "float16") is None
    assert amp_dtype(True) == torch.bfloat16
    with pytest.raises(ValueError, match=r"TRAIN.AMP_DTYPE 'fp8'.*bfloat16.*float16"):
        amp_dtype(True, "fp8")


def test_intra_op_threads_are_the_cores_left_after_the_loader_workers(monkeypatch):
    assert intra_op_threads(workers=2, processes_per_node=1, cores=8) == 6
    assert intra_op_threads(workers=2, processes_per_node=4, cores=16) == 2
    assert intra_op_threads(workers=4, processes_per_node=1, cores=2) == 1
    threads = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(3)
        assert configure_threads(workers=0, processes_per_node=1) == 3  # the user's choice
        monkeypatch.delenv("OMP_NUM_THREADS")
        cores = len(os.sched_getaffinity(0))
        assert configure_threads(workers=1, processes_per_node=1) == max(1, cores - 1)
    finally:
        torch.set_num_threads(threads)


def test_auto_resume_from_a_corrupt_checkpoint_takes_the_previous_one(make_trainer, caplog):
    first = make_trainer(epochs=2, **QUIET)
    assert first.fit()
    first.close()
    newest = os.path.join(first.output_dir, "checkpoint.pth.tar")
    previous = os.path.join(first.output_dir, "checkpoint_prev.pth.tar")
    assert (_load(newest)["iteration"], _load(previous)["iteration"]) == (8, 4)
    with open(newest, "r+b") as f:
        f.truncate(1000)
    with caplog.at_level(logging.INFO):
        again = make_trainer(epochs=3, **QUIET, AUTO_RESUME=True, RUN_DIR=first.output_dir)
        assert again.fit()
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert newest in warning and previous in warning
    assert f"resumed from {previous} at iteration 4" in caplog.text
