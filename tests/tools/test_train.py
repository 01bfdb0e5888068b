"""tools/train.py end to end on the synthetic data: one process, two processes, resume, NaN
guard."""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from lib.config import load_cfg
from lib.engine.build import build_trainer
from lib.engine.schedule import Phase, PolySchedule
from lib.engine.trainer import NonFiniteLossError
from lib.utils.errors import RunError
from tests.helpers import OFFSET_CFG, ROOT, free_port, latest_run, run_tool, small_opts

NAME = os.path.splitext(os.path.basename(OFFSET_CFG))[0]


def _folder(out):
    return latest_run(out)


def _weights(path):
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return obj.get("model", obj)


def test_poly_schedule_continues_across_phases_and_from_any_iteration():
    schedule = PolySchedule([Phase("main", 0.01, 2, 5), Phase("extra", 0.001, 1, 4)])
    assert schedule.total_iters == 14
    assert schedule.lr(0) == 0.01
    assert schedule.lr(3) == pytest.approx(0.01 * (1 - 3 / 10) ** 0.9)
    assert schedule.lr(10) == 0.001  # the second phase restarts at its own base rate
    assert schedule.lr(12) == pytest.approx(0.001 * (1 - 2 / 4) ** 0.9)
    assert schedule.locate(7) == (0, 1, 2) and schedule.locate(11) == (1, 0, 1)
    assert schedule.locate(14) == (2, 0, 0)


def test_single_process_run_writes_every_output(trained_run):
    _, _, folder = trained_run
    for name in ("config.yaml", "checkpoint.pth.tar", "best.pth", "final_state.pth"):
        assert os.path.isfile(os.path.join(folder, name)), name
    log = open(glob.glob(os.path.join(folder, "train_*.log"))[0]).read()
    assert "parameters" in log and "GFLOPs" in log and "mIoU" in log and "lr" in log
    events = glob.glob(os.path.join(os.path.dirname(folder).replace("output", "log"), "*", "events*"))
    assert events
    assert load_cfg(os.path.join(folder, "config.yaml")).MODEL.NAME == "branched_seg_hrnet"
    ckpt = torch.load(os.path.join(folder, "checkpoint.pth.tar"), map_location="cpu",
                      weights_only=True)
    assert {"model", "optimizer", "iteration", "best_mIoU", "rng", "config"} <= set(ckpt)
    assert not any(k.startswith("module.") for k in ckpt["model"])


def test_people_read_the_miou_in_per_cent_and_files_keep_a_fraction(trained_run):
    _, _, folder = trained_run
    best = torch.load(os.path.join(folder, "checkpoint.pth.tar"), map_location="cpu",
                      weights_only=True)["best_mIoU"]
    records = []
    for path in glob.glob(os.path.join(folder, "validation", "iter*.json")):
        with open(path) as f:
            record = json.load(f)
        records.append(record["predictions"][record["final_prediction"]]["mIoU"])
    assert 0 < best <= 1 and best == max(records)
    log = open(glob.glob(os.path.join(folder, "train_*.log"))[0]).read()
    assert f"done: best mIoU {100 * best:.2f} %; weights in " in log


