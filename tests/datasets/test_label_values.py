"""Label values that are neither a class nor void stop the run as the item is read, naming the
label file, its list line and the values, in every dataset (DATASET.OUT_OF_RANGE_LABELS error),
also from a loader worker; "ignore" reads them as ignored."""
import os

import numpy as np
import pytest

from lib.config import ConfigError, load_cfg
from lib.datasets import DatasetError, build_dataset
from lib.datasets.loaders import train_loader
from lib.utils.compat import stop_persistent_workers
from tests.helpers import write_png

from .helpers import dataset_cfg

# The first stored value out of range (up to 254; 255 is void everywhere), written out from each
# dataset's documentation: Cityscapes and ACDC label ids end at 33, ADE20K's values at 150 (0 is
# "other"), PASCAL-Context's at 59, COCO-Stuff's ids at 182, LIP's at 19, VOC's at 20; a dataset
# of your own without LABEL_MAP ends at NUM_CLASSES - 1.
FIRST_OUT_OF_RANGE = {("cityscapes", 19): 34, ("acdc", 19): 34, ("ade20k", 150): 151,
                      ("pascal_ctx", 59): 60, ("pascal_ctx", 60): 60, ("cocostuff", 171): 183,
                      ("lip", 20): 20, ("pascal_voc", 21): 21, ("pascal_voc", 20): 21,
                      ("mine", 5): 5}

# (image folder, label folder, image path, label path) of sample {} in each layout.
LAYOUTS = {
    "cityscapes": ("", "", "leftImg8bit/val/city/city_000000_00000{}_leftImg8bit.png",
                   "gtFine/val/city/city_000000_00000{}_gtFine_labelIds.png"),
    "acdc": ("", "", "rgb_anon/fog/val/GOPR0475/GOPR0475_frame_00000{}_rgb_anon.png",
             "gt/fog/val/GOPR0475/GOPR0475_frame_00000{}_gt_labelIds.png"),
    "ade20k": ("", "", "images/validation/ADE_val_0000000{}.jpg",
               "annotations/validation/ADE_val_0000000{}.png"),
    "pascal_ctx": ("", "", "val/image/2008_00000{}.jpg", "val/label/2008_00000{}.png"),
    "cocostuff": ("", "", "val/image/COCO_train2014_00000{}.jpg", "val/label/COCO_{}.png"),
    "lip": ("TrainVal_images", "TrainVal_parsing_annotations", "val_images/{}.jpg",
            "val_segmentations/{}.png"),
    "pascal_voc": ("", "", "VOCdevkit/VOC2012/JPEGImages/2007_00000{}.jpg",
                   "VOCdevkit/VOC2012/SegmentationClassAug/2007_00000{}.png"),
    "mine": ("", "", "photos/{}.png", "masks/{}.png"),
}


def write_set(root, dataset, labels):
    """One sample per label (a grey image of its size) in ``dataset``'s layout, and the list
    ``list/<dataset>/val.lst`` of them in order (line k + 1 is ``labels[k]``)."""
    image_dir, label_dir, image_rel, label_rel = LAYOUTS[dataset]
    lines = []
    for k, label in enumerate(labels):
        image, target = image_rel.format(k + 1), label_rel.format(k + 1)
        write_png(os.path.join(root, dataset, image_dir, image),
                  np.full(label.shape + (3,), 90, np.uint8))
        write_png(os.path.join(root, dataset, label_dir, target), label)
        lines.append(f"{image} {target}\n")
    list_path = os.path.join(root, "list", dataset, "val.lst")
    os.makedirs(os.path.dirname(list_path), exist_ok=True)
    with open(list_path, "w") as f:
        f.writelines(lines)
    return os.path.join(root, dataset, label_dir, label_rel.format(len(labels)))


def cfg_of(root, dataset, classes, **overrides):
    own = {"DATASET.CLASS_NAMES": [f"class{k}" for k in range(classes)]} \
        if dataset == "mine" else {}
    return dataset_cfg(root, dataset, **{"DATASET.NUM_CLASSES": classes,
                                         "DATASET.TEST_SET": f"list/{dataset}/val.lst",
                                         **own, **overrides})


def label_of(values):
    """(16, 16) uint8 holding each of ``values`` at least once."""
    return np.resize(np.asarray(values, np.uint8), (16, 16))


