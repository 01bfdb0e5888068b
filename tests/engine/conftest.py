"""A tiny trainer on the synthetic data of tests/tools (one process, CPU, in this process)."""
import pytest
import torch

from lib.config import load_cfg
from lib.engine.build import build_trainer
from tests.helpers import OFFSET_CFG, small_opts


@pytest.fixture
def make_trainer(synthetic_root, tmp_path):
    """``make_trainer(out=None, cfg_path=OFFSET_CFG, **overrides)``: a Trainer (default: of the
    offset network) writing under ``out`` or tmp_path."""
    made = []

    def make(out=None, cfg_path=OFFSET_CFG, **extra):
        cfg = load_cfg(cfg_path, small_opts(synthetic_root, str(out or tmp_path), **extra))
        trainer = build_trainer(cfg, cfg_path, torch.device("cpu"), rank=0, world_size=1)
        made.append(trainer)
        return trainer

    yield make
    for trainer in made:
        trainer.close()
