"""tools/train.py and tools/test.py side by side: runs and evaluations never overwrite each other."""
import glob
import hashlib
import os

from tests.helpers import OFFSET_CFG, experiment_folder, latest_run, run_tool, small_opts


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_a_second_run_and_a_second_evaluation_get_their_own_folders(synthetic_root, tmp_path):
    out = str(tmp_path)
    opts = small_opts(synthetic_root, out, epochs=1, **{"TRAIN.EVAL_INTERVAL": 0})
    run_tool(["tools/train.py", "--cfg", OFFSET_CFG, *opts])
    first = os.path.realpath(latest_run(out))
    weights = _digest(os.path.join(first, "final_state.pth"))

    again = run_tool(["tools/train.py", "--cfg", OFFSET_CFG, *opts, "TRAIN.LR", "0.001"])
    second = os.path.realpath(latest_run(out))
    assert second != first and os.path.dirname(second) == os.path.dirname(first)
    assert f"a new run in {second}" in again.stdout
    assert _digest(os.path.join(first, "final_state.pth")) == weights  # left as it was
    runs = sorted(os.listdir(os.path.join(out, "log", "cityscapes",
                                          os.path.basename(experiment_folder(out)))))
    assert runs == sorted(os.path.basename(r) for r in (first, second))
    for run in runs:  # one TensorBoard curve per run
        assert len(glob.glob(os.path.join(out, "log", "cityscapes", "*", run, "events*"))) == 1

    # Without TEST.MODEL_FILE the latest run is evaluated, each procedure into its own folder.
    for scales in ("1.0", "0.5,1.0"):
        proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, *opts, "TEST.SCALE_LIST", scales])
        assert f"evaluation folder: {second}/eval/" in proc.stdout
    evaluations = sorted(os.listdir(os.path.join(second, "eval")))
    assert evaluations == ["final_state_val_cityscapes_s0.5-1.0_noflip",
                           "final_state_val_cityscapes_s1.0_noflip"]
    for name in evaluations:
        assert os.path.isfile(os.path.join(second, "eval", name, "results.json"))
    assert not os.path.exists(os.path.join(first, "eval"))
