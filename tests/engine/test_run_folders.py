"""Run and evaluation folders: names, the latest link, what resume and evaluation pick."""
import json
import os
from datetime import datetime

import pytest

from lib.config import load_cfg
from lib.engine import run_folders
from lib.engine.run_folders import (
    evaluation_dir,
    evaluation_name,
    find_run,
    mark_latest,
    overrides_name,
    run_to_evaluate,
    training_run,
)
from lib.utils.errors import RunError
from tests.helpers import OFFSET_CFG

NAME = os.path.splitext(os.path.basename(OFFSET_CFG))[0]
NOW = datetime(2026, 12, 7, 22, 45, 1).timestamp()


def _cfg(tmp_path, *opts):
    return load_cfg(OFFSET_CFG, ["OUTPUT_DIR", str(tmp_path / "output"),
                                 "LOG_DIR", str(tmp_path / "log"), *opts])


def _start(run, cfg):
    """What a run of ``cfg`` that has started leaves: its config.yaml, and the latest link."""
    with open(os.path.join(run.folder, "config.yaml"), "w") as f:
        f.write(cfg.dump())
    mark_latest(run.folder)


def test_the_name_of_the_overrides_lists_what_changes_and_leaves_folders_and_launch_out():
    file_value = load_cfg(OFFSET_CFG, []).TRAIN.END_EPOCH
    cfg = load_cfg(OFFSET_CFG, ["TRAIN.END_EPOCH", "2", "TRAIN.LR", "0.01", "WORKERS", "0",
                                "OUTPUT_DIR", "/x", "TRAIN.RESUME", "True",
                                "TEST.SCALE_LIST", "0.5,1.0"])
    assert file_value != 2
    # Sorted by key; the evaluation's keys (TEST.*) are no part of what a run trains.
    assert overrides_name(cfg, OFFSET_CFG) == "END_EPOCH-2_LR-0.01"
    # A value equal to the file's is no change.
    same = load_cfg(OFFSET_CFG, ["TRAIN.END_EPOCH", str(file_value)])
    assert overrides_name(same, OFFSET_CFG) == ""


def test_a_long_name_is_cut_and_keeps_a_hash_of_the_whole():
    long_path = "/a/very/long/path/"
    a = overrides_name(load_cfg(OFFSET_CFG, ["MODEL.PRETRAINED", long_path * 8]), OFFSET_CFG)
    b = overrides_name(load_cfg(OFFSET_CFG, ["MODEL.PRETRAINED", long_path * 9]), OFFSET_CFG)
    assert len(a) == len(b) == 64 and a != b and a[:40] == b[:40]


def test_new_runs_get_new_folders_named_by_time_job_and_overrides(tmp_path):
    cfg = _cfg(tmp_path, "TRAIN.LR", "0.01")
    stamp = datetime.fromtimestamp(NOW).strftime("%Y%m%d-%H%M%S")
    slurm = {"SLURM_JOB_ID": "4242"}
    first = training_run(cfg, OFFSET_CFG, environ=slurm, now=NOW)
    second = training_run(cfg, OFFSET_CFG, environ=slurm, now=NOW)  # the same second
    experiment = tmp_path / "output" / "cityscapes" / NAME
    assert first.folder == str(experiment / f"{stamp}_job4242_LR-0.01")
    assert second.folder == first.folder + "-2"
    assert first.how == second.how == "new" and os.path.isdir(second.folder)
    assert first.tensorboard == str(tmp_path / "log" / "cityscapes" / NAME /
                                    f"{stamp}_job4242_LR-0.01")
    array = {"SLURM_JOB_ID": "4250", "SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": "3"}
    assert "_job4242_3_" in training_run(cfg, OFFSET_CFG, environ=array, now=NOW).folder


def test_resume_continues_the_jobs_own_run_else_the_latest_else_starts_a_new_one(tmp_path):
    cfg = _cfg(tmp_path)
    resume = _cfg(tmp_path, "AUTO_RESUME", "True")
    fresh = training_run(resume, OFFSET_CFG, environ={}, now=NOW)
    assert fresh.how == "new_nothing_to_resume"  # nothing to continue yet
    assert "nothing to resume" in fresh.describe()
    _start(fresh, resume)
    requeued_job = training_run(cfg, OFFSET_CFG, environ={"SLURM_JOB_ID": "7"}, now=NOW + 1)
    _start(requeued_job, cfg)
    other = training_run(cfg, OFFSET_CFG, environ={}, now=NOW + 2)
    _start(other, cfg)  # the latest run now
    continued = training_run(resume, OFFSET_CFG, environ={"SLURM_JOB_ID": "7"}, now=NOW + 3)
    assert (continued.folder, continued.how) == (requeued_job.folder, "resumed")
    newest = training_run(resume, OFFSET_CFG, environ={}, now=NOW + 3)
    assert (newest.folder, newest.how) == (other.folder, "resumed")
    # Other settings: a run with them is continued, never one trained with others.
    lower = _cfg(tmp_path, "AUTO_RESUME", "True", "TRAIN.LR", "0.001")
    assert training_run(lower, OFFSET_CFG, environ={}, now=NOW + 4).how == "new_nothing_to_resume"
    # ... but other evaluation settings (TEST.*) or loader workers are the same run.
    same = _cfg(tmp_path, "AUTO_RESUME", "True", "TEST.BATCH_SIZE_PER_GPU", "7", "WORKERS", "1")
    assert training_run(same, OFFSET_CFG, environ={}, now=NOW + 5).folder == other.folder
    # A run that never started (no config.yaml) is not a job's run to continue.
    experiment = os.path.dirname(other.folder)
    os.makedirs(os.path.join(experiment, "20990101-000000_job8"))
    assert os.path.realpath(find_run(experiment, {"SLURM_JOB_ID": "8"})) == other.folder


