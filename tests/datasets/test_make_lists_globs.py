"""tools/make_lists.py for a dataset of your own: pairing images and labels from glob patterns."""
import os
import re

import pytest

from lib.datasets import DatasetError
from lib.datasets.lists import make_glob_lists
from tools.cli import run
from tools.make_lists import main

from .helpers import read_lines, touch

IMAGES = "images/{split}/*.jpg"
LABELS = "masks/{split}/*_mask.png"


def orchard_tree(root):
    touch(root / "orchard",
          "images/train/b.jpg", "images/train/a.jpg", "images/train/notes.txt",
          "masks/train/a_mask.png", "masks/train/b_mask.png", "masks/train/b_preview.jpg",
          "images/val/c.jpg", "masks/val/c_mask.png",
          "images/test/d.jpg", "images/test/e.jpg")


def test_images_and_labels_pair_by_the_part_the_star_stands_for(tmp_path):
    orchard_tree(tmp_path)
    counts = make_glob_lists(str(tmp_path), "orchard", IMAGES, LABELS, image_only=["test"])
    assert counts == {"train": 2, "val": 1, "test": 2, "trainval": 3}
    out = tmp_path / "list" / "orchard"
    assert read_lines(out / "train.lst") == ["images/train/a.jpg\tmasks/train/a_mask.png",
                                             "images/train/b.jpg\tmasks/train/b_mask.png"]
    assert read_lines(out / "test.lst") == ["images/test/d.jpg", "images/test/e.jpg"]
    assert read_lines(out / "trainval.lst") == sorted(read_lines(out / "train.lst")
                                                      + read_lines(out / "val.lst"))


def test_every_unpaired_file_is_named(tmp_path):
    orchard_tree(tmp_path)
    touch(tmp_path / "orchard", "images/train/lonely.jpg", "masks/val/stray_mask.png")
    with pytest.raises(DatasetError) as err:
        make_glob_lists(str(tmp_path), "orchard", IMAGES, LABELS, image_only=["test"])
    message = str(err.value)
    assert "2 unmatched file(s)" in message
    assert "train: image without a label: images/train/lonely.jpg" in message
    assert "val: label without an image: masks/val/stray_mask.png" in message
    assert not os.path.exists(tmp_path / "list")  # nothing written


def test_labelled_test_split_needs_labels_unless_image_only(tmp_path):
    orchard_tree(tmp_path)
    with pytest.raises(DatasetError, match="test: image without a label: images/test/d.jpg"):
        make_glob_lists(str(tmp_path), "orchard", IMAGES, LABELS)


def test_stems_and_recursive_patterns(tmp_path):
    touch(tmp_path / "orchard", "rgb/train/row1/x.png", "rgb/train/row2/y.png",
          "gt/train/x.png", "gt/train/y.png")
    counts = make_glob_lists(str(tmp_path), "orchard", "rgb/{split}/**/*.png", "gt/{split}/*.png",
                             splits=["train"])
    assert counts == {"train": 2}
    assert read_lines(tmp_path / "list/orchard/train.lst") == ["rgb/train/row1/x.png\tgt/train/x.png",
                                                               "rgb/train/row2/y.png\tgt/train/y.png"]


def test_two_images_with_one_stem_cannot_be_paired(tmp_path):
    touch(tmp_path / "orchard", "rgb/train/row1/x.png", "rgb/train/row2/x.png", "gt/train/x.png")
    with pytest.raises(DatasetError, match="two images pair as 'x'"):
        make_glob_lists(str(tmp_path), "orchard", "rgb/{split}/**/*.png", "gt/{split}/*.png",
                        splits=["train"])


def test_patterns_need_the_split_placeholder(tmp_path):
    orchard_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"--labels 'masks/\*.png' needs the placeholder"):
        make_glob_lists(str(tmp_path), "orchard", IMAGES, "masks/*.png")
    with pytest.raises(DatasetError, match="--image-only .*'extra'"):
        make_glob_lists(str(tmp_path), "orchard", IMAGES, LABELS, image_only=["extra"])


def test_command_line_lists_a_dataset_of_your_own(tmp_path, capsys):
    orchard_tree(tmp_path)
    main(["--dataset", "orchard", "--root", str(tmp_path), "--images", IMAGES, "--labels", LABELS,
          "--splits", "train", "test", "--image-only", "test"])
    assert sorted(os.listdir(tmp_path / "list" / "orchard")) == ["test.lst", "train.lst"]
    assert "train.lst: 2 images" in capsys.readouterr().out
    # A user error ends the tool with its message (the files or the option at fault), not a
    # traceback.
    assert run(main, ["--dataset", "orchard", "--root", str(tmp_path)]) == 2
    assert re.match(r"error: unknown dataset 'orchard'.*--images and --labels",
                    capsys.readouterr().err)
