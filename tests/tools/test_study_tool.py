"""tools/study.py end to end: 2 experiment files x 2 seeds of a few iterations, the summary it
writes, a study that resumes half-finished, and the commands it prints for a scheduler."""
import json
import os
import shlex
import subprocess

import pytest

from tests.helpers import BASELINE_CFG, OFFSET_CFG, ROOT, run_tool, small_opts


def _study_args(data_root, out):
    common = small_opts(data_root, out, epochs=1, TRAIN__NUM_SAMPLES=4)
    # small_opts' own OUTPUT_DIR / LOG_DIR are the study's to set, per run
    pairs = [common[i:i + 2] for i in range(0, len(common), 2)]
    common = [x for k, v in pairs if k not in ("OUTPUT_DIR", "LOG_DIR")
              for x in (k.replace("__", "."), v)]
    return ["tools/study.py", "--cfg", BASELINE_CFG, "--cfg", OFFSET_CFG, "--seeds", "0", "1",
            "--out", os.path.join(out, "study"), "--", *common]


@pytest.fixture(scope="module")
def finished_study(synthetic_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("study"))
    args = _study_args(synthetic_root, out)
    proc = run_tool(args, timeout=600)
    return args, os.path.join(out, "study"), proc


def test_study_trains_every_variant_and_seed_into_its_own_folder(finished_study):
    _, out, _ = finished_study
    with open(os.path.join(out, "study.json")) as f:
        study = json.load(f)
    runs = {(r["name"], r["seed"]): r for r in study["runs"]}
    assert set(runs) == {("baseline", 0), ("baseline", 1), ("offset", 0), ("offset", 1)}
    folders = {r["folder"] for r in runs.values()}
    assert len(folders) == 4
    for (name, seed), run in runs.items():
        assert run["results"] is not None and run["seconds"] > 0
        assert run["folder"].endswith(os.path.join("runs", name, f"seed{seed}"))
        # the seed reached the run's config
        with open(os.path.join(run["folder"], "config.yaml")) as f:
            assert f"SEED: {seed}" in f.read()
    # two seeds of one variant trained differently (different data order and initialisation)
    assert _miou(runs[("offset", 0)]["results"]) != _miou(runs[("offset", 1)]["results"])


def _miou(results):
    """The final prediction's mIoU of a results.json (or of a study's summary of them)."""
    return results["predictions"][results["final_prediction"]]["mIoU"]


