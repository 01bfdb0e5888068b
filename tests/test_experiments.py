"""Every experiment file we ship loads and builds; published files of the three original codes
load and build the network they were written for."""
import glob
import logging
import os
import shutil
import textwrap

import pytest
import torch
import torch.nn as nn
import yaml

from lib.config import load_cfg
from lib.config.published import resolve_published
from lib.datasets import build_dataset
from lib.engine.build import build_step_parts
from lib.models import build_model
from tests.helpers import ROOT
from tools.make_synthetic_dataset import make_synthetic_dataset

SHIPPED = sorted(os.path.relpath(p, ROOT)
                 for p in glob.glob(os.path.join(ROOT, "experiments", "*", "*.yaml")))

# Parameter counts of the W48 networks (official HRNetV2 / HRNet-OCR, thesis, OVeNet-OCR).
W48_PARAMETERS = {
    ("seg_hrnet", 19): 65_859_379,
    ("seg_hrnet", 150): 65_953_830,
    ("branched_seg_hrnet", 19): 98_795_926,
    ("seg_hrnet_ocr", 19): 70_372_678,
    ("seg_hrnet_ocr", 150): 70_534_332,
    ("branched_seg_hrnet_ocr", 19): 103_309_225,
    ("branched_seg_hrnet_ocr", 150): 103_470_879,
}
# Every class adds its classifier weights and bias: 720 + 1 in HRNetV2's last_layer; 720 + 1
# (soft regions) and 512 + 1 (OCR head) in HRNet-OCR; so the counts of the other class numbers
# (PASCAL-Context 59, COCO-Stuff 171, LIP 20, VOC 21) follow from the 19-class ones.
for _name, _per_class in (("seg_hrnet", 721), ("seg_hrnet_ocr", 1234),
                          ("branched_seg_hrnet_ocr", 1234)):
    for _classes in (20, 21, 59, 171):
        W48_PARAMETERS[(_name, _classes)] = (W48_PARAMETERS[(_name, 19)]
                                             + (_classes - 19) * _per_class)

_built = {}


def _parameters(cfg):
    """Parameter count of the network ``cfg`` describes; each architecture is built once."""
    key = (cfg.MODEL.NAME, cfg.DATASET.NUM_CLASSES, cfg.MODEL.EXTRA.dump(), cfg.MODEL.OCR.dump())
    if key not in _built:
        model = build_model(cfg, load_pretrained=False)
        classifiers = dict(model.named_modules())
        widths = {name: classifiers[name].out_channels for name in type(model).CLASSIFIERS}
        _built[key] = sum(p.numel() for p in model.parameters()), widths
    return _built[key]


def test_the_new_recipes_are_shipped():
    names = {os.path.basename(p) for p in SHIPPED}
    for expected in (
            "seg_hrnet_ocr_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
            "seg_offset_hrnet_ocr_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_8_epoch484.yaml",
            "seg_hrnet_ocr_w48_train_540x960_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
            "seg_offset_hrnet_ocr_w48_train_540x960_sgd_lr1e-2_wd5e-4_bs_8_epoch484.yaml",
            "seg_hrnet_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120.yaml",
            "seg_hrnet_ocr_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120.yaml",
            "seg_offset_hrnet_ocr_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120.yaml",
            "seg_offset_hrnet_ocr_tiny_ade20k_64x64_ohem_sgd_lr2e-2_bs_8_epoch40.yaml"):
        assert expected in names


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_experiment_file_loads_and_builds(path):
    cfg = load_cfg(os.path.join(ROOT, path))
    count, widths = _parameters(cfg)
    assert widths and set(widths.values()) == {cfg.DATASET.NUM_CLASSES}
    if cfg.MODEL.EXTRA.STAGE4.NUM_CHANNELS == [48, 96, 192, 384]:
        assert count == W48_PARAMETERS[(cfg.MODEL.NAME, cfg.DATASET.NUM_CLASSES)]
    if "ocr" in cfg.MODEL.NAME and "synthetic" not in path:
        assert cfg.MODEL.ALIGN_CORNERS and cfg.MODEL.BN_MOMENTUM == 0.1
        assert cfg.LOSS.BALANCE_WEIGHTS == [0.4, 1.0]


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory):
    """DATASET.ROOT with a small synthetic set of every dataset the shipped files name, in its
    release layout with its lists; ``streets3`` (the dataset of your own) is Cityscapes'."""
    root = tmp_path_factory.mktemp("every_dataset")
    for dataset in ("cityscapes", "acdc", "ade20k", "pascal_ctx", "cocostuff", "lip",
                    "pascal_voc"):
        counts = {"train": 2, "val": 1}
        if dataset in ("cityscapes", "acdc"):
            counts = {"train": 4, "val": 4}  # one image of each ACDC condition in val
        make_synthetic_dataset(str(root), dataset, counts, (32, 40), seed=0)
    os.symlink(root / "cityscapes", root / "streets3")
    os.makedirs(root / "list" / "streets3")
    for split in ("train", "val"):
        shutil.copy(root / "list" / "cityscapes" / f"{split}.lst", root / "list" / "streets3")
    return str(root)


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_experiment_file_builds_its_datasets_from_synthetic_data(path, synthetic_data):
    cfg = load_cfg(os.path.join(ROOT, path), ["DATASET.ROOT", synthetic_data])
    for split in ("train", "val"):
        dataset = build_dataset(cfg, split)
        image, label, _, _ = dataset[0]
        assert dataset.num_classes == cfg.DATASET.NUM_CLASSES and image.shape[0] == 3
        classes = set(label.unique().tolist()) - {cfg.TRAIN.IGNORE_LABEL}
        assert classes and max(classes) < cfg.DATASET.NUM_CLASSES
        if split == "train" and cfg.TRAIN.MULTI_SCALE:
            assert list(label.shape) == cfg.TRAIN.IMAGE_SIZE[::-1]


