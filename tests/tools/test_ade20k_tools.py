"""Synthetic ADE20K through the entry points: make_synthetic_dataset, train, test."""
import glob
import json
import os

import cv2
import numpy as np

from tests.helpers import OCR_ADE20K_CFG, latest_run, only_evaluation, run_tool, small_opts


def test_the_ocr_offset_network_trains_on_ade20k_and_is_tested_with_two_scales_and_flip(tmp_path):
    root = str(tmp_path / "data")
    run_tool(["tools/make_synthetic_dataset.py", "--root", root, "--dataset", "ade20k",
              "--train", "4", "--val", "2", "--size", "40", "56", "--seed", "0"])
    opts = small_opts(root, str(tmp_path), epochs=1, **{
        "TRAIN.IMAGE_SIZE": "[40,40]", "TRAIN.BASE_SIZE": 40, "TEST.IMAGE_SIZE": "[32,32]",
        "TEST.BASE_SIZE": 40, "TEST.BATCH_SIZE_PER_GPU": 1})
    run_tool(["tools/train.py", "--cfg", OCR_ADE20K_CFG, *opts], timeout=300)
    run_tool(["tools/test.py", "--cfg", OCR_ADE20K_CFG, "--save-pred", *opts,
              "TEST.SCALE_LIST", "0.75,1.5", "TEST.FLIP_TEST", "True"], timeout=300)

    run = latest_run(str(tmp_path), OCR_ADE20K_CFG, "ade20k")
    folder = only_evaluation(run)
    with open(os.path.join(folder, "results.json")) as f:
        results = json.load(f)
    assert results["scales"] == [0.75, 1.5] and results["flip"] is True
    # Scored at the size of the annotation files: every pixel that is not "other" counts once.
    labels = [cv2.imread(p, cv2.IMREAD_UNCHANGED)
              for p in sorted(glob.glob(os.path.join(root, "ade20k/annotations/validation/*.png")))]
    matrix = np.array(results["confusion_matrix"])
    assert matrix.shape == (150, 150)
    assert matrix.sum() == sum(int((label > 0).sum()) for label in labels)
    # Predictions are written back as raw annotation values (class k -> k + 1).
    written = sorted(glob.glob(os.path.join(folder, "predictions", "labelIds", "*.png")))
    assert [os.path.basename(p) for p in written] == ["ADE_val_00000001.png",
                                                      "ADE_val_00000002.png"]
    for path in written:
        pred = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert pred.shape == (40, 56) and 1 <= pred.min() and pred.max() <= 150
