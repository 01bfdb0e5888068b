"""tools/test.py end to end on the synthetic data: metrics, prediction files, unlabelled sets,
two processes, visualisations and errors."""
import json
import os
import re
import shutil
from dataclasses import replace
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from lib.config import load_cfg
from lib.datasets import build_dataset
from lib.evaluation.protocols import InferenceSettings, predict
from lib.models import build_eval_model, build_model
from tests.helpers import (
    BASELINE_CFG,
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_LABEL_IDS,
    CITYSCAPES_PALETTE,
    OFFSET_CFG,
    ROOT,
    TO_TRAIN_ID,
    experiment_folder,
    free_port,
    only_evaluation,
    run_tool,
    small_opts,
    spread_last_layer,
)

MULTI_SCALE = ["TEST.SCALE_LIST", "0.5,0.75,1.0,1.25,1.5,1.75", "TEST.FLIP_TEST", "True"]
IMAGE_SUFFIX = "_leftImg8bit.png"
PANELS = ("logits", "seed", "fused", "confidence", "offsets", "overlay")

@pytest.fixture(scope="module")
def spread_weights(synthetic_root, trained_run, tmp_path_factory):
    _, _, folder = trained_run
    cfg = load_cfg(OFFSET_CFG, small_opts(synthetic_root, str(tmp_path_factory.mktemp("cfg"))))
    return spread_last_layer(cfg, os.path.join(folder, "final_state.pth"),
                             tmp_path_factory.mktemp("spread") / "spread.pth")


@pytest.fixture(scope="module")
def evaluation(synthetic_root, spread_weights, tmp_path_factory):
    """One multi-scale, flipped evaluation of the validation list with --save-pred,
    TEST.SAVE_EVERY_PREDICTION and TEST.VISUALIZATION: the process, its output folder and its
    overrides."""
    out = str(tmp_path_factory.mktemp("evaluation"))
    opts = small_opts(synthetic_root, out) + MULTI_SCALE + [
        "TEST.MODEL_FILE", spread_weights, "TEST.VISUALIZATION", "True", "TEST.SAVE_EVERY_PREDICTION", "True"]
    proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, "--save-pred", *opts])
    return SimpleNamespace(proc=proc, out=out, opts=opts,
                           folder=only_evaluation(experiment_folder(out)))


def _read_results(folder):
    with open(os.path.join(folder, "results.json")) as f:
        return json.load(f)


def _list_items(root, list_name):
    """(stem, image path, label path or None) of each line of a list under ``root``."""
    items = []
    with open(os.path.join(root, "list", "cityscapes", list_name)) as f:
        for line in f:
            fields = line.split()
            if fields:
                stem = os.path.basename(fields[0])[:-len(IMAGE_SUFFIX)]
                label = os.path.join(root, "cityscapes", fields[1]) if len(fields) == 2 else None
                items.append((stem, os.path.join(root, "cityscapes", fields[0]), label))
    return items