@pytest.mark.parametrize("path, name, settings", [
    ("cityscapes/seg_offset_hrnet_ocr_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_8_epoch484.yaml",
     "branched_seg_hrnet_ocr", dict(lr=0.01, wd=0.0005, epochs=484, crop=[1024, 512], ohem=False,
                                    threshold=0.2, classes=19)),
    ("ade20k/seg_hrnet_ocr_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120.yaml",
     "seg_hrnet_ocr", dict(lr=0.02, wd=0.0001, epochs=120, crop=[520, 520], ohem=True,
                           classes=150)),
    ("ade20k/seg_offset_hrnet_ocr_w48_520x520_ohem_sgd_lr2e-2_wd1e-4_bs_16_epoch120.yaml",
     "branched_seg_hrnet_ocr", dict(lr=0.02, wd=0.0001, epochs=120, crop=[520, 520], ohem=True,
                                    threshold=0.2, classes=150)),
    # The HRNet-OCR branch's recipes (and the OVeNet repository's for VOC), values written out.
    ("pascal_ctx/seg_hrnet_w48_cls59_520x520_sgd_lr1e-3_wd1e-4_bs_16_epoch200.yaml",
     "seg_hrnet", dict(lr=0.001, wd=0.0001, epochs=200, crop=[520, 520], ohem=False, classes=59,
                       batch=16, base=520, scale_factor=16)),
    ("pascal_ctx/seg_offset_hrnet_ocr_w48_cls59_520x520_sgd_lr1e-3_wd1e-4_bs_16_epoch200.yaml",
     "branched_seg_hrnet_ocr", dict(lr=0.001, wd=0.0001, epochs=200, crop=[520, 520], ohem=False,
                                    threshold=0.2, classes=59, batch=16, base=520)),
    ("cocostuff/seg_hrnet_ocr_w48_520x520_ohem_sgd_lr1e-3_wd1e-4_bs_16_epoch110.yaml",
     "seg_hrnet_ocr", dict(lr=0.001, wd=0.0001, epochs=110, crop=[520, 520], ohem=True,
                           classes=171, batch=16, base=520, scale_factor=16)),
    ("cocostuff/seg_offset_hrnet_ocr_w48_520x520_ohem_sgd_lr1e-3_wd1e-4_bs_16_epoch110.yaml",
     "branched_seg_hrnet_ocr", dict(lr=0.001, wd=0.0001, epochs=110, crop=[520, 520], ohem=True,
                                    threshold=0.2, classes=171, batch=16, base=520)),
    ("lip/seg_hrnet_w48_473x473_sgd_lr7e-3_wd5e-4_bs_40_epoch150.yaml",
     "seg_hrnet", dict(lr=0.007, wd=0.0005, epochs=150, crop=[473, 473], ohem=False, classes=20,
                       batch=40, base=473, scale_factor=11)),
    ("lip/seg_offset_hrnet_ocr_w48_473x473_sgd_lr7e-3_wd5e-4_bs_40_epoch150.yaml",
     "branched_seg_hrnet_ocr", dict(lr=0.007, wd=0.0005, epochs=150, crop=[473, 473], ohem=False,
                                    threshold=0.2, classes=20, batch=40, base=473,
                                    scale_factor=11)),
    ("pascal_voc/seg_hrnet_ocr_w48_520x520_sgd_lr1e-3_wd1e-4_bs_8_epoch200.yaml",
     "seg_hrnet_ocr", dict(lr=0.001, wd=0.0001, epochs=200, crop=[520, 520], ohem=False,
                           classes=21, batch=8, base=520, scale_factor=16)),
])
def test_recipes_carry_the_published_settings(path, name, settings):
    cfg = load_cfg(os.path.join(ROOT, "experiments", path))
    assert cfg.MODEL.NAME == name
    assert (cfg.TRAIN.LR, cfg.TRAIN.WD, cfg.TRAIN.END_EPOCH) == (settings["lr"], settings["wd"],
                                                                 settings["epochs"])
    assert cfg.TRAIN.IMAGE_SIZE == settings["crop"] and cfg.LOSS.USE_OHEM == settings["ohem"]
    assert cfg.DATASET.NUM_CLASSES == settings["classes"]
    if "threshold" in settings:
        assert cfg.MODEL.EXTRA.OFFSET_THRESHOLD == settings["threshold"]
    if cfg.DATASET.DATASET == "ade20k":
        assert cfg.TRAIN.BATCH_SIZE_PER_GPU * 4 == 16
        assert cfg.TRAIN.BASE_SIZE == cfg.TEST.BASE_SIZE == 520
        assert cfg.TEST.IMAGE_SIZE == [520, 520]
    if "batch" in settings:  # on the 4 GPUs of the reference
        assert cfg.TRAIN.BATCH_SIZE_PER_GPU * 4 == settings["batch"]
        assert cfg.TRAIN.BASE_SIZE == cfg.TEST.BASE_SIZE == settings["base"]
        assert cfg.TEST.IMAGE_SIZE == settings["crop"]
    if "scale_factor" in settings:
        assert cfg.TRAIN.SCALE_FACTOR == settings["scale_factor"]