def _kill_after_checkpoint(args, folder, env):
    """Start training, SIGKILL it once a mid-run checkpoint exists; returns the iteration."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = os.path.join(folder, "checkpoint.pth.tar")
    deadline = time.time() + 300
    while not os.path.exists(ckpt) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not os.path.exists(os.path.join(folder, "final_state.pth"))
    return torch.load(ckpt, map_location="cpu", weights_only=True)["iteration"]


@pytest.mark.parametrize("accumulate_steps, grad_checkpointing", [(1, False), (2, True)])
def test_resume_after_sigkill_ends_with_the_same_weights(synthetic_root, tmp_path,
                                                         accumulate_steps, grad_checkpointing):
    # 8 images in batches of 2: 4 optimiser steps per epoch, or 2 of 2 micro-batches each.
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    extra = {"TRAIN.CHECKPOINT_INTERVAL": 3, "TRAIN.END_EPOCH": 3, "TRAIN.EVAL_INTERVAL": 0,
             "TRAIN.ACCUMULATE_STEPS": accumulate_steps,
             "TRAIN.GRAD_CHECKPOINTING": grad_checkpointing}
    total = 3 * 8 // (2 * accumulate_steps)
    straight = str(tmp_path / "straight")
    run_tool(["tools/train.py", "--cfg", OFFSET_CFG, *small_opts(synthetic_root, straight, **extra)])
    broken = str(tmp_path / "broken")
    args = ["tools/train.py", "--cfg", OFFSET_CFG, *small_opts(synthetic_root, broken, **extra)]
    killed_at = _kill_after_checkpoint(args, _folder(broken), env)
    assert 0 < killed_at < total
    resumed = run_tool(args + ["TRAIN.RESUME", "True"])
    assert "resumed from" in resumed.stdout and f"iteration {killed_at}" in resumed.stdout
    a = _weights(os.path.join(_folder(straight), "final_state.pth"))
    b = _weights(os.path.join(_folder(broken), "final_state.pth"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit-identical: same data, draws and lr curve
    # The learning rate continued the poly curve: the saved optimiser holds the last step's lr.
    ckpt = torch.load(os.path.join(_folder(broken), "checkpoint.pth.tar"), map_location="cpu",
                      weights_only=True)
    last_lr = 0.02 * (1 - (total - 1) / total) ** 0.9
    assert ckpt["iteration"] == total
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(last_lr)


def _trainer(synthetic_root, out, **extra):
    cfg = load_cfg(OFFSET_CFG, small_opts(synthetic_root, out, **extra))
    return build_trainer(cfg, OFFSET_CFG, torch.device("cpu"), rank=0, world_size=1)


class _NaNAt:
    """Wraps a criterion and makes its loss NaN at the given calls."""

    def __init__(self, criterion, calls):
        self.criterion, self.calls, self.count = criterion, set(calls), 0

    def __call__(self, output, target):
        terms = self.criterion(output, target)
        self.count += 1
        if self.count in self.calls:
            terms["seg"] = terms["seg"] * float("nan")
        return terms


def test_nan_loss_skips_the_step_and_never_reaches_the_checkpoint(synthetic_root, tmp_path,
                                                                   caplog):
    trainer = _trainer(synthetic_root, str(tmp_path), **{"TRAIN.END_EPOCH": 1})
    step_parts = trainer.parts.step
    step_parts.criterion = _NaNAt(step_parts.criterion, calls={2})
    real_step = step_parts.optimizer.step
    model = step_parts.model
    changed = {}

    def recording_step(*a, **k):
        before = [p.detach().clone() for p in model.parameters()]
        result = real_step(*a, **k)
        changed[trainer.iteration] = any(not torch.equal(b, p) for b, p in
                                         zip(before, model.parameters()))
        return result

    step_parts.optimizer.step = recording_step
    assert trainer.fit()
    # Iteration 1 (the second call) left the weights as they were; its neighbours updated them.
    assert changed[0] and not changed[1] and changed[2]
    assert "non-finite loss" in caplog.text
    ckpt = torch.load(os.path.join(trainer.output_dir, "checkpoint.pth.tar"), map_location="cpu",
                      weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_repeated_nan_losses_stop_the_run_with_a_clear_error(synthetic_root, tmp_path):
    trainer = _trainer(synthetic_root, str(tmp_path), **{"TRAIN.MAX_NONFINITE": 2})
    trainer.parts.step.criterion = _NaNAt(trainer.parts.step.criterion, calls={1, 2, 3})
    with pytest.raises(NonFiniteLossError, match="TRAIN.MAX_NONFINITE"):
        trainer.fit()
    assert not os.path.exists(os.path.join(trainer.output_dir, "checkpoint.pth.tar"))


def test_a_diverging_run_ends_with_the_guard_and_its_log_holds_the_error(synthetic_root,
                                                                          tmp_path):
    out = str(tmp_path)
    proc = run_tool(["tools/train.py", "--cfg", OFFSET_CFG,
                     *small_opts(synthetic_root, out, epochs=1, **{"TRAIN.LR": 1e8})], check=False)
    assert proc.returncode != 0
    assert "out of bounds" not in proc.stderr
    *_, error, advice = proc.stderr.strip().splitlines()
    assert error.startswith("error: validation at iteration 4: the network's outputs are not "
                            "finite"), proc.stderr
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert advice == ("What to do: start the run again with a lower TRAIN.LR (now 1e+08); it has "
                      "written no checkpoint yet")
    folder = _folder(out)
    assert not {"best.pth", "checkpoint.pth.tar"} & set(os.listdir(folder))
    log = open(glob.glob(os.path.join(folder, "train_*.log"))[0]).read()
    ending = log[log.index("ERROR the run ended with an error"):]
    assert "Traceback (most recent call last)" in ending and ending.rstrip().endswith(advice)
    assert error.split(": ", 1)[1] in ending


def test_batch_larger_than_the_data_is_a_clear_error(synthetic_root, tmp_path):
    with pytest.raises(RunError, match="BATCH_SIZE_PER_GPU"):
        _trainer(synthetic_root, str(tmp_path), **{"TRAIN.BATCH_SIZE_PER_GPU": 64})


def test_missing_pretrained_file_is_named(synthetic_root, tmp_path):
    from lib.models.weights import CheckpointError

    with pytest.raises(CheckpointError, match="no_such_weights.pth"):
        _trainer(synthetic_root, str(tmp_path), **{"MODEL.PRETRAINED": "no_such_weights.pth"})


def test_unwritable_output_folder_is_named(synthetic_root, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = load_cfg(OFFSET_CFG, small_opts(synthetic_root, str(tmp_path)) +
                   ["OUTPUT_DIR", str(blocker / "sub")])
    with pytest.raises(RunError, match="OUTPUT_DIR"):
        build_trainer(cfg, OFFSET_CFG, torch.device("cpu"), rank=0, world_size=1)


@pytest.mark.parametrize("launcher", ["torch.distributed.launch", "torchrun"])
def test_two_process_gloo_training_keeps_ranks_identical_and_only_rank0_writes(
        synthetic_root, tmp_path, launcher):
    out = str(tmp_path)
    train_args = ["tools/train.py", "--cfg", OFFSET_CFG, *small_opts(synthetic_root, out, epochs=1)]
    dist_args = ["--nproc_per_node=2", "--master_port", str(free_port())]
    env = {"OMP_NUM_THREADS": "1"}
    if launcher == "torchrun":
        exe = shutil.which("torchrun", path=os.path.dirname(sys.executable))
        cmd = ([exe] if exe else [sys.executable, "-m", "torch.distributed.run"]) + dist_args
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **env)
        proc = subprocess.run(cmd + train_args, cwd=ROOT, env=full_env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        env["PYTHONWARNINGS"] = "ignore"
        proc = run_tool(["-m", "torch.distributed.launch", *dist_args, *train_args], env=env)
    assert "final weights identical on all 2 ranks" in proc.stdout
    folder = _folder(out)
    assert len(glob.glob(os.path.join(folder, "train_*.log"))) == 1
    assert os.path.isfile(os.path.join(folder, "final_state.pth"))
    assert len(glob.glob(os.path.join(out, "log", "cityscapes", NAME, "*", "events*"))) == 1


def _train_until(cmd, line_part, env=None):
    """Start ``cmd`` in its own process group; returns it once a line holding ``line_part``
    was printed (training is under way)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1",
                                                    PYTHONUNBUFFERED="1", **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    for line in proc.stdout:
        if line_part in line:
            return proc
    raise AssertionError(f"the run ended before printing {line_part!r}: rc {proc.wait()}")