@pytest.mark.parametrize("dataset, classes", list(FIRST_OUT_OF_RANGE))
def test_a_value_out_of_range_stops_the_item_naming_file_line_and_values(tmp_path, dataset,
                                                                         classes):
    first = FIRST_OUT_OF_RANGE[dataset, classes]
    good = [v for v in range(256) if not first <= v <= 254]  # classes, void values and 255
    bad = label_of(good + [first, 254])
    bad_path = write_set(tmp_path, dataset, [label_of(good), bad])
    data = build_dataset(cfg_of(tmp_path, dataset, classes), "val")
    label = data[0][1].numpy()
    assert ((label >= 0) & (label < classes) | (label == 255)).all()
    with pytest.raises(DatasetError) as info:
        data[1]
    message = str(info.value)
    assert bad_path in message and "val.lst:2:" in message
    out = (bad >= first) & (bad <= 254)
    assert f"label values [{first}, 254] ({out.sum()} of 256 pixels)" in message
    assert "DATASET.OUT_OF_RANGE_LABELS" in message
    # "ignore": the same pixels read as the ignore label, the others as in the first item.
    cfg = cfg_of(tmp_path, dataset, classes, **{"DATASET.OUT_OF_RANGE_LABELS": "ignore"})
    ignored = build_dataset(cfg, "val")[1][1].numpy()
    assert (ignored[out] == 255).all()
    for value in good:
        assert (ignored[bad == value] == label[label_of(good) == value][0]).all()


def test_many_values_out_of_range_are_counted_after_the_first_ten(tmp_path):
    write_set(tmp_path, "cityscapes", [np.arange(256, dtype=np.uint8).reshape(16, 16)])
    with pytest.raises(DatasetError, match=r"label values \[34, 35, 36, 37, 38, 39, 40, 41, 42, "
                                           r"43\] \.\.\. 254 \(221 values\) \(221 of 256 pixels\)"):
        build_dataset(cfg_of(tmp_path, "cityscapes", 19), "val")[0]


def test_a_label_map_leaves_the_values_it_does_not_list_void(tmp_path):
    # The map is the whole description: unlisted values are ignored (the README's example).
    write_set(tmp_path, "mine", [label_of([0, 40, 41, 200, 7, 254, 255])])
    cfg = cfg_of(tmp_path, "mine", 3, **{"DATASET.LABEL_MAP": [[0, 0], [40, 1], [41, 1],
                                                               [200, 2]]})
    label = build_dataset(cfg, "val")[0][1].numpy()
    np.testing.assert_array_equal(np.unique(label), [0, 1, 2, 255])


def test_values_up_to_7_in_a_5_class_dataset_stop_training_from_a_loader_worker(tmp_path):
    # The reported case: a dataset of your own with NUM_CLASSES 5 whose labels hold 0..7
    # trained on the pixels of 0..4 alone.  The error crosses the worker process intact.
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 5, (16, 32), dtype=np.uint8) for _ in range(3)]
    labels.append(rng.integers(0, 8, (16, 32), dtype=np.uint8))
    bad_path = write_set(tmp_path, "mine", labels)
    cfg = cfg_of(tmp_path, "mine", 5, **{"DATASET.TRAIN_SET": "list/mine/val.lst",
                                         "TRAIN.IMAGE_SIZE": [32, 16], "TRAIN.BASE_SIZE": 32})
    loader, sampler = train_loader(build_dataset(cfg, "train"), 4, 1, False, 0, True)
    sampler.set_epoch(0)
    try:
        with pytest.raises(DatasetError) as info:
            next(iter(loader))
    finally:
        stop_persistent_workers(loader)  # the workers ignore SIGTERM: stop them here
    message = str(info.value)
    assert "worker process" in message
    assert bad_path in message and "val.lst:4:" in message and "label values [5, 6, 7]" in message


def test_an_unknown_out_of_range_mode_names_the_key():
    with pytest.raises(ConfigError, match=r"DATASET.OUT_OF_RANGE_LABELS = 'skip' is not one of "
                                          r"\['error', 'ignore'\]"):
        load_cfg(None, ["DATASET.OUT_OF_RANGE_LABELS", "skip"])

