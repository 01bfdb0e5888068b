"""A training epoch whose labels are all ignored stops the run; one labelled image in it is
enough to go on (single unlabelled items and checks are no error)."""
import numpy as np
import pytest
import torch

from lib.config import load_cfg
from lib.datasets import DatasetError
from lib.engine.build import build_trainer
from tests.helpers import BASELINE_CFG, make_cityscapes_tree, small_opts

# Cityscapes label ids 0 (unlabeled) and 4 (static) are void; 7 is road.
VOID, ROAD = 0, 7


def _trainer(root, out, label_ids):
    """A one-epoch baseline Trainer on 32 x 64 Cityscapes-named images whose labels are each one
    label id of ``label_ids``, in batches of one with a check after every step."""
    rng = np.random.default_rng(0)
    samples = [(f"city_000000_{k:06d}", rng.integers(0, 256, (32, 64, 3), dtype=np.uint8),
                np.full((32, 64), label_id, np.uint8)) for k, label_id in enumerate(label_ids)]
    make_cityscapes_tree(root, samples, "train.lst", "train")
    make_cityscapes_tree(root, samples, "val.lst", "val")
    cfg = load_cfg(BASELINE_CFG, small_opts(str(root), str(out), epochs=1, PRINT_FREQ=1, **{
        "TRAIN.BATCH_SIZE_PER_GPU": 1, "TRAIN.SHUFFLE": False}))
    return build_trainer(cfg, BASELINE_CFG, torch.device("cpu"), rank=0, world_size=1)


def test_an_epoch_of_ignored_labels_only_stops_the_run_naming_the_list(tmp_path):
    with _trainer(tmp_path / "data", tmp_path, [VOID, 4, VOID]) as trainer:
        with pytest.raises(DatasetError) as info:
            trainer.fit()
    message = str(info.value)
    assert message.startswith("main epoch 1/1: ") and "ignore label 255" in message
    assert "list/cityscapes/train.lst" in message and "TRAIN.IGNORE_LABEL" in message
    assert trainer.iteration == 3


def test_one_labelled_image_in_the_epoch_is_enough(tmp_path):
    # The first two checks see ignored labels only; the epoch as a whole does not.
    with _trainer(tmp_path / "data", tmp_path, [VOID, VOID, ROAD]) as trainer:
        assert trainer.fit() is True