def _stop_message_and_checkpoint(output, out):
    """The iteration of "checkpoint saved at iteration N, exiting", checked against the file."""
    match = re.search(r"checkpoint saved at iteration (\d+), exiting", output)
    assert match, output
    ckpt = torch.load(os.path.join(_folder(out), "checkpoint.pth.tar"), map_location="cpu",
                      weights_only=True)
    assert ckpt["iteration"] == int(match.group(1))
    assert "DataLoader worker" not in output and "Traceback" not in output.split(match[0])[0]
    assert not os.path.exists(os.path.join(_folder(out), "final_state.pth"))
    return ckpt["iteration"]


def test_sigterm_to_the_process_group_with_loader_workers_saves_and_exits_cleanly(
        synthetic_root, tmp_path):
    # As torchrun and SLURM do: the signal reaches the loader workers too.
    out = str(tmp_path)
    args = [sys.executable, "tools/train.py", "--cfg", OFFSET_CFG,
            *small_opts(synthetic_root, out, epochs=50, WORKERS=2, **{"TRAIN.EVAL_INTERVAL": 0})]
    proc = _train_until(args, " it 4 ")
    os.killpg(proc.pid, signal.SIGTERM)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, rest
    assert 4 <= _stop_message_and_checkpoint(rest, out) < 50 * 4


def test_sigterm_to_torchrun_with_loader_workers_saves_at_the_last_step(synthetic_root,
                                                                        tmp_path):
    out = str(tmp_path)
    exe = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    launcher = [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]
    cmd = launcher + ["--nproc_per_node=1", "--master_port", str(free_port()), "tools/train.py",
                      "--cfg", OFFSET_CFG, *small_opts(synthetic_root, out, epochs=50, WORKERS=2,
                                                       **{"TRAIN.EVAL_INTERVAL": 0})]
    proc = _train_until(cmd, " it 4 ")
    proc.send_signal(signal.SIGTERM)  # torchrun passes it to each rank's process group
    rest = proc.communicate(timeout=120)[0]
    # The rank saves and exits 0 (torchrun reports a failed rank otherwise); the launcher itself
    # ends with its own SignalException, as torch.distributed.elastic does after any signal.
    assert "ChildFailedError" not in rest, rest
    assert 4 <= _stop_message_and_checkpoint(rest, out) < 50 * 4


