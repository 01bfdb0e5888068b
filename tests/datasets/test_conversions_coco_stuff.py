"""tools/convert_coco_stuff.py end to end: COCO-Stuff-10k MATLAB annotations and COCO-Stuff-164k
stuffthingmaps written here, converted, listed, and read back by the COCO-Stuff dataset."""
import os

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from lib.datasets import build_dataset
from lib.datasets.lists import make_lists
from tests.helpers import write_png
from tools.cli import run
from tools.convert_coco_stuff import main

from .helpers import REFERENCE_COCOSTUFF_MAPPING, dataset_cfg


def expected_classes(stored):
    """The reference's classes of stored values: position in its table - 1; 0 and the ids not
    in the table are ignored (255)."""
    table = {value: k - 1 for k, value in enumerate(REFERENCE_COCOSTUFF_MAPPING) if value}
    return np.vectorize(lambda v: table.get(int(v), 255))(stored)


# 0 unlabelled, 1 person, 12 (an unused thing id), 92 banner, 182 wood, ...
STORED_A = np.array([[0, 1, 12, 92], [182, 182, 1, 0], [50, 91, 150, 3]])
STORED_B = np.array([[5, 5, 100], [100, 0, 181]])


def read_back(root, split):
    cfg = dataset_cfg(root, "cocostuff", **{"DATASET.NUM_CLASSES": 171,
                                            "DATASET.TEST_SET": f"list/cocostuff/{split}.lst"})
    dataset = build_dataset(cfg, "val")
    assert len(dataset) == 1
    return dataset[0][1].numpy()


def write_10k(src, names, maps, dtype=np.uint16):
    for name, stored in zip(names.values(), maps):
        write_png(os.path.join(src, "images", f"{name}.jpg"),
                  np.full(stored.shape + (3,), 80, np.uint8))
        os.makedirs(os.path.join(src, "annotations"), exist_ok=True)
        savemat(os.path.join(src, "annotations", f"{name}.mat"),
                {"S": stored.astype(dtype), "names": np.array(["unlabeled", "person"], object),
                 "captions": np.array(["a caption"], object),
                 "regionMapStuff": np.ones(stored.shape, np.uint16),
                 "regionLabelsStuff": np.zeros((1, 1))})
    os.makedirs(os.path.join(src, "imageLists"), exist_ok=True)
    for list_name, name in names.items():
        with open(os.path.join(src, "imageLists", list_name), "w") as f:
            f.write(f"{name}\n")


@pytest.mark.parametrize("dtype", [np.uint16, np.float64])
def test_10k_mat_labels_read_back(tmp_path, dtype):
    src, root = str(tmp_path / "cocostuff-10k"), str(tmp_path / "data")
    names = {"train.txt": "COCO_train2014_000000000077", "test.txt": "COCO_train2014_000000000825"}
    write_10k(src, names, (STORED_A, STORED_B), dtype)
    assert run(main, ["--release", "10k", "--src", src, "--root", root]) is None
    make_lists(root, "cocostuff")
    np.testing.assert_array_equal(read_back(root, "train"), expected_classes(STORED_A))
    np.testing.assert_array_equal(read_back(root, "val"), expected_classes(STORED_B))
    assert os.path.islink(os.path.join(root, "cocostuff", "val", "image",
                                       "COCO_train2014_000000000825.jpg"))


def test_164k_stuffthingmaps_read_back(tmp_path):
    src, root = str(tmp_path / "cocostuff"), str(tmp_path / "data")
    # The maps hold id - 1 and 255 for unlabelled: indexed PNG for train, grey for val.
    maps = {"train2017": STORED_A, "val2017": STORED_B}
    for folder, stored in maps.items():
        stem = "000000000009" if folder == "train2017" else "000000000139"
        write_png(os.path.join(src, "images", folder, f"{stem}.jpg"),
                  np.full(stored.shape + (3,), 80, np.uint8))
        values = np.where(stored == 0, 255, stored - 1).astype(np.uint8)
        image = Image.fromarray(values, mode="L")
        if folder == "train2017":
            image = image.convert("P")
            image.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
        os.makedirs(os.path.join(src, "annotations", folder), exist_ok=True)
        image.save(os.path.join(src, "annotations", folder, f"{stem}.png"))
    assert run(main, ["--release", "164k", "--src", src, "--root", root, "--copy"]) is None
    make_lists(root, "cocostuff")
    np.testing.assert_array_equal(read_back(root, "train"), expected_classes(STORED_A))
    np.testing.assert_array_equal(read_back(root, "val"), expected_classes(STORED_B))


def test_bad_annotations_name_the_file(tmp_path, capsys):
    src = str(tmp_path / "cocostuff-10k")
    names = {"train.txt": "a", "test.txt": "b"}
    write_10k(src, names, (STORED_A, np.array([[0, 183]])))
    assert run(main, ["--release", "10k", "--src", src, "--root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {os.path.join(src, 'annotations', 'b.mat')}: S holds values "
                   f"outside 0..182: [183]\n")
    savemat(os.path.join(src, "annotations", "b.mat"), {"L": np.zeros((2, 2))})
    assert run(main, ["--release", "10k", "--src", src, "--root", str(tmp_path / "data")]) == 2
    assert "b.mat: no variable 'S' (the label map); it holds ['L']" in capsys.readouterr().err
    os.remove(os.path.join(src, "annotations", "b.mat"))
    assert run(main, ["--release", "10k", "--src", src, "--root", str(tmp_path / "data")]) == 2
    assert "1 file(s) of the release not found:\n" in capsys.readouterr().err


def test_a_stuffthingmap_value_of_no_class_names_the_file(tmp_path, capsys):
    src = str(tmp_path / "cocostuff")
    for folder in ("train2017", "val2017"):
        write_png(os.path.join(src, "images", folder, "1.jpg"), np.zeros((2, 2, 3), np.uint8))
        write_png(os.path.join(src, "annotations", folder, "1.png"),
                  np.array([[0, 181], [200, 255]], np.uint8))
    assert run(main, ["--release", "164k", "--src", src, "--root", str(tmp_path / "data")]) == 2
    path = os.path.join(src, "annotations", "train2017", "1.png")
    assert capsys.readouterr().err.startswith(f"error: {path}: values [200] are no COCO-Stuff")