# The top-level modules of the OCR networks that the OVeNet VOC file trains at 10x the learning
# rate: its TRAIN.NONBACKBONE_KEYWORDS 'cls', 'aux' and 'ocr' name them.
OCR_HEADS = {"conv3x3_ocr", "ocr_distri_head", "cls_head", "aux_head"}


@pytest.mark.parametrize("path, heads", [
    ("pascal_voc/seg_hrnet_ocr_w48_520x520_sgd_lr1e-3_wd1e-4_bs_8_epoch200.yaml", OCR_HEADS),
    ("pascal_voc/seg_offset_hrnet_ocr_w48_520x520_sgd_lr1e-3_wd1e-4_bs_8_epoch200.yaml",
     OCR_HEADS | {"aux_head_offset"}),
])
def test_voc_ocr_recipes_train_the_heads_at_ten_times_the_rate_as_the_ovenet_file(
        path, heads, make_tiny_cfg):
    # The OVeNet repository's experiments/pascal_voc/seg_hrnet_ocr_w48_520x520_sgd_lr1e-3_wd1e-4_
    # bs_16_epoch200.yaml: NONBACKBONE_KEYWORDS ['cls', 'aux', 'ocr'], NONBACKBONE_MULT 10.  The
    # recipe's network is built with tiny stages (the same module names) to keep the test small.
    cfg = load_cfg(os.path.join(ROOT, "experiments", path)).clone()
    cfg.defrost()
    tiny = make_tiny_cfg(cfg.MODEL.NAME, num_classes=cfg.DATASET.NUM_CLASSES)
    for stage in ("STAGE1", "STAGE2", "STAGE3", "STAGE4", "STAGE4_2"):
        cfg.MODEL.EXTRA[stage] = tiny.MODEL.EXTRA[stage]
    parts = build_step_parts(cfg, torch.device("cpu"), load_pretrained=False)
    rate = {id(p): group["lr"] for group in parts.optimizer.param_groups for p in group["params"]}
    for name, parameter in parts.network.named_parameters():
        expected = 10 * cfg.TRAIN.LR if name.split(".")[0] in heads else cfg.TRAIN.LR
        assert rate[id(parameter)] == pytest.approx(expected), name
    assert {name.split(".")[0] for name, _ in parts.network.named_parameters()} >= heads