def _child_with_rank(parent, rank):
    """The pid of the child process of ``parent`` whose environment says RANK=``rank``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if ppid == parent and f"RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no child of {parent} has RANK={rank}")


def test_torchrun_restarts_after_a_killed_rank_and_ends_with_the_uninterrupted_weights(
        synthetic_root, tmp_path):
    """``torchrun --max-restarts=1`` with AUTO_RESUME: one of two gloo ranks is killed in the
    middle of an epoch; the agent stops the other and starts both again, they resume from the
    last checkpoint and end with the weights of a run left alone (bit for bit)."""
    # 8 images, 2 per rank: 2 iterations per epoch; iteration 3 is in the middle of epoch 2.
    extra = {"PRINT_FREQ": 1, "TRAIN.CHECKPOINT_INTERVAL": 1, "TRAIN.EVAL_INTERVAL": 0,
             "AUTO_RESUME": True}

    def torchrun(out):
        return ["-m", "torch.distributed.run", "--max-restarts=1", "--nproc_per_node=2",
                "--master_port", str(free_port()), "tools/train.py", "--cfg", OFFSET_CFG,
                *small_opts(synthetic_root, out, epochs=2, **extra)]

    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    run_tool(torchrun(straight))
    proc = _train_until([sys.executable, *torchrun(killed)],
                        "saved checkpoint.pth.tar at iteration 3")
    os.kill(_child_with_rank(proc.pid, 1), signal.SIGKILL)
    try:
        rest = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:  # torchrun stops its workers when it is stopped
            proc.terminate()
            proc.wait()
    assert proc.returncode == 0, rest
    assert re.search(r"failed \(exitcode: -9\) local_rank: 1", rest), rest  # the agent saw it
    assert re.search(r"resumed from \S+checkpoint.pth.tar at iteration 3", rest), rest
    assert "final weights identical on all 2 ranks" in rest
    a = _weights(os.path.join(_folder(straight), "final_state.pth"))
    b = _weights(os.path.join(_folder(killed), "final_state.pth"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_extra_phase_trains_on_its_own_list_with_its_own_schedule(synthetic_root, tmp_path):
    trainer = _trainer(synthetic_root, str(tmp_path), **{
        "TRAIN.END_EPOCH": 1, "TRAIN.EXTRA_EPOCH": 2, "TRAIN.EXTRA_LR": 0.001,
        "DATASET.EXTRA_TRAIN_SET": "list/cityscapes/trainval.lst", "TRAIN.EVAL_INTERVAL": 0})
    main_iters = len(trainer.loader)
    extra_iters = len(trainer.parts.phases[1][0])
    assert extra_iters > main_iters  # trainval (12 images) is longer than train (8)
    lrs = []
    optimizer = trainer.parts.step.optimizer
    real_step = optimizer.step

    def recording_step(*a, **k):
        lrs.append(optimizer.param_groups[0]["lr"])
        return real_step(*a, **k)

    optimizer.step = recording_step
    assert trainer.fit()
    assert len(lrs) == main_iters + 2 * extra_iters
    expected = [0.02 * (1 - i / main_iters) ** 0.9 for i in range(main_iters)]
    expected += [0.001 * (1 - i / (2 * extra_iters)) ** 0.9 for i in range(2 * extra_iters)]
    assert lrs == pytest.approx(expected)


def test_a_stop_at_the_last_step_of_an_epoch_still_validates_and_checkpoints(
        synthetic_root, tmp_path, caplog):
    trainer = _trainer(synthetic_root, str(tmp_path), **{"TRAIN.END_EPOCH": 3,
                                                         "TRAIN.EVAL_INTERVAL": 1})
    per_epoch = len(trainer.loader)
    criterion = trainer.parts.step.criterion
    calls = []

    def stop_at_epoch_end(output, target):
        calls.append(1)
        if len(calls) == per_epoch:  # as if SIGTERM arrived during the last step of epoch 1
            trainer.request_stop()
        return criterion(output, target)

    trainer.parts.step.criterion = stop_at_epoch_end
    assert trainer.fit() is False
    assert len(calls) == per_epoch
    assert f"validation at iteration {per_epoch}" in caplog.text
    ckpt = torch.load(os.path.join(trainer.output_dir, "checkpoint.pth.tar"), map_location="cpu",
                      weights_only=True)
    assert ckpt["iteration"] == per_epoch
    assert os.path.isfile(os.path.join(trainer.output_dir, "best.pth"))
    assert not os.path.exists(os.path.join(trainer.output_dir, "final_state.pth"))
