"""A dataset of your own, from its YAML file alone: lists from glob patterns, a training epoch with
validation, and evaluation with the dataset's own class names, through the tools."""
import json
import os

import cv2
import numpy as np
import pytest

from tests.helpers import ROOT, latest_run, only_evaluation, run_tool, small_opts

CFG = os.path.join(ROOT, "experiments", "custom",
                   "seg_hrnet_tiny_streets3_64x128_sgd_lr2e-2_bs_8_epoch40.yaml")
NAME = os.path.splitext(os.path.basename(CFG))[0]
# The YAML's classes and label map, written out here: Cityscapes label ids -> 3 classes.
CLASSES = ["flat", "construction", "sky"]
RAW_TO_CLASS = {7: 0, 8: 0, 11: 1, 12: 1, 13: 1, 23: 2}
FIRST_RAW = {0: 7, 1: 11, 2: 23}  # the raw value written for each predicted class


pytestmark = pytest.mark.slow


def _to_classes(raw):
    out = np.full(raw.shape, 255, dtype=np.int64)
    for value, c in RAW_TO_CLASS.items():
        out[raw == value] = c
    return out


@pytest.fixture(scope="module")
def streets3(synthetic_root, tmp_path_factory):
    """DATASET.ROOT with ``streets3/images/<split>/<stem>.jpg`` and, for train and val,
    ``streets3/masks/<split>/<stem>_mask.png`` (raw Cityscapes ids), made from the synthetic
    scenes, and the lists that make_lists.py pairs from glob patterns."""
    root = tmp_path_factory.mktemp("own")
    source = os.path.join(synthetic_root, "cityscapes")
    for split in ("train", "val", "test"):
        os.makedirs(root / "streets3" / "images" / split)
        os.makedirs(root / "streets3" / "masks" / split)
        for folder, _, files in os.walk(os.path.join(source, "leftImg8bit", split)):
            for name in files:
                stem = name[:-len("_leftImg8bit.png")]
                image = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
                assert cv2.imwrite(str(root / "streets3" / "images" / split / f"{stem}.jpg"),
                                   image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                label = os.path.join(folder.replace("leftImg8bit", "gtFine"),
                                     f"{stem}_gtFine_labelIds.png")
                if split != "test":
                    raw = cv2.imread(label, cv2.IMREAD_UNCHANGED)
                    assert cv2.imwrite(str(root / "streets3" / "masks" / split /
                                           f"{stem}_mask.png"), raw)
    run_tool(["tools/make_lists.py", "--dataset", "streets3", "--root", str(root),
              "--images", "images/{split}/*.jpg", "--labels", "masks/{split}/*_mask.png",
              "--image-only", "test"])
    return str(root)


@pytest.fixture(scope="module")
def trained(streets3, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    opts = small_opts(streets3, out, epochs=1)
    proc = run_tool(["tools/train.py", "--cfg", CFG, *opts], timeout=300)
    return opts, latest_run(out, CFG, "streets3"), proc


def test_lists_pair_the_jpeg_images_with_their_masks(streets3):
    with open(os.path.join(streets3, "list", "streets3", "val.lst")) as f:
        lines = [line.split() for line in f if line.strip()]
    assert len(lines) == 4
    for image, label in lines:
        stem = os.path.basename(image)[:-len(".jpg")]
        assert image == f"images/val/{stem}.jpg" and label == f"masks/val/{stem}_mask.png"
    with open(os.path.join(streets3, "list", "streets3", "test.lst")) as f:
        assert all(len(line.split()) == 1 for line in f)


def test_training_validates_with_the_dataset_class_names(trained):
    _, folder, proc = trained
    assert os.path.isfile(os.path.join(folder, "final_state.pth"))
    log = proc.stdout + proc.stderr
    for name in CLASSES:
        assert any(line.split()[:1] == [name] for line in log.splitlines()), name


def test_evaluation_reports_the_class_names_and_counts_the_mapped_labels(trained, streets3):
    opts, folder, _ = trained
    proc = run_tool(["tools/test.py", "--cfg", CFG, "--save-pred", *opts])
    evaluation = only_evaluation(folder)
    with open(os.path.join(evaluation, "results.json")) as f:
        results = json.load(f)
    assert list(results["predictions"][results["final_prediction"]]["IoU"]) == CLASSES
    assert all(name in proc.stdout + proc.stderr for name in CLASSES)
    # The confusion matrix, recounted from the saved label PNGs and the raw masks.
    conf = np.zeros((3, 3), dtype=np.int64)
    to_class = {raw: c for c, raw in FIRST_RAW.items()}
    with open(os.path.join(streets3, "list", "streets3", "val.lst")) as f:
        for line in f:
            image, label = line.split()
            stem = os.path.basename(image)[:-len(".jpg")]
            saved = cv2.imread(os.path.join(evaluation, "predictions", "labelIds",
                                            f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert set(np.unique(saved)) <= set(to_class)
            pred = np.vectorize(to_class.get)(saved)
            truth = _to_classes(cv2.imread(os.path.join(streets3, "streets3", label),
                                           cv2.IMREAD_UNCHANGED))
            valid = truth != 255
            np.add.at(conf, (truth[valid], pred[valid]), 1)
    assert conf.sum() > 0 and (conf.sum(axis=1) > 0).all()  # every class occurs
    assert results["confusion_matrix"] == conf.tolist()
