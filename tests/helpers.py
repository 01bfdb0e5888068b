"""What tests in every folder share: the repository root, the quick-start experiments, running the
tools with small overrides and finding their runs, a free port, and a tiny network's config."""
import glob
import os
import socket
import subprocess
import sys

from lib.config import get_cfg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFSET_CFG = os.path.join(ROOT, "experiments", "synthetic",
                          "seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch40.yaml")
BASELINE_CFG = OFFSET_CFG.replace("tiny_offset", "tiny_baseline")
OCR_ADE20K_CFG = os.path.join(ROOT, "experiments", "synthetic",
                              "seg_offset_hrnet_ocr_tiny_ade20k_64x64_ohem_sgd_lr2e-2_bs_8_epoch40.yaml")


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
