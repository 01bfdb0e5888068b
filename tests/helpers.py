"""What tests in every folder share: the repository root, the quick-start experiments, running the
tools with small overrides and finding their runs, a free port, tiny networks' configs, the
Cityscapes class tables written out, Cityscapes-named files, and weights that predict several
classes."""
import glob
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import torch

from lib.config import get_cfg
from lib.datasets import build_dataset
from lib.models import build_eval_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFSET_CFG = os.path.join(ROOT, "experiments", "synthetic",
                          "seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch40.yaml")
BASELINE_CFG = OFFSET_CFG.replace("tiny_offset", "tiny_baseline")
OCR_ADE20K_CFG = os.path.join(ROOT, "experiments", "synthetic",
                              "seg_offset_hrnet_ocr_tiny_ade20k_64x64_ohem_sgd_lr2e-2_bs_8_epoch40.yaml")

# Written out here (DESIGN.md section 6) rather than imported, so that the tests do not check
# lib.datasets against itself: the 19 evaluated Cityscapes classes in trainId order, their label
# ids and colours (RGB); TO_TRAIN_ID[label id] is the trainId, 255 for the ids not evaluated.
CITYSCAPES_CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle")
CITYSCAPES_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
CITYSCAPES_TRAIN_IDS = {label_id: k for k, label_id in enumerate(CITYSCAPES_LABEL_IDS)}
CITYSCAPES_PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32)], dtype=np.uint8)
TO_TRAIN_ID = np.full(256, 255, dtype=np.int64)
TO_TRAIN_ID[list(CITYSCAPES_LABEL_IDS)] = np.arange(len(CITYSCAPES_LABEL_IDS))


def run_tool(args, env=None, timeout=600, check=True):
    """Run ``python <args>`` from the repository root; returns the CompletedProcess."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def small_opts(data_root, out, epochs=2, **extra):
    """Overrides that shrink the quick-start experiment to seconds."""
    opts = {
        "DATASET.ROOT": data_root, "OUTPUT_DIR": os.path.join(out, "output"),
        "LOG_DIR": os.path.join(out, "log"), "WORKERS": 0, "PRINT_FREQ": 2,
        "TRAIN.IMAGE_SIZE": "[64,32]", "TRAIN.BASE_SIZE": 128, "TRAIN.BATCH_SIZE_PER_GPU": 2,
        "TRAIN.END_EPOCH": epochs, "TRAIN.EVAL_INTERVAL": 1, "LOSS.OHEMKEEP": 1000,
        "TEST.IMAGE_SIZE": "[64,32]", "TEST.BASE_SIZE": 128, "TEST.BATCH_SIZE_PER_GPU": 2,
    }
    opts.update(extra)
    return [str(x) for kv in opts.items() for x in kv]


def free_port():
    """A TCP port on the loopback that nothing listens on now (for the launcher's master port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def experiment_folder(out, cfg=OFFSET_CFG, dataset="cityscapes"):
    """``<out>/output/<dataset>/<config name>``: where the runs of ``small_opts(..., out)`` go."""
    return os.path.join(out, "output", dataset, os.path.splitext(os.path.basename(cfg))[0])


def latest_run(out, cfg=OFFSET_CFG, dataset="cityscapes"):
    """The folder of the latest run of ``cfg`` under ``out`` (its ``latest`` link)."""
    return os.path.join(experiment_folder(out, cfg, dataset), "latest")


def only_evaluation(folder):
    """The one evaluation folder under ``<folder>/eval`` (a run's or an experiment's)."""
    found = glob.glob(os.path.join(folder, "eval", "*"))
    assert len(found) == 1, found
    return found[0]


def tiny_cfg(name="branched_seg_hrnet", offset_branch=4, stage4_modules=1, num_classes=5):
    """A mutable config of a very small HRNet (widths 8-64, one block per branch)."""
    cfg = get_cfg()
    cfg.MODEL.NAME = name
    cfg.DATASET.NUM_CLASSES = num_classes
    extra = cfg.MODEL.EXTRA
    extra.OFFSET_BRANCH = offset_branch
    extra.STAGE1.NUM_BLOCKS, extra.STAGE1.NUM_CHANNELS = [1], [8]
    widths = [8, 16, 32, 64]
    for k in (2, 3, 4):
        for suffix in ("", "_2"):
            stage = extra[f"STAGE{k}{suffix}"]
            stage.NUM_MODULES = 1
            stage.NUM_BLOCKS = [1] * k
            stage.NUM_CHANNELS = widths[:k]
    extra.STAGE4.NUM_MODULES = stage4_modules
    return cfg


def tiny_ocr_cfg(name="branched_seg_hrnet_ocr", **kwargs):
    """:func:`tiny_cfg` of an OCR network, with a small OCR head (16 mid, 8 key channels)."""
    cfg = tiny_cfg(name=name, **kwargs)
    cfg.MODEL.OCR.MID_CHANNELS, cfg.MODEL.OCR.KEY_CHANNELS = 16, 8
    return cfg


def write_png(path, array):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), array)


def make_cityscapes_tree(root, samples, list_name="train.lst", split="train"):
    """Write Cityscapes-named (image BGR, label ids) pairs and their list; returns the list path.

    ``samples`` is a list of (stem, image, label); a label of None writes an image-only line.
    """
    lines = []
    for stem, image, label in samples:
        image_rel = f"leftImg8bit/{split}/city/{stem}_leftImg8bit.png"
        write_png(os.path.join(root, "cityscapes", image_rel), image)
        if label is None:
            lines.append(image_rel)
        else:
            label_rel = f"gtFine/{split}/city/{stem}_gtFine_labelIds.png"
            write_png(os.path.join(root, "cityscapes", label_rel), label)
            lines.append(f"{image_rel}\t{label_rel}")
    list_path = os.path.join(root, "list", "cityscapes", list_name)
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    with open(list_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return list_path


def spread_last_layer(cfg, model_file, out_file, seed=0):
    """Write ``model_file`` with a new last 1x1 conv that sends the standardised features of the
    DATASET.TEST_SET images along random class directions; returns ``out_file``.

    The one-epoch network predicts one class everywhere, which cannot show a label-id or colour
    table that is wrong for the other classes; these weights predict several classes per image.
    """
    model = build_eval_model(cfg, model_file, torch.device("cpu"))
    dataset = build_dataset(cfg, "test")
    features = []
    hook = model.last_layer[3].register_forward_hook(
        lambda module, inputs, output: features.append(inputs[0]))
    with torch.no_grad():
        for i in range(len(dataset)):
            model(dataset[i][0][None])
    hook.remove()
    pixels = torch.cat([f.transpose(0, 1).flatten(1) for f in features], dim=1)  # C x pixels
    mean, std = pixels.mean(dim=1), pixels.std(dim=1).clamp_min(1e-6)
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(cfg.DATASET.NUM_CLASSES, len(mean), generator=generator) * 0.3 / std
    state = model.state_dict()
    state["last_layer.3.weight"] = weight[:, :, None, None]
    state["last_layer.3.bias"] = -(weight @ mean)
    torch.save(state, out_file)
    return str(out_file)
