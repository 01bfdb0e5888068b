"""tools/slurm/train_1node_4gpu.sbatch run as SLURM runs it, with a stand-in ``srun`` that starts
one process per task with SLURM's variables and none of torchrun's: tools/train.py and
tools/test.py must form one gloo group from those variables alone."""
import glob
import json
import os
import stat
import subprocess
import sys

import cv2
import pytest

from tests.helpers import (
    OFFSET_CFG,
    ROOT,
    TO_TRAIN_ID,
    free_port,
    latest_run,
    only_evaluation,
    small_opts,
)

LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                 "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")

# srun on one node: SLURM_NTASKS copies of the command, task i with SLURM_PROCID = SLURM_LOCALID
# = i and the step's size SLURM_STEP_NUM_TASKS, each writing to <SRUN_LOGS>/step<k>_task<i>.log
# (step k = how many srun calls came before); fails when a task fails.  srun's own options
# (--kill-on-bad-exit=1) come before the command and are left out.
FAKE_SRUN = f"""#!{sys.executable}
import os, subprocess, sys
logs = os.environ["SRUN_LOGS"]
step = len({{name.split("_")[0] for name in os.listdir(logs)}})
command = sys.argv[1:]
while command[0].startswith("-"):
    command = command[1:]
procs = []
for task in range(int(os.environ["SLURM_NTASKS"])):
    env = dict(os.environ, SLURM_PROCID=str(task), SLURM_LOCALID=str(task),
               SLURM_STEP_NUM_TASKS=os.environ["SLURM_NTASKS"])
    log = open(os.path.join(logs, f"step{{step}}_task{{task}}.log"), "w")
    procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
sys.exit(max(proc.wait() for proc in procs))
"""


def _fake_slurm_env(tmp_path, tasks):
    bin_dir, logs = tmp_path / "bin", tmp_path / "srun_logs"
    bin_dir.mkdir()
    logs.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(FAKE_SRUN)
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    # The script's `python` is the interpreter of this test run.  A symlink to it would not do:
    # a virtual environment's interpreter recognises its environment by its own path only.
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in os.environ.items()
           if k not in LAUNCHER_VARS and not k.startswith("SLURM_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", SRUN_LOGS=str(logs),
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", SLURM_NTASKS=str(tasks),
               SLURM_CPUS_PER_TASK="1", SLURM_NODELIST="localhost", SLURM_JOB_ID="77",
               # The port derived from the job id (10077) may be taken on a shared machine;
               # the environment's port wins.  The derivation has its own unit test.
               MASTER_PORT=str(free_port()))
    return env, logs


def _read(path):
    with open(path) as f:
        return f.read()


def test_sbatch_script_trains_and_evaluates_as_one_gloo_group(synthetic_root, tmp_path):
    env, logs = _fake_slurm_env(tmp_path, tasks=2)
    out = str(tmp_path / "run")
    opts = small_opts(synthetic_root, out, epochs=1)
    proc = subprocess.run(["bash", "tools/slurm/train_1node_4gpu.sbatch", OFFSET_CFG, *opts],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    task_logs = {os.path.basename(p)[:-4]: _read(p) for p in glob.glob(str(logs / "*.log"))}
    assert proc.returncode == 0, proc.stderr + "\n".join(task_logs.values())
    assert sorted(task_logs) == ["step0_task0", "step0_task1", "step1_task0", "step1_task1"]
    # all_equal over the group: printed only when both ranks took part and agree.
    assert "final weights identical on all 2 ranks" in task_logs["step0_task0"]
    folder = latest_run(out)
    assert "_job" in os.path.basename(os.path.realpath(folder))  # named by its SLURM job
    assert len(glob.glob(os.path.join(folder, "train_*.log"))) == 1  # rank 0 alone writes

    assert "results:" in task_logs["step1_task0"] and "results:" not in task_logs["step1_task1"]
    with open(os.path.join(only_evaluation(folder), "results.json")) as f:
        results = json.load(f)
    assert results["scales"] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75] and results["flip"]
    # Each rank evaluates its half of the validation images; the matrix adds both halves.
    labels = glob.glob(os.path.join(synthetic_root, "cityscapes", "gtFine", "val", "*", "*.png"))
    valid = sum(int((TO_TRAIN_ID[cv2.imread(p, cv2.IMREAD_UNCHANGED)] != 255).sum())
                for p in labels)
    assert results["num_images"] == len(labels) == 4
    assert sum(map(sum, results["confusion_matrix"])) == valid


def _recording_srun(tmp_path):
    """An environment whose srun only appends its command line to the returned file."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\n')
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               SLURM_CPUS_PER_TASK="6")
    return env, calls


@pytest.mark.parametrize("script, batch_opts", [
    ("train_1node_4gpu.sbatch", []),
    ("train_2nodes_8gpu.sbatch", ["TRAIN.BATCH_SIZE_PER_GPU", "1"]),
])
def test_sbatch_scripts_pass_the_experiment_and_the_overrides_to_both_tools(tmp_path, script,
                                                                            batch_opts):
    """The user's overrides come after the script's own settings, so that they win; srun ends
    every task when one fails (a rank out of memory must not leave the others waiting)."""
    env, calls = _recording_srun(tmp_path)
    for restarts, resume in (("0", "False"), ("1", "True")):  # a new job, then its requeue
        calls.write_text("")
        subprocess.run(["bash", f"tools/slurm/{script}", "my.yaml", "TRAIN.LR", "0.1"],
                       cwd=ROOT, env=dict(env, SLURM_RESTART_COUNT=restarts), check=True,
                       timeout=60)
        train, test = (line.split() for line in calls.read_text().splitlines())
        assert train == ["--kill-on-bad-exit=1", "python", "tools/train.py", "--cfg", "my.yaml",
                         "WORKERS", "6", "AUTO_RESUME", resume, *batch_opts, "TRAIN.LR", "0.1"]
        assert test == ["--kill-on-bad-exit=1", "python", "tools/test.py", "--cfg", "my.yaml",
                        "WORKERS", "6",
                        "TEST.SCALE_LIST", "0.5,0.75,1.0,1.25,1.5,1.75", "TEST.FLIP_TEST", "True",
                        "TRAIN.LR", "0.1"]


def test_sbatch_script_without_arguments_trains_the_w48_offset_recipe(tmp_path):
    env, calls = _recording_srun(tmp_path)
    subprocess.run(["bash", "tools/slurm/train_1node_4gpu.sbatch"], cwd=ROOT, env=env,
                   check=True, timeout=60)
    words = calls.read_text().split()
    cfg = words[words.index("--cfg") + 1]
    assert os.path.isfile(os.path.join(ROOT, cfg)) and "w48" in cfg and "bs_8" in cfg