def test_run_dir_names_the_folder_and_never_starts_over_a_run(tmp_path):
    folder = tmp_path / "scripted"
    cfg = _cfg(tmp_path, "RUN_DIR", str(folder))
    run = training_run(cfg, OFFSET_CFG, environ={})
    assert (run.folder, run.how, run.tensorboard) == (str(folder), "given",
                                                      str(folder / "tensorboard"))
    _start(run, cfg)
    with pytest.raises(RunError, match=f"RUN_DIR {folder} holds a run already"):
        training_run(_cfg(tmp_path, "RUN_DIR", str(folder)), OFFSET_CFG, environ={})
    again = training_run(_cfg(tmp_path, "RUN_DIR", str(folder), "TRAIN.RESUME", "True"),
                         OFFSET_CFG, environ={})
    assert again.folder == str(folder)


def test_the_latest_link_is_relative_and_replaced(tmp_path):
    experiment = tmp_path / "exp"
    for name in ("a", "b"):
        (experiment / name).mkdir(parents=True)
        assert mark_latest(str(experiment / name))
        assert os.readlink(experiment / "latest") == name
    assert sorted(os.listdir(experiment)) == ["a", "b", "latest"]  # no temporary left


def test_evaluation_picks_the_weights_and_the_run_they_belong_to(tmp_path):
    cfg = _cfg(tmp_path)
    experiment = str(tmp_path / "output" / "cityscapes" / NAME)
    with pytest.raises(RunError, match=f"{experiment} has no run to evaluate"):
        run_to_evaluate(cfg, OFFSET_CFG, environ={})
    run = training_run(cfg, OFFSET_CFG, environ={}, now=NOW)
    _start(run, cfg)
    with pytest.raises(RunError, match="has no final_state.pth"):
        run_to_evaluate(cfg, OFFSET_CFG, environ={})
    open(os.path.join(run.folder, "final_state.pth"), "w").close()
    weights, holder = run_to_evaluate(cfg, OFFSET_CFG, environ={})
    assert os.path.realpath(holder) == run.folder
    assert os.path.realpath(weights) == os.path.join(run.folder, "final_state.pth")
    # Weights given: their own run when they lie in one, else the experiment folder.
    best = os.path.join(run.folder, "best.pth")
    assert run_to_evaluate(_cfg(tmp_path, "TEST.MODEL_FILE", best), OFFSET_CFG) == \
        (best, run.folder)
    downloaded = str(tmp_path / "hrnet_cityscapes.pth")
    assert run_to_evaluate(_cfg(tmp_path, "TEST.MODEL_FILE", downloaded), OFFSET_CFG) == \
        (downloaded, experiment)


def test_evaluation_names_say_what_was_evaluated():
    assert evaluation_name("out/run/final_state.pth", "list/cityscapes/val.lst", "cityscapes",
                           (0.5, 0.75, 1.0, 1.25, 1.5, 1.75), True) == \
        "final_state_val_cityscapes_s0.5-0.75-1.0-1.25-1.5-1.75_flip"
    assert evaluation_name("w/checkpoint.pth.tar", "list/ade20k/val.lst", "ade20k", (1.0,),
                           False) == "checkpoint_val_ade20k_s1.0_noflip"


def test_an_evaluation_of_other_weights_of_the_same_name_gets_its_own_folder(tmp_path):
    first = evaluation_dir(str(tmp_path), "final_state_val", "a/final_state.pth")
    os.makedirs(first)
    with open(os.path.join(first, "results.json"), "w") as f:
        json.dump({"model_file": "a/final_state.pth"}, f)
    assert evaluation_dir(str(tmp_path), "final_state_val", "a/final_state.pth") == first
    assert evaluation_dir(str(tmp_path), "final_state_val", "b/final_state.pth") == first + "-2"


def test_every_name_in_the_module_is_exported():
    public = {n for n in vars(run_folders) if not n.startswith("_") and n.isidentifier()
              and getattr(getattr(run_folders, n), "__module__", None) == run_folders.__name__}
    assert public <= set(run_folders.__all__)