def test_study_summary_matches_its_runs(finished_study):
    _, out, _ = finished_study
    with open(os.path.join(out, "study.json")) as f:
        study = json.load(f)
    by = {(r["name"], r["seed"]): r["results"] for r in study["runs"]}
    values = [_miou(by[("offset", s)]) for s in (0, 1)]
    summary = _miou(study["summary"]["offset"])
    assert summary["n"] == 2 and summary["mean"] == pytest.approx(sum(values) / 2)
    assert summary["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert set(study["summary"]["offset"]["predictions"]) == {"logits", "seed_logits", "fused_logits"}
    diff = next(d for d in study["differences"] if d["b"] == "offset" and d["metric"] == "mIoU")
    expected = sum(_miou(by[("offset", s)]) - _miou(by[("baseline", s)]) for s in (0, 1)) / 2
    assert diff["a"] == "baseline" and diff["n"] == 2 and diff["mean"] == pytest.approx(expected)
    text = open(os.path.join(out, "study.md")).read()
    assert "| baseline | 2 |" in text and "| offset | 2 |" in text
    assert "tools/study.py" in text  # the command that reproduces it
    for figure in ("iou.png", "trimap.png"):
        assert os.path.getsize(os.path.join(out, figure)) > 1000


def test_study_started_again_skips_finished_runs_and_resumes_the_others(finished_study):
    args, out, _ = finished_study
    runs = os.path.join(out, "runs")

    def run_dir(name, seed):
        return os.path.join(runs, name, f"seed{seed}")

    untouched = os.path.join(run_dir("baseline", 0), "final_state.pth")
    before = os.stat(untouched).st_mtime_ns
    # offset seed 0: trained, not evaluated; offset seed 1: stopped with only its checkpoint
    os.remove(os.path.join(run_dir("offset", 0), "evaluation", "results.json"))
    os.remove(os.path.join(run_dir("offset", 1), "final_state.pth"))
    os.remove(os.path.join(run_dir("offset", 1), "evaluation", "results.json"))
    proc = run_tool(args, timeout=600)
    assert os.stat(untouched).st_mtime_ns == before
    assert "2 done, 2 to run" in proc.stderr
    with open(os.path.join(runs, "offset", "seed0", "study_run.json")) as f:
        assert json.load(f)["steps"] == ["test"]
    train_log = open(os.path.join(runs, "offset", "seed1", "train.out")).read()
    assert "resumed from" in train_log
    assert os.path.isfile(os.path.join(run_dir("offset", 1), "evaluation", "results.json"))


def test_print_commands_gives_one_runnable_line_per_run(synthetic_root, tmp_path):
    args = _study_args(synthetic_root, str(tmp_path)) + ["--print-commands"]
    proc = run_tool(args)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4
    train, test = lines[3].split(" && ")
    train, test = shlex.split(train), shlex.split(test)
    assert train[1].endswith("tools/train.py") and test[1].endswith("tools/test.py")
    assert train[train.index("TRAIN.SEED") + 1] == "1"
    assert train[train.index("RUN_DIR") + 1].endswith(os.path.join("runs", "offset", "seed1"))
    assert test[test.index("TEST.MODEL_FILE") + 1].endswith(
        os.path.join("runs", "offset", "seed1", "final_state.pth"))
    assert test[test.index("TEST.EVAL_DIR") + 1].endswith(
        os.path.join("runs", "offset", "seed1", "evaluation"))
    assert not os.path.exists(os.path.join(str(tmp_path), "study"))  # nothing ran


def test_a_mistyped_variant_key_stops_the_study_before_anything_trains(synthetic_root,
                                                                       tmp_path):
    args = _study_args(synthetic_root, str(tmp_path))
    args[args.index("--seeds"):args.index("--seeds")] = ["--variant", "typo",
                                                         "LOSS.TERM_WEIGHT", "[1,1,1,1]"]
    proc = run_tool(args, check=False)
    assert proc.returncode != 0
    assert "study variant 'typo'" in proc.stderr and "TERM_WEIGHTS" in proc.stderr
    assert not os.path.exists(os.path.join(str(tmp_path), "study", "runs"))


def test_a_job_array_task_runs_its_line_and_the_study_then_only_summarises(synthetic_root,
                                                                          tmp_path):
    args = _study_args(synthetic_root, str(tmp_path))
    args[args.index("--cfg", 2):args.index("--cfg", 2) + 2] = []  # the baseline alone
    args[args.index("--seeds") + 1:args.index("--seeds") + 3] = ["5"]
    commands = tmp_path / "commands.txt"
    commands.write_text(run_tool([*args, "--print-commands"]).stdout)
    proc = subprocess.run(["bash", "tools/slurm/study_array.sbatch", str(commands)], cwd=ROOT,
                          env=dict(os.environ, SLURM_ARRAY_TASK_ID="1", OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = run_tool(args)
    assert "1 done, 0 to run" in summary.stderr
    with open(tmp_path / "study" / "study.json") as f:
        study = json.load(f)
    name = os.path.splitext(os.path.basename(BASELINE_CFG))[0]  # one file keeps its name
    assert [(r["name"], r["seed"]) for r in study["runs"]] == [(name, 5)]
    assert _miou(study["summary"][name])["n"] == 1
    missing = subprocess.run(["bash", "tools/slurm/study_array.sbatch", str(commands)], cwd=ROOT,
                             env=dict(os.environ, SLURM_ARRAY_TASK_ID="9"), capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "no line 9" in missing.stderr


def test_summary_only_trains_nothing_and_names_the_runs_not_finished(synthetic_root, tmp_path):
    args = _study_args(synthetic_root, str(tmp_path))
    run_tool([*args, "--summary-only"])
    out = tmp_path / "study"
    assert not (out / "runs").exists() or not any((out / "runs").rglob("final_state.pth"))
    text = (out / "study.md").read_text()
    assert "Not finished: baseline seed 0, baseline seed 1, offset seed 0, offset seed 1." in text
    assert "--summary-only" not in text  # the command given reproduces the study itself
    with open(out / "study.json") as f:
        assert [r["results"] for r in json.load(f)["runs"]] == [None] * 4