def _printed_table(stdout):
    """{row name: printed value} of the table that follows the "results:" log line (up to the
    first empty line)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("results:"))
    rows = {}
    for line in lines[start + 1:]:
        if " INFO " in line or not line.strip():
            break
        match = re.match(r"^(\S.*?)\s{2,}(\S+)$", line)
        if match and match.group(1) != "class":
            rows[match.group(1)] = match.group(2)
    return rows


def _same_to_printed_precision(printed, value):
    if value is None:
        return printed == "-"
    return printed != "-" and abs(float(printed) - 100.0 * value) <= 0.005 + 1e-9


def test_multi_scale_flip_results_json_matches_the_printed_table(evaluation):
    results = _read_results(evaluation.folder)
    assert results["final_prediction"] == "fused_logits"
    assert set(results["predictions"]) == {"logits", "seed_logits", "fused_logits"}
    final = results["predictions"]["fused_logits"]
    assert {"mIoU", "pixel_acc", "mean_acc", "IoU"} <= set(final)
    assert not {"mIoU", "pixel_acc", "mean_acc", "IoU"} & set(results)  # said once, per prediction
    assert list(final["IoU"]) == list(CITYSCAPES_CLASS_NAMES)
    assert results["scales"] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75] and results["flip"] is True
    assert results["num_images"] == 4
    defined = [v for v in final["IoU"].values() if v is not None]
    assert final["mIoU"] == pytest.approx(sum(defined) / len(defined), abs=1e-12)
    printed = _printed_table(evaluation.proc.stdout)
    assert set(printed) == set(CITYSCAPES_CLASS_NAMES) | {"mIoU", "pixel acc", "mean acc"}
    for name in CITYSCAPES_CLASS_NAMES:
        assert _same_to_printed_precision(printed[name], final["IoU"][name]), name
    for row, key in (("mIoU", "mIoU"), ("pixel acc", "pixel_acc"), ("mean acc", "mean_acc")):
        assert _same_to_printed_precision(printed[row], final[key]), row
    assert f"evaluation folder: {os.path.abspath(evaluation.folder)}" in evaluation.proc.stdout


def _numpy_metrics(pairs):
    """IoU list (None where the union is empty), mIoU, pixel and mean accuracy of
    (predicted label ids, ground-truth label ids) pairs, counted with NumPy."""
    conf = np.zeros((len(CITYSCAPES_LABEL_IDS), len(CITYSCAPES_LABEL_IDS)), dtype=np.int64)
    for pred_ids, gt_ids in pairs:
        pred, gt = TO_TRAIN_ID[pred_ids].ravel(), TO_TRAIN_ID[gt_ids].ravel()
        keep = gt != 255
        np.add.at(conf, (gt[keep], pred[keep]), 1)
    tp, gt_count = np.diag(conf), conf.sum(axis=1)
    union = gt_count + conf.sum(axis=0) - tp
    iou = [float(t / u) if u else None for t, u in zip(tp, union, strict=True)]
    return {"IoU": iou, "mIoU": float(np.mean(tp[union > 0] / union[union > 0])),
            "pixel_acc": float(tp.sum() / conf.sum()),
            "mean_acc": float(np.mean(tp[gt_count > 0] / gt_count[gt_count > 0]))}


def test_results_json_agrees_with_a_numpy_count_of_the_saved_predictions(evaluation,
                                                                         synthetic_root):
    pairs = []
    for stem, _, label in _list_items(synthetic_root, "val.lst"):
        pred = cv2.imread(os.path.join(evaluation.folder, "predictions", "labelIds",
                                       f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(pred).tolist()) <= set(CITYSCAPES_LABEL_IDS), stem
        pairs.append((pred, cv2.imread(label, cv2.IMREAD_UNCHANGED)))
    expected = _numpy_metrics(pairs)
    results = _read_results(evaluation.folder)
    final = results["predictions"][results["final_prediction"]]
    for name, value in zip(CITYSCAPES_CLASS_NAMES, expected["IoU"], strict=True):
        assert final["IoU"][name] == (None if value is None else pytest.approx(value)), name
    for key in ("mIoU", "pixel_acc", "mean_acc"):
        assert final[key] == pytest.approx(expected[key], abs=1e-12), key


def test_save_pred_names_files_by_the_image_name_without_leftimg8bit(evaluation, synthetic_root):
    # berlin_000000_000019_leftImg8bit.png -> berlin_000000_000019.png, as docs/evaluation.md says.
    images = [os.path.basename(image) for _, image, _ in _list_items(synthetic_root, "val.lst")]
    expected = sorted(name.replace("_leftImg8bit.png", ".png") for name in images)
    for kind in ("labelIds", "color"):
        written = sorted(os.listdir(os.path.join(evaluation.folder, "predictions", kind)))
        assert written == expected, kind
    guide = open(os.path.join(ROOT, "docs", "evaluation.md")).read()
    assert "`predictions/labelIds/<name>.png`" in guide


def test_save_pred_writes_label_ids_and_colours_of_the_predicted_train_ids(evaluation):
    cfg = load_cfg(OFFSET_CFG, evaluation.opts)
    model = build_eval_model(cfg, cfg.TEST.MODEL_FILE, torch.device("cpu"))
    dataset = build_dataset(cfg, "test")
    settings = InferenceSettings.from_config(cfg)
    predictions = os.path.join(evaluation.folder, "predictions")
    classes_seen = set()
    for index in range(len(dataset)):
        image, _, _, stem = dataset[index]
        expected = predict(model, image[None], settings).argmax(dim=1)[0].numpy()
        classes_seen.update(np.unique(expected).tolist())
        ids = cv2.imread(os.path.join(predictions, "labelIds", f"{stem}.png"),
                         cv2.IMREAD_UNCHANGED)
        assert ids.dtype == np.uint8 and ids.shape == expected.shape, stem
        assert set(np.unique(ids).tolist()) <= set(CITYSCAPES_LABEL_IDS), stem
        np.testing.assert_array_equal(dataset.label_to_train_id[ids], expected, err_msg=stem)
        color = cv2.imread(os.path.join(predictions, "color", f"{stem}.png"), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(color[..., ::-1], CITYSCAPES_PALETTE[expected], err_msg=stem)
    assert len(classes_seen) >= 3, f"the test needs several predicted classes: {classes_seen}"


def test_save_every_prediction_writes_the_label_ids_of_every_prediction_of_the_procedure(evaluation):
    cfg = load_cfg(OFFSET_CFG, evaluation.opts)
    model = build_eval_model(cfg, cfg.TEST.MODEL_FILE, torch.device("cpu"))
    dataset = build_dataset(cfg, "test")
    predictions = ("logits", "seed_logits", "fused_logits")
    settings = replace(InferenceSettings.from_config(cfg), predictions=predictions)
    folder = os.path.join(evaluation.folder, "predictions")
    assert sorted(os.listdir(folder)) == sorted(["color", "labelIds", *predictions])
    differ = 0
    for index in range(len(dataset)):
        image, _, _, stem = dataset[index]
        scores = predict(model, image[None], settings).chunk(len(predictions), dim=1)
        expected = {field: s.argmax(dim=1)[0].numpy()
                    for field, s in zip(predictions, scores, strict=True)}
        for field in predictions:
            ids = cv2.imread(os.path.join(folder, field, f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert ids is not None and ids.dtype == np.uint8, f"{field}/{stem}.png"
            np.testing.assert_array_equal(dataset.label_to_train_id[ids], expected[field],
                                          err_msg=f"{field}/{stem}.png")
        differ += int((expected["logits"] != expected["fused_logits"]).sum())
    assert differ > 0, "the test needs predictions that differ somewhere"


def test_visualization_writes_every_panel_of_every_image(evaluation, synthetic_root):
    for stem, _, _ in _list_items(synthetic_root, "val.lst"):
        for panel in PANELS:
            picture = cv2.imread(os.path.join(evaluation.folder, "visualizations",
                                              f"{stem}_{panel}.png"), cv2.IMREAD_COLOR)
            assert picture is not None, f"{stem}_{panel}.png"
            assert picture.shape[0] == 64, f"{stem}_{panel}.png"
            if panel == "confidence":  # carries its colour bar on the right
                assert picture.shape[1] > 128
            else:
                assert picture.shape[1] == 128, f"{stem}_{panel}.png"
    log_dir = os.path.join(evaluation.folder, "tensorboard")
    assert any(f.startswith("events") for f in os.listdir(log_dir))


def test_unlabelled_test_set_writes_predictions_and_no_metrics(synthetic_root, trained_run,
                                                               tmp_path):
    _, _, trained = trained_run
    opts = small_opts(synthetic_root, str(tmp_path)) + [
        "DATASET.TEST_SET", "list/cityscapes/test.lst",
        "TEST.MODEL_FILE", os.path.join(trained, "final_state.pth"),
        "TEST.EVAL_DIR", str(tmp_path / "evaluation")]
    proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, "--save-pred", *opts])
    folder = str(tmp_path / "evaluation")
    items = _list_items(synthetic_root, "test.lst")
    assert len(items) == 2 and all(label is None for _, _, label in items)
    for stem, image_path, _ in items:
        ids = cv2.imread(os.path.join(folder, "predictions", "labelIds", f"{stem}.png"),
                         cv2.IMREAD_UNCHANGED)
        assert ids.shape == cv2.imread(image_path).shape[:2]
        assert set(np.unique(ids).tolist()) <= set(CITYSCAPES_LABEL_IDS)
        assert os.path.isfile(os.path.join(folder, "predictions", "color", f"{stem}.png"))
    assert not os.path.exists(os.path.join(folder, "results.json"))
    assert "no metrics" in proc.stdout and "mIoU" not in proc.stdout


def test_unlabelled_test_set_without_save_pred_stops_and_says_how_to_write_predictions(
        synthetic_root, trained_run, tmp_path):
    _, _, trained = trained_run
    weights = shutil.copy(os.path.join(trained, "final_state.pth"), tmp_path)
    opts = small_opts(synthetic_root, str(tmp_path)) + [
        "DATASET.TEST_SET", "list/cityscapes/test.lst", "TEST.MODEL_FILE", weights]
    proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, *opts], check=False)
    assert proc.returncode != 0
    error = proc.stderr.strip().splitlines()[-1]
    assert "list/cityscapes/test.lst has no labels" in error and "--save-pred" in error
    assert "predictions written" not in proc.stdout + proc.stderr
    evaluation = only_evaluation(experiment_folder(str(tmp_path)))
    assert [n for n in os.listdir(evaluation) if not n.startswith("test_")] == []  # its log only


def test_two_process_gloo_evaluation_gives_the_one_process_metrics_and_predictions(
        evaluation, synthetic_root, spread_weights, tmp_path):
    opts = small_opts(synthetic_root, str(tmp_path)) + MULTI_SCALE + [
        "TEST.MODEL_FILE", spread_weights]
    run_tool(["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port",
              str(free_port()), "tools/test.py", "--cfg", OFFSET_CFG, "--save-pred", *opts],
             env={"OMP_NUM_THREADS": "1"}, timeout=300)
    folder = only_evaluation(experiment_folder(str(tmp_path)))
    one, two = _read_results(evaluation.folder), _read_results(folder)
    for key in ("final_prediction", "predictions", "num_images", "confusion_matrix"):
        assert two[key] == one[key], key
    # Each image counted once: the matrix holds every labelled pixel of the set exactly once.
    labelled = sum(int(np.isin(cv2.imread(label, cv2.IMREAD_UNCHANGED), CITYSCAPES_LABEL_IDS).sum())
                   for _, _, label in _list_items(synthetic_root, "val.lst"))
    assert np.sum(one["confusion_matrix"]) == labelled
    # Each rank wrote its own shard: together they hold every image, predicted as one process does.
    for stem, _, _ in _list_items(synthetic_root, "val.lst"):
        got, want = (cv2.imread(os.path.join(f, "predictions", "labelIds", f"{stem}.png"),
                                cv2.IMREAD_UNCHANGED) for f in (folder, evaluation.folder))
        assert got is not None, stem
        np.testing.assert_array_equal(got, want, err_msg=stem)


def _named_keys(message):
    return set(re.findall(r"'([\w.]+?)(?::[^']*)?'", message))


@pytest.mark.parametrize("cfg_path, extra", [
    (BASELINE_CFG, []),
    (OFFSET_CFG, ["MODEL.EXTRA.STAGE4.NUM_CHANNELS", "[16,32,64,96]",
                  "MODEL.EXTRA.STAGE4_2.NUM_CHANNELS", "[16,32,64,96]"]),
], ids=["baseline_config", "narrower_stage4"])
def test_checkpoint_that_does_not_fit_the_config_names_the_file_and_a_key(
        synthetic_root, trained_run, tmp_path, cfg_path, extra):
    _, _, trained = trained_run
    model_file = os.path.join(trained, "final_state.pth")
    opts = small_opts(synthetic_root, str(tmp_path)) + ["TEST.MODEL_FILE", model_file, *extra]
    proc = run_tool(["tools/test.py", "--cfg", cfg_path, *opts], check=False)
    assert proc.returncode != 0
    error = proc.stderr.strip().splitlines()[-1]
    assert model_file in error
    file_keys = torch.load(model_file, map_location="cpu", weights_only=True).keys()
    assert _named_keys(error) & set(file_keys), error


def test_weights_with_nonfinite_outputs_end_the_test_naming_the_file_and_in_its_log(
        synthetic_root, tmp_path):
    opts = small_opts(synthetic_root, str(tmp_path))
    model = build_model(load_cfg(OFFSET_CFG, opts), load_pretrained=False)
    with torch.no_grad():  # finite weights whose logits overflow to infinity, as a diverged run's
        model.last_layer[3].weight.fill_(3e38)
    model_file = str(tmp_path / "diverged.pth")
    torch.save(model.state_dict(), model_file)
    proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, *opts, "TEST.MODEL_FILE", model_file],
                    check=False)
    assert proc.returncode != 0
    *_, error, advice = proc.stderr.strip().splitlines()
    assert error.startswith(f"error: the network of {model_file} gives outputs that are not "
                            f"finite"), proc.stderr
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert advice.startswith("What to do: the run that wrote these weights diverged")
    folder = only_evaluation(experiment_folder(str(tmp_path)))
    assert not os.path.exists(os.path.join(folder, "results.json"))
    log_name, = [n for n in os.listdir(folder) if n.startswith("test_")]
    log = open(os.path.join(folder, log_name)).read()
    ending = log[log.index("ERROR the run ended with an error"):]
    assert "Traceback (most recent call last)" in ending and ending.rstrip().endswith(advice)


def test_missing_model_file_is_named(synthetic_root, tmp_path):
    missing = str(tmp_path / "no_such_weights.pth")
    opts = small_opts(synthetic_root, str(tmp_path)) + ["TEST.MODEL_FILE", missing]
    proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, *opts], check=False)
    assert proc.returncode != 0
    assert missing in proc.stderr.strip().splitlines()[-1]


def test_empty_list_file_is_named(synthetic_root, trained_run, tmp_path):
    _, _, trained = trained_run
    empty = tmp_path / "empty.lst"
    empty.write_text("\n")
    opts = small_opts(synthetic_root, str(tmp_path)) + [
        "TEST.MODEL_FILE", os.path.join(trained, "final_state.pth"),
        "DATASET.TEST_SET", str(empty)]  # an absolute list path is taken as it is
    proc = run_tool(["tools/test.py", "--cfg", OFFSET_CFG, *opts], check=False)
    assert proc.returncode != 0
    error = proc.stderr.strip().splitlines()[-1]
    assert str(empty) in error and "empty" in error
