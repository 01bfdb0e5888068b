"""tools/compare.py on files that are not results.json files (named, exit status 2) and on runs
that score different classes (compared, with a warning)."""
import json

import pytest

from lib.datasets.cityscapes import CLASS_NAMES
from lib.evaluation.results import json_safe
from tests.evaluation.synthetic import results_json
from tests.helpers import run_tool
from tools.cli import run
from tools.compare import main


def _write(folder, content):
    folder.mkdir(parents=True)
    path = folder / "results.json"
    path.write_text(content if isinstance(content, str) else json.dumps(json_safe(content)))
    return str(path)


@pytest.fixture
def good(tmp_path):
    return _write(tmp_path / "good", results_json(CLASS_NAMES, predictions=("logits",), seed=1))


def _refused(capsys, paths, out):
    """Run compare in this process as its command line does; returns its stderr after the
    exit with status 2."""
    assert run(main, [*paths, "--out", str(out)]) == 2
    return capsys.readouterr().err


def test_a_json_file_that_is_not_a_results_file_is_named_with_status_2(tmp_path, good):
    # A config dump is JSON, but no evaluation.
    other = _write(tmp_path / "cfg", {"MODEL": {"NAME": "seg_hrnet"}, "TRAIN": {"LR": 0.01}})
    proc = run_tool(["tools/compare.py", good, other, "--out", str(tmp_path / "o")], check=False)
    assert proc.returncode == 2
    assert (f"{other} is not a results.json of tools/test.py: the file has no 'final_prediction'"
            in proc.stderr)
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


def _run(final="logits", **predictions):
    return {"final_prediction": final, "predictions": predictions}


@pytest.mark.parametrize("content, problem", [
    ("", "is not a JSON file"),  # what a write cut short leaves
    ("[0.5, 0.6]", "the file holds list, not an object"),
    (_run(logits={"IoU": {"road": "0.9"}, "mIoU": 0.9}),
     "predictions.logits.IoU.road is '0.9', not a number or null"),
    (_run(logits={"IoU": {"road": 0.9}}), "predictions.logits has no 'mIoU'"),
    (_run(logits={"IoU": {}, "mIoU": None}), "predictions.logits.IoU names no class"),
    (_run("fused_logits", logits={"IoU": {"road": 0.9}, "mIoU": 0.9}),
     "final_prediction 'fused_logits' is not one of predictions ['logits']"),
    (_run(3, logits={"IoU": {"road": 0.9}, "mIoU": 0.9}), "final_prediction is 3, not a string"),
    ({**_run(logits={"IoU": {"road": 0.9}, "mIoU": 0.9}),
      "boundary": {"logits": {"boundary_mIoU": 0.5, "trimap_mIoU": [0.1]}}},
     "boundary.logits.trimap_mIoU holds list, not an object"),
    (_run(logits={"IoU": {"road": 0.9}, "mIoU": True}),
     "predictions.logits.mIoU is True, not a number or null"),
    # Files of earlier layouts (the final prediction's figures on top) are checked once read anew.
    ({"IoU": {"road": "0.9"}, "mIoU": 0.9}, "predictions.final.IoU.road is '0.9', not a number or null"),
    ({"IoU": {"road": 0.9}, "mIoU": 0.9, "heads": {"logits": {"IoU": {}}}},
     "predictions.logits has no 'mIoU'"),
])
def test_what_is_wrong_with_a_file_is_named(tmp_path, capsys, good, content, problem):
    bad = _write(tmp_path / "bad", content)
    err = _refused(capsys, [good, bad], tmp_path / "o")
    assert bad in err and problem in err


def test_an_unreadable_file_is_named_with_status_2(tmp_path, capsys, good):
    missing = str(tmp_path / "nowhere" / "results.json")
    assert f"cannot read {missing}: No such file or directory" in _refused(
        capsys, [good, missing], tmp_path / "o")


def test_runs_of_different_classes_are_compared_with_a_warning(tmp_path, capsys, good):
    # Three classes, one of them (sky) a Cityscapes class.
    mine = _write(tmp_path / "streets3", results_json(["flat", "construction", "sky"],
                                                      predictions=("logits",), seed=2))
    main([good, mine, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert "warning: the runs have different classes (good 19, streets3 3; 1 in all of them)" in err
    assert "iou.png shows the classes of good" in err
    assert (tmp_path / "o" / "headline.md").is_file()
    # The same classes in another order are the same classes: no warning.
    shuffled = results_json(CLASS_NAMES, predictions=("logits",), seed=3)
    logits = shuffled["predictions"]["logits"]
    logits["IoU"] = dict(reversed(logits["IoU"].items()))
    main([good, _write(tmp_path / "reversed", shuffled), "--out", str(tmp_path / "o2")])
    assert "warning" not in capsys.readouterr().err
