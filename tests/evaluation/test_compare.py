"""tools/compare.py end to end on two small results.json files, and its table."""
import json
import math
import os

import cv2

from lib.datasets.cityscapes import CLASS_NAMES
from lib.evaluation.comparison import headline, headline_table, run_labels
from lib.evaluation.results import json_safe
from tests.evaluation.synthetic import results_json
from tests.helpers import ROOT, run_tool
from tools.compare import main as compare_main
from tools.compare import read_results


def _write(folder, results):
    folder.mkdir(parents=True)
    path = folder / "results.json"
    path.write_text(json.dumps(json_safe(results)))
    return str(path)


def _row(table, measure):
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == measure:
            return cells[1:]
    raise AssertionError(f"no row {measure!r} in\n{table}")


def test_compare_writes_figures_and_a_table_of_headline_differences(tmp_path):
    baseline = results_json(CLASS_NAMES, predictions=("logits",), seed=1)
    offset = results_json(CLASS_NAMES, seed=2)
    paths = [_write(tmp_path / "hrnet", baseline), _write(tmp_path / "offset", offset)]
    out = tmp_path / "compare"
    proc = run_tool(["tools/compare.py", *paths, "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["headline.md", "iou.png", "trimap.png"]
    for name in ("iou.png", "trimap.png"):
        assert cv2.imread(str(out / name)).std() > 10
    table = (out / "headline.md").read_text()
    assert table in proc.stdout
    assert table.splitlines()[0] == "| measure (%) | hrnet | offset | offset - hrnet |"
    mine, theirs, diff = _row(table, "mIoU")
    miou = [run["predictions"][field]["mIoU"]
            for run, field in ((baseline, "logits"), (offset, "fused_logits"))]
    assert mine == f"{100 * miou[0]:.2f}" and theirs == f"{100 * miou[1]:.2f}"
    assert math.isclose(float(diff), 100 * (miou[1] - miou[0]), abs_tol=0.005)
    # Boundary rows line up the final predictions: the baseline's S_i and the offset network's S_f.
    trimap = [run["boundary"][field]["trimap_mIoU"]["8"]
              for run, field in ((baseline, "logits"), (offset, "fused_logits"))]
    assert _row(table, "trimap 8px") == [f"{100 * trimap[0]:.2f}", f"{100 * trimap[1]:.2f}",
                                         f"{100 * (trimap[1] - trimap[0]):+.2f}"]
    assert "final prediction: hrnet S_i, offset S_f." in table
    assert _row(table, "fusion: fixed")[0] == "-"
    assert _row(table, "mIoU S_s")[0] == "-"


def test_compare_labels_runs_by_their_configurations_less_the_shared_words(tmp_path):
    names = ["seg_hrnet_tiny_baseline_64x128_sgd_lr2e-2_bs_8_epoch40",
             "seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch40"]
    paths = [_write(tmp_path / "output" / "cityscapes" / name, results_json(CLASS_NAMES, seed=i))
             for i, name in enumerate(names)]
    compare_main([*paths, "--out", str(tmp_path / "compare")])
    table = (tmp_path / "compare" / "headline.md").read_text()
    assert table.splitlines()[0] == "| measure (%) | baseline | offset | offset - baseline |"
    guide = open(os.path.join(ROOT, "docs", "analysis.md")).read()
    section = guide[guide.index("`tools/compare.py RESULTS.json"):]
    assert "--labels" in section[:section.index("\n\n")]


def test_compare_needs_two_runs_and_names_an_unreadable_file(tmp_path):
    path = _write(tmp_path / "a", results_json(CLASS_NAMES, predictions=("logits",)))
    proc = run_tool(["tools/compare.py", path, "--out", str(tmp_path / "o")], check=False)
    assert proc.returncode == 2 and "two or more" in proc.stderr
    missing = str(tmp_path / "nowhere" / "results.json")
    proc = run_tool(["tools/compare.py", path, missing, "--out", str(tmp_path / "o")],
                    check=False)
    assert proc.returncode != 0 and f"cannot read {missing}" in proc.stderr


def _one_prediction(**metrics):
    return {"final_prediction": "logits", "predictions": {"logits": metrics}}


def test_headline_differences_are_against_the_first_run():
    runs = {"a": _one_prediction(mIoU=0.5, pixel_acc=0.9, mean_acc=0.6, IoU={}),
            "b": _one_prediction(mIoU=0.55, pixel_acc=0.85, mean_acc=None, IoU={})}
    table = headline_table(runs)
    assert _row(table, "mIoU") == ["50.00", "55.00", "+5.00"]
    assert _row(table, "pixel acc") == ["90.00", "85.00", "-5.00"]
    assert _row(table, "mean acc") == ["60.00", "-", "-"]
    assert list(headline(runs["a"])) == ["mIoU", "pixel acc", "mean acc", "mIoU S_i"]


def _earlier_layout(results, release):
    """``results`` as results.json files of earlier releases held them: "named_heads" (the
    predictions were called heads: "final_head", "heads"), "top_and_heads" (before "final_head":
    the final prediction's figures on top as well as in "heads"), "top" (before "heads": on top
    only)."""
    final = results["predictions"][results["final_prediction"]]
    renamed = {"final_prediction": "final_head", "predictions": "heads"}
    old = {renamed.get(key, key): value for key, value in results.items()}
    if release == "named_heads":
        return old
    old.pop("final_head")
    if release == "top":
        old = {key: value for key, value in old.items()
               if key not in ("heads", "boundary", "fusion")}
    return {**final, **old}


def test_results_files_of_earlier_layouts_are_compared_as_they_were(tmp_path):
    baseline = results_json(CLASS_NAMES, predictions=("logits",), seed=1)
    offset = results_json(CLASS_NAMES, seed=2)

    def table_of(name, runs):
        paths = [_write(tmp_path / name / label, run)
                 for label, run in zip(("hrnet", "offset"), runs, strict=True)]
        return headline_table({label: read_results(path)
                               for label, path in zip(("hrnet", "offset"), paths, strict=True)})

    now = table_of("now", (baseline, offset))
    assert "mIoU S_s" in now and "trimap 8px" in now
    for release in ("named_heads", "top_and_heads"):
        runs = [_earlier_layout(r, release) for r in (baseline, offset)]
        assert "final_prediction" not in runs[1] and "predictions" not in runs[1]
        assert table_of(release, runs) == now
    # Before "heads": the top-level figures are those of a prediction named "final".
    oldest = table_of("oldest", [_earlier_layout(r, "top") for r in (baseline, offset)])
    assert _row(oldest, "mIoU") == _row(now, "mIoU")
    assert _row(oldest, "mIoU final") == _row(now, "mIoU")
    assert "trimap 8px" not in oldest


def test_run_labels_are_the_folders_made_distinct():
    assert run_labels(["out/x/hrnet/results.json", "out/y/offset/results.json"]) == [
        "hrnet", "offset"]
    # Folders named after the configurations, as tools/test.py names them: the words they
    # share are dropped.
    assert run_labels([
        "output/cityscapes/seg_hrnet_tiny_baseline_64x128_sgd_lr2e-2_bs_8_epoch40/results.json",
        "output/cityscapes/seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch40/results.json",
    ]) == ["baseline", "offset"]
    assert run_labels(["out/cityscapes/run/results.json", "out/acdc/run/results.json"]) == [
        "cityscapes/run", "acdc/run"]
    assert run_labels(["r.json", "r.json"])[0].endswith("#1")


def test_run_labels_of_evaluations_in_run_folders_name_the_configuration_then_what_differs():
    base = "output/cityscapes/seg_hrnet_tiny_baseline_64x128_sgd_lr2e-2_bs_8_epoch40"
    offset = base.replace("baseline", "offset")
    flip = "eval/final_state_val_cityscapes_s0.5-1.0_flip/results.json"
    one = "eval/final_state_val_cityscapes_s1.0_noflip/results.json"
    assert run_labels([f"{base}/20261207-224501/{flip}", f"{offset}/20261207-231207/{flip}"]) == [
        "baseline", "offset"]
    # Two evaluations of one run: the evaluations tell them apart.
    assert run_labels([f"{offset}/20261207-231207/{one}", f"{offset}/20261207-231207/{flip}"]) == [
        f"{os.path.basename(offset)}/final_state_val_cityscapes_s1.0_noflip",
        f"{os.path.basename(offset)}/final_state_val_cityscapes_s0.5-1.0_flip"]
    # One evaluation of two runs of one config: the runs do.
    assert run_labels([f"{offset}/20261207-224501/{flip}", f"{offset}/20261208-001500/{flip}"]) \
        == [f"{os.path.basename(offset)}/{run}/final_state_val_cityscapes_s0.5-1.0_flip"
            for run in ("20261207-224501", "20261208-001500")]
