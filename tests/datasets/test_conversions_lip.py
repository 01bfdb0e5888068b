"""tools/convert_lip.py end to end: LIP archives unpacked here in nested folders (with a
``__MACOSX`` decoy), placed, listed, and read back by the LIP dataset; a release unpacked in
our layout is left as it is."""
import os

import numpy as np

from lib.datasets import build_dataset
from lib.datasets.lists import make_lists
from tests.helpers import write_png
from tools.cli import run
from tools.convert_lip import main

from .helpers import dataset_cfg

IDS = {"train": ["77_471474", "100_1"], "val": ["36_454991"]}


def write_release(images_root, annotations_root, unlisted="999_9"):
    """The two archives' folders under the given roots, an image and annotation of an id no
    list names; returns {id: annotation values}."""
    labels = {}
    for split, ids in IDS.items():
        for k, image_id in enumerate(ids + [unlisted]):
            values = np.random.default_rng(k).integers(0, 20, (6, 5)).astype(np.uint8)
            values[0, 0] = 255
            write_png(os.path.join(images_root, f"{split}_images", f"{image_id}.jpg"),
                      np.full((6, 5, 3), 60, np.uint8))
            write_png(os.path.join(annotations_root, f"{split}_segmentations",
                                   f"{image_id}.png"), values)
            labels[image_id] = values
        with open(os.path.join(images_root, f"{split}_id.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in ids))
    return labels


def read_back(root, list_name):
    cfg = dataset_cfg(root, "lip", **{"DATASET.NUM_CLASSES": 20,
                                      "DATASET.TEST_SET": f"list/lip/{list_name}"})
    return build_dataset(cfg, "val")


def test_nested_release_is_placed_and_read_back(tmp_path, capsys):
    src = tmp_path / "downloads"
    labels = write_release(str(src / "TrainVal_images" / "TrainVal_images"),
                           str(src / "TrainVal_parsing_annotations"))
    write_png(str(src / "__MACOSX" / "TrainVal_images" / "train_images" / "._x.jpg"),
              np.zeros((2, 2, 3), np.uint8))
    root = str(tmp_path / "data")
    for _ in range(2):  # a second run finds the release again, not its own links
        assert run(main, ["--src", str(src), "--root", root]) is None
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"{root}/lip: train: 2 images and annotations", f"{root}/lip: val: 1 images and annotations"]
    assert not os.path.exists(os.path.join(root, "lip", "TrainVal_images", "train_images",
                                           "999_9.jpg"))
    make_lists(root, "lip")
    for list_name, split in (("trainList.txt", "train"), ("valList.txt", "val")):
        dataset = read_back(root, list_name)
        assert sorted(dataset.names) == sorted(IDS[split])
        for k, name in enumerate(dataset.names):
            np.testing.assert_array_equal(dataset[k][1].numpy(), labels[name])


def test_a_release_already_in_our_layout_is_left_as_it_is(tmp_path):
    out = tmp_path / "data" / "lip"
    labels = write_release(str(out / "TrainVal_images"), str(out / "TrainVal_parsing_annotations"))
    assert run(main, ["--src", str(out), "--root", str(tmp_path / "data")]) is None
    image = out / "TrainVal_images" / "val_images" / "36_454991.jpg"
    assert image.is_file() and not image.is_symlink()
    make_lists(str(tmp_path / "data"), "lip")
    dataset = read_back(str(tmp_path / "data"), "valList.txt")
    np.testing.assert_array_equal(dataset[0][1].numpy(), labels["36_454991"])


def test_missing_parts_and_files_are_named(tmp_path, capsys):
    src = tmp_path / "downloads"
    write_release(str(src / "images"), str(src / "annotations"))
    os.remove(src / "annotations" / "val_segmentations" / "36_454991.png")
    assert run(main, ["--src", str(src), "--root", str(tmp_path / "data")]) == 2
    path = src / "annotations" / "val_segmentations" / "36_454991.png"
    assert capsys.readouterr().err == (f"error: 1 file(s) of the release not found:\n{path}\n")
    os.rename(src / "images" / "train_id.txt", src / "train_id.txt.bak")
    os.makedirs(src / "copy" / "val_images")
    assert run(main, ["--src", str(src), "--root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "train_id.txt not found" in err and "val_images found 2 times" in err
