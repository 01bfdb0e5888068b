import numpy as np
import torch

from lib.datasets import ACDC, Cityscapes, build_dataset
from tests.helpers import CITYSCAPES_PALETTE, CITYSCAPES_TRAIN_IDS, make_cityscapes_tree

from .helpers import dataset_cfg

DESIGN_WEIGHTS = [0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023,
                  0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507]


def test_every_label_id_0_to_255_is_mapped_to_its_design_train_id_by_the_loader(tmp_path):
    # Ids 34..254 are out of range, read here as ignored (test_label_values.py: the error).
    label = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = np.zeros((16, 16, 3), np.uint8)
    make_cityscapes_tree(tmp_path, [("all_ids", image, label)], "val.lst", "val")
    cfg = dataset_cfg(tmp_path, **{"DATASET.OUT_OF_RANGE_LABELS": "ignore"})
    _, mapped, size, name = build_dataset(cfg, "val")[0]
    expected = np.array([CITYSCAPES_TRAIN_IDS.get(i, 255) for i in range(256)]).reshape(16, 16)
    assert mapped.dtype == torch.int64
    np.testing.assert_array_equal(mapped.numpy(), expected)
    assert size.tolist() == [16, 16] and name == "all_ids"


def test_train_id_to_label_inverts_the_mapping_for_the_19_classes():
    inverse = Cityscapes.train_id_to_label
    assert inverse.dtype == np.uint8 and inverse.shape == (19,)
    assert {int(label): train_id for train_id, label in enumerate(inverse)} == CITYSCAPES_TRAIN_IDS
    lut = Cityscapes.label_to_train_id
    assert lut.shape == (256,) and lut.dtype == np.uint8
    np.testing.assert_array_equal(lut[inverse], np.arange(19))


def test_palette_names_and_weights_match_the_design_tables(tmp_path):
    make_cityscapes_tree(tmp_path, [("a", np.zeros((8, 8, 3), np.uint8),
                                     np.full((8, 8), 7, np.uint8))])
    dataset = build_dataset(dataset_cfg(tmp_path), "train")
    assert dataset.palette.dtype == np.uint8
    np.testing.assert_array_equal(dataset.palette, CITYSCAPES_PALETTE)
    weights = dataset.class_weights
    assert weights.dtype == torch.float32 and weights.shape == (19,)
    np.testing.assert_allclose(weights.numpy(), DESIGN_WEIGHTS, rtol=1e-6)
    assert dataset.num_classes == 19 and len(dataset.class_names) == 19
    assert dataset.class_names[0] == "road" and dataset.class_names[18] == "bicycle"
    assert dataset.condition("a") is None


def test_class_tables_are_read_only_so_no_caller_can_change_them():
    for table in (Cityscapes.label_to_train_id, Cityscapes.train_id_to_label, Cityscapes.palette):
        assert not table.flags.writeable


def test_acdc_uses_the_very_same_cityscapes_tables():
    assert ACDC.label_to_train_id is Cityscapes.label_to_train_id
    assert ACDC.train_id_to_label is Cityscapes.train_id_to_label
    assert ACDC.palette is Cityscapes.palette
    assert ACDC.class_names is Cityscapes.class_names


def test_void_ids_map_to_the_configured_ignore_label(tmp_path):
    label = np.array([[0, 7, 33, 255]], np.uint8).repeat(4, 0)
    make_cityscapes_tree(tmp_path, [("x", np.zeros((4, 4, 3), np.uint8), label)], "val.lst", "val")
    cfg = dataset_cfg(tmp_path, **{"TRAIN.IGNORE_LABEL": 250})
    _, mapped, _, _ = build_dataset(cfg, "val")[0]
    assert mapped[0].tolist() == [250, 0, 18, 250]
