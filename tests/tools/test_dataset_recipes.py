"""The tiny recipe of each new dataset trains an epoch on its synthetic set (in this process) and
is evaluated with the dataset's protocol; LIP also through tools/train.py and tools/test.py."""
import glob
import json
import os

import cv2
import numpy as np
import pytest
import torch

from lib.config import load_cfg
from lib.datasets import build_dataset
from lib.datasets.loaders import eval_loader
from lib.engine.build import build_trainer
from lib.evaluation.accumulator import MeasureSettings
from lib.evaluation.loop import evaluate, predict_by_protocol
from lib.evaluation.protocols import InferenceSettings
from tests.helpers import ROOT, latest_run, only_evaluation, run_tool, small_opts
from tools.make_synthetic_dataset import make_synthetic_dataset

RECIPES = {
    "pascal_ctx": "seg_offset_hrnet_ocr_tiny_pascal_ctx_64x64_sgd_lr2e-2_bs_8_epoch40.yaml",
    "cocostuff": "seg_offset_hrnet_ocr_tiny_cocostuff_64x64_ohem_sgd_lr2e-2_bs_8_epoch40.yaml",
    "lip": "seg_offset_hrnet_ocr_tiny_lip_64x64_sgd_lr2e-2_bs_8_epoch40.yaml",
    "pascal_voc": "seg_offset_hrnet_ocr_tiny_pascal_voc_64x64_sgd_lr2e-2_bs_8_epoch40.yaml",
}
LABEL_GLOBS = {"pascal_ctx": "val/label/*.png", "cocostuff": "val/label/*.png",
               "lip": "TrainVal_parsing_annotations/val_segmentations/*.png",
               "pascal_voc": "VOCdevkit/VOC2012/SegmentationClassAug/2011_*.png"}
# Stored values that are a class, written out per dataset: PASCAL-Context 59 has 1..59; COCO-Stuff
# the 182 ids but 0 and 11 unused ones; LIP 0..19; VOC 0..20.
COCO_UNUSED = {0, 12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91}
IS_CLASS = {"pascal_ctx": lambda v: 1 <= v <= 59,
            "cocostuff": lambda v: v <= 182 and v not in COCO_UNUSED,
            "lip": lambda v: v <= 19, "pascal_voc": lambda v: v <= 20}
SIZE = (40, 56)


@pytest.fixture(scope="module")
def benchmark_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmark_recipes")
    for dataset in RECIPES:
        make_synthetic_dataset(str(root), dataset, {"train": 4, "val": 2}, SIZE, seed=0)
    return str(root)


def labelled_pixels(root, dataset):
    count = 0
    for path in glob.glob(os.path.join(root, dataset, LABEL_GLOBS[dataset])):
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        count += int(np.vectorize(IS_CLASS[dataset])(raw).sum())
    return count


def tiny_opts(root, out, **extra):
    return small_opts(root, out, epochs=1, **{
        "TRAIN.IMAGE_SIZE": "[32,32]", "TRAIN.BASE_SIZE": 40, "TEST.IMAGE_SIZE": "[32,32]",
        "TEST.BASE_SIZE": 40, "TEST.BATCH_SIZE_PER_GPU": 1, **extra})


@pytest.mark.parametrize("dataset", RECIPES)
def test_the_tiny_recipe_trains_an_epoch_and_is_evaluated(benchmark_root, tmp_path, dataset):
    path = os.path.join(ROOT, "experiments", "synthetic", RECIPES[dataset])
    cfg = load_cfg(path, tiny_opts(benchmark_root, str(tmp_path), **{
        "TEST.SCALE_LIST": "0.75,1.0", "TEST.FLIP_TEST": True}))
    with build_trainer(cfg, path, torch.device("cpu"), rank=0, world_size=1) as trainer:
        assert trainer.fit() is True
        model = trainer.parts.step.model.eval()
    assert os.path.isfile(os.path.join(trainer.output_dir, "final_state.pth"))
    settings = InferenceSettings.from_config(cfg)
    assert settings.protocol == ("lip" if dataset == "lip" else "ade20k")
    dataset_ = build_dataset(cfg, "test")
    evaluation = evaluate(model, predict_by_protocol(model, settings),
                          eval_loader(dataset_, 1, 0, False), dataset_, torch.device("cpu"),
                          MeasureSettings.from_config(cfg))
    # Scored at the label files' size: every pixel of a class counts once.
    assert int(evaluation.confusion.sum()) == labelled_pixels(benchmark_root, dataset)
    results = evaluation.results
    assert 0 <= results["predictions"][results["final_prediction"]]["mIoU"] <= 1


@pytest.mark.slow
def test_lip_trains_and_is_tested_with_flip_through_the_tools(benchmark_root, tmp_path):
    cfg = os.path.join(ROOT, "experiments", "synthetic", RECIPES["lip"])
    opts = tiny_opts(benchmark_root, str(tmp_path))
    run_tool(["tools/train.py", "--cfg", cfg, *opts], timeout=300)
    run_tool(["tools/test.py", "--cfg", cfg, "--save-pred", *opts, "TEST.FLIP_TEST", "True"],
             timeout=300)
    folder = only_evaluation(latest_run(str(tmp_path), cfg, "lip"))
    with open(os.path.join(folder, "results.json")) as f:
        results = json.load(f)
    assert results["flip"] is True
    assert np.array(results["confusion_matrix"]).sum() == labelled_pixels(benchmark_root, "lip")
    written = sorted(glob.glob(os.path.join(folder, "predictions", "labelIds", "*.png")))
    assert len(written) == 2
    for path in written:
        pred = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        assert pred.shape == SIZE and pred.max() <= 19