# Every key of the default configs of the thesis code, the OVeNet repository and HRNet-OCR, with
# the value those files give it.
ORIGINAL_KEYS = """
OUTPUT_DIR: ''
LOG_DIR: ''
GPUS: (0,)
WORKERS: 4
PRINT_FREQ: 20
AUTO_RESUME: false
PIN_MEMORY: true
RANK: 0
CUDNN: {BENCHMARK: true, DETERMINISTIC: false, ENABLED: true}
MODEL:
  NAME: seg_hrnet
  PRETRAINED: ''
  OFFSET_PRETRAINED: ''
  FREEZED_PAR: false
  ALIGN_CORNERS: true
  NUM_OUTPUTS: 1
  EXTRA: {}
  OCR: {MID_CHANNELS: 512, KEY_CHANNELS: 256, DROPOUT: 0.05, SCALE: 1}
LOSS: {USE_OHEM: false, OHEMTHRES: 0.9, OHEMKEEP: 100000, CLASS_BALANCE: false,
       BALANCE_WEIGHTS: [1]}
DATASET: {ROOT: '', DATASET: cityscapes, NUM_CLASSES: 19, TRAIN_SET: list/cityscapes/train.lst,
          EXTRA_TRAIN_SET: '', TEST_SET: list/cityscapes/val.lst}
TRAIN:
  FREEZE_LAYERS: ''
  FREEZE_EPOCHS: -1
  NONBACKBONE_KEYWORDS: []
  NONBACKBONE_MULT: 10
  IMAGE_SIZE: [1024, 512]
  BASE_SIZE: 2048
  DOWNSAMPLERATE: 1
  FLIP: true
  MULTI_SCALE: true
  SCALE_FACTOR: 16
  RANDOM_BRIGHTNESS: false
  RANDOM_BRIGHTNESS_SHIFT_VALUE: 10
  LR_FACTOR: 0.1
  LR_STEP: [90, 110]
  LR: 0.01
  EXTRA_LR: 0.001
  OPTIMIZER: sgd
  MOMENTUM: 0.9
  WD: 0.0001
  NESTEROV: false
  IGNORE_LABEL: -1
  BEGIN_EPOCH: 0
  END_EPOCH: 484
  EXTRA_EPOCH: 0
  RESUME: false
  BATCH_SIZE_PER_GPU: 32
  SHUFFLE: true
  NUM_SAMPLES: 0
  OFFSET_DIR: ''
TEST:
  IMAGE_SIZE: [2048, 1024]
  BASE_SIZE: 2048
  BATCH_SIZE_PER_GPU: 32
  NUM_SAMPLES: 0
  VISUALIZATION: false
  MODEL_FILE: ''
  FLIP_TEST: false
  MULTI_SCALE: false
  CENTER_CROP_TEST: false
  SCALE_LIST: [1]
  OUTPUT_INDEX: -1
DEBUG: {DEBUG: false, SAVE_BATCH_IMAGES_GT: false, SAVE_BATCH_IMAGES_PRED: false,
        SAVE_HEATMAPS_GT: false, SAVE_HEATMAPS_PRED: false}
"""


def test_every_key_of_the_original_default_configs_loads(tmp_path):
    path = tmp_path / "original_keys.yaml"
    path.write_text(ORIGINAL_KEYS)
    cfg = load_cfg(str(path))
    assert cfg.TRAIN.OFFSET_DIR == "" and cfg.TEST.OUTPUT_INDEX == -1
    assert cfg.MODEL.OCR.SCALE == 1.0 and cfg.LOSS.BALANCE_WEIGHTS == [1.0]


W48_EXTRA = """
    FINAL_CONV_KERNEL: 1
    STAGE1: {NUM_MODULES: 1, NUM_BRANCHES: 1, BLOCK: BOTTLENECK, NUM_BLOCKS: [4],
             NUM_CHANNELS: [64], FUSE_METHOD: SUM}
    STAGE2: {NUM_MODULES: 1, NUM_BRANCHES: 2, BLOCK: BASIC, NUM_BLOCKS: [4, 4],
             NUM_CHANNELS: [48, 96], FUSE_METHOD: SUM}
    STAGE3: {NUM_MODULES: 4, NUM_BRANCHES: 3, BLOCK: BASIC, NUM_BLOCKS: [4, 4, 4],
             NUM_CHANNELS: [48, 96, 192], FUSE_METHOD: SUM}
    STAGE4: {NUM_MODULES: 3, NUM_BRANCHES: 4, BLOCK: BASIC, NUM_BLOCKS: [4, 4, 4, 4],
             NUM_CHANNELS: [48, 96, 192, 384], FUSE_METHOD: SUM}
"""
OVENET_EXTRA = """
    OFFSET_THRESHOLD: 0.2
    CONFIDENCE: 0
    OFFSET_BRANCH: 4
    STAGE4_2: {NUM_MODULES: 2, NUM_BRANCHES: 4, BLOCK: BASIC, NUM_BLOCKS: [4, 4, 4, 4],
               NUM_CHANNELS: [48, 96, 192, 384], FUSE_METHOD: SUM}
"""


