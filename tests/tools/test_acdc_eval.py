"""tools/test.py on an ACDC-format set reports every condition."""
import json
import os

import torch

from lib.config import load_cfg
from lib.models import build_model
from tests.helpers import OFFSET_CFG, experiment_folder, only_evaluation, run_tool, small_opts

NAME = os.path.splitext(os.path.basename(OFFSET_CFG))[0]


def test_acdc_evaluation_reports_a_table_and_metrics_per_condition(tmp_path):
    root = str(tmp_path / "acdc")
    run_tool(["tools/make_synthetic_dataset.py", "--root", root, "--dataset", "acdc", "--train", "4",
              "--val", "8", "--test", "0", "--size", "64", "128", "--seed", "5"])
    opts = small_opts(root, str(tmp_path)) + [
        "DATASET.DATASET", "acdc", "DATASET.TEST_SET", "list/acdc/val.lst",
        "DATASET.TRAIN_SET", "list/acdc/train.lst"]
    weights = str(tmp_path / "weights.pth")
    torch.save(build_model(load_cfg(OFFSET_CFG, opts), load_pretrained=False).state_dict(), weights)
    proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, *opts, "TEST.MODEL_FILE", weights])
    header = next(line for line in proc.stdout.splitlines() if line.startswith("class"))
    assert header.split() == ["class", "all", "fog", "night", "rain", "snow"]
    evaluation = only_evaluation(experiment_folder(str(tmp_path), dataset="acdc"))
    results = json.load(open(os.path.join(evaluation, "results.json")))
    final = results["predictions"][results["final_prediction"]]
    assert sorted(final["per_condition"]) == ["fog", "night", "rain", "snow"]
    for metrics in final["per_condition"].values():
        assert 0.0 <= metrics["pixel_acc"] <= 1.0 and set(metrics["IoU"]) == set(final["IoU"])
    # The overall matrix sums the per-condition ones, so its accuracy lies between theirs.
    per_condition_pixels = [m["pixel_acc"] for m in final["per_condition"].values()]
    assert min(per_condition_pixels) <= final["pixel_acc"] <= max(per_condition_pixels)
