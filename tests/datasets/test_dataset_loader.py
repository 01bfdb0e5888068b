import glob
import os

import pytest
import torch
from torch.utils.data import DataLoader

from lib.config import load_cfg
from lib.datasets import ACDC, Cityscapes, DatasetError, build_dataset, dataset_class, init_worker
from lib.datasets.base_dataset import PLAIN_INDEX_EPOCH
from tests.helpers import ROOT

from .helpers import dataset_cfg


def train_cfg(root, **overrides):
    settings = {"TRAIN.BASE_SIZE": 128, "TRAIN.IMAGE_SIZE": [64, 32]}
    settings.update(overrides)
    return dataset_cfg(root, **settings)


def test_a_plain_index_is_the_fixed_epoch_key_in_any_worker_and_seeds_only_by_train_seed(
        synthetic_root):
    dataset = build_dataset(train_cfg(synthetic_root), "train")
    keyed = [dataset[(i, PLAIN_INDEX_EPOCH)] for i in range(len(dataset))]
    loader = DataLoader(dataset, batch_size=2, num_workers=2, worker_init_fn=init_worker,
                        generator=torch.Generator().manual_seed(5))
    for b, (image, label, _, names) in enumerate(loader):
        for j in range(2):
            assert torch.equal(image[j], keyed[2 * b + j][0])
            assert torch.equal(label[j], keyed[2 * b + j][1]) and names[j] == keyed[2 * b + j][3]
    reseeded = build_dataset(train_cfg(synthetic_root, **{"TRAIN.SEED": 7}), "train")
    assert any(not torch.equal(reseeded[i][0], keyed[i][0]) for i in range(len(dataset)))


def test_index_epoch_keys_give_the_same_samples_in_any_order_and_with_any_worker_count(
        synthetic_root):
    dataset = build_dataset(train_cfg(synthetic_root), "train")
    keys = [(3, 0), (0, 0), (2, 0), (1, 0)]
    results = []
    for workers in (0, 2):
        loader = DataLoader(dataset, sampler=keys, batch_size=2, num_workers=workers,
                            worker_init_fn=init_worker)
        results.append([(image, label) for image, label, _, _ in loader])
    for (image_a, label_a), (image_b, label_b) in zip(*results, strict=True):
        assert torch.equal(image_a, image_b) and torch.equal(label_a, label_b)
    again = dataset[(2, 0)]
    assert torch.equal(again[0], results[0][1][0][0])
    other_epochs = [dataset[(2, epoch)][0] for epoch in range(1, 4)]
    assert any(not torch.equal(image, again[0]) for image in other_epochs)


def test_dataset_class_gives_the_class_tables_and_names_the_valid_datasets():
    assert dataset_class("cityscapes") is Cityscapes and dataset_class("acdc") is ACDC
    assert dataset_class("acdc").palette.shape == (19, 3)
    with pytest.raises(DatasetError, match=r"'kitti'.*\['acdc', 'ade20k', 'cityscapes', "
                       r"'cocostuff', 'lip', 'pascal_ctx', 'pascal_voc'\]"):
        dataset_class("kitti")


def test_default_collate_stacks_images_labels_and_sizes(synthetic_root):
    dataset = build_dataset(dataset_cfg(synthetic_root), "val")
    image, label, size, names = next(iter(DataLoader(dataset, batch_size=2)))
    assert image.shape == (2, 3, 64, 128) and label.shape == (2, 64, 128)
    assert size.dtype == torch.int64 and size.tolist() == [[64, 128], [64, 128]]
    assert list(names) == dataset.names[:2]


def test_test_split_without_labels_collates_image_size_and_name(synthetic_root):
    cfg = dataset_cfg(synthetic_root, **{"DATASET.TEST_SET": "list/cityscapes/test.lst"})
    dataset = build_dataset(cfg, "test")
    assert dataset.has_labels is False
    image, size, names = next(iter(DataLoader(dataset, batch_size=2)))
    assert image.shape == (2, 3, 64, 128) and size.shape == (2, 2) and len(names) == 2


def test_list_path_overrides_the_configured_list_and_num_samples_keeps_the_first_items(
        synthetic_root):
    cfg = train_cfg(synthetic_root, **{"TRAIN.NUM_SAMPLES": 3})
    assert len(build_dataset(cfg, "train")) == 3
    trainval = build_dataset(cfg, "train", list_path="list/cityscapes/trainval.lst")
    everything = build_dataset(train_cfg(synthetic_root), "train",
                               list_path="list/cityscapes/trainval.lst")
    assert len(everything) == 6 and trainval.names == everything.names[:3]
    val = build_dataset(dataset_cfg(synthetic_root, **{"TEST.NUM_SAMPLES": 1}), "val")
    assert len(val) == 1 and val.split == "val"


def test_training_seed_makes_a_single_process_dataset_reproducible(synthetic_root):
    samples = [build_dataset(train_cfg(synthetic_root, **{"TRAIN.SEED": 11}), "train")[1][0]
               for _ in range(2)]
    assert torch.equal(samples[0], samples[1])


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "experiments/acdc/*.yaml"))))
def test_acdc_experiment_files_load_and_describe_acdc(path):
    cfg = load_cfg(path)
    assert cfg.DATASET.DATASET == "acdc"
    assert cfg.DATASET.TRAIN_SET == "list/acdc/train.lst"
    assert cfg.DATASET.TEST_SET == "list/acdc/val.lst"
    assert list(cfg.TRAIN.IMAGE_SIZE) == [960, 540] and cfg.TRAIN.BASE_SIZE == 1920
    assert list(cfg.TEST.IMAGE_SIZE) == [1920, 1080] and cfg.TEST.BASE_SIZE == 1920
    network = "seg_hrnet_ocr" if "_hrnet_ocr_" in path else "seg_hrnet"
    expected = "branched_" + network if "_bs_8_" in path else network
    assert cfg.MODEL.NAME == expected


def test_both_acdc_experiment_files_exist():
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT,
                                                                       "experiments/acdc/*.yaml")))
    assert names == ["seg_hrnet_ocr_w48_train_540x960_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
                     "seg_hrnet_w48_train_540x960_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml",
                     "seg_hrnet_w48_train_540x960_sgd_lr1e-2_wd5e-4_bs_8_epoch484.yaml",
                     "seg_offset_hrnet_ocr_w48_train_540x960_sgd_lr1e-2_wd5e-4_bs_8_epoch484.yaml"]


class _Sized(torch.utils.data.Dataset):
    def __init__(self, same_size_images):
        self.image_size_mismatch = None if same_size_images else "item 1 is 3x4, item 0 2x4"

    def __len__(self):
        return 6

    def __getitem__(self, index):
        return torch.zeros(3, 2 + index, 4)  # the sizes differ when they may


def test_evaluation_batches_whole_images_only_when_the_dataset_has_one_image_size():
    from lib.datasets.loaders import eval_loader

    assert eval_loader(_Sized(True), 3, 0, False).batch_size == 3
    varied = eval_loader(_Sized(False), 16, 0, False)
    assert varied.batch_size == 1
    assert [tuple(b.shape) for b in varied] == [(1, 3, 2 + i, 4) for i in range(6)]


def test_the_datasets_say_whether_their_images_have_one_size():
    from lib.datasets import dataset_class

    assert dataset_class("cityscapes").same_size_images and dataset_class("acdc").same_size_images
    for name in ("ade20k", "pascal_ctx", "cocostuff", "lip", "pascal_voc"):
        assert not dataset_class(name).same_size_images, name