def _published(tmp_path, extra, model_keys=""):
    """A file in the style of the HRNet-OCR / OVeNet experiments: MODEL.NAME seg_hrnet_ocr."""
    text = ("DATASET: {DATASET: cityscapes, NUM_CLASSES: 19}\n"
            "MODEL:\n  NAME: seg_hrnet_ocr\n  NUM_OUTPUTS: 2\n" + model_keys +
            "  EXTRA:\n" + textwrap.indent(textwrap.dedent(extra), "    ") +
            "LOSS: {BALANCE_WEIGHTS: [0.4, 1]}\n")
    path = tmp_path / "published.yaml"
    path.write_text(text)
    return str(path)


def test_an_ovenet_file_named_seg_hrnet_ocr_builds_the_offset_network(tmp_path, caplog):
    # The OVeNet files also carry the published misspelling NUM_RANCHES.
    extra = W48_EXTRA.replace("NUM_BRANCHES: 1,", "NUM_RANCHES: 1,") + OVENET_EXTRA
    path = _published(tmp_path, extra)
    with caplog.at_level(logging.WARNING):
        cfg = load_cfg(path)
    assert cfg.MODEL.NAME == "branched_seg_hrnet_ocr"
    assert "building branched_seg_hrnet_ocr" in caplog.text and "OFFSET_BRANCH" in caplog.text
    assert path in caplog.text
    assert cfg.MODEL.ALIGN_CORNERS and cfg.MODEL.BN_MOMENTUM == 0.1
    assert _parameters(cfg)[0] == 103_309_225


def test_an_official_hrnet_ocr_file_builds_hrnet_ocr_and_says_why(tmp_path, caplog):
    path = _published(tmp_path, W48_EXTRA)
    with caplog.at_level(logging.WARNING):
        cfg = load_cfg(path)
    assert cfg.MODEL.NAME == "seg_hrnet_ocr"
    [record] = caplog.records
    assert path in record.message and "building seg_hrnet_ocr" in record.message
    assert "without MODEL.EXTRA.OFFSET_BRANCH" in record.message
    assert cfg.MODEL.ALIGN_CORNERS and cfg.MODEL.BN_MOMENTUM == 0.1
    assert _parameters(cfg)[0] == 70_372_678


def test_settings_a_file_gives_are_kept_and_overrides_are_not_rewritten(tmp_path):
    path = _published(tmp_path, W48_EXTRA, "  ALIGN_CORNERS: false\n  BN_MOMENTUM: 0.01\n")
    cfg = load_cfg(path, ["MODEL.NAME", "seg_hrnet"])
    assert cfg.MODEL.NAME == "seg_hrnet"
    assert not cfg.MODEL.ALIGN_CORNERS and cfg.MODEL.BN_MOMENTUM == 0.01


def test_the_rule_leaves_its_input_unchanged_and_other_names_alone(tmp_path):
    raw = yaml.safe_load(open(_published(tmp_path, W48_EXTRA + OVENET_EXTRA)))
    before = yaml.safe_dump(raw)
    resolved = resolve_published(raw, "x.yaml")
    assert yaml.safe_dump(raw) == before
    assert resolved["MODEL"]["NAME"] == "branched_seg_hrnet_ocr"
    raw["MODEL"]["NAME"] = "branched_seg_hrnet"
    assert resolve_published(raw, "x.yaml") is raw


def test_bn_layers_follow_the_file(tmp_path):
    cfg = load_cfg(os.path.join(ROOT, "experiments", "synthetic",
                                "seg_offset_hrnet_ocr_tiny_ade20k_64x64_ohem_sgd_lr2e-2_bs_8_"
                                "epoch40.yaml"))
    model = build_model(cfg, load_pretrained=False)
    assert {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.1}
