import os
import subprocess
import sys

import pytest

from lib.datasets import DatasetError
from lib.datasets.lists import make_lists
from tests.helpers import ROOT
from tools.make_lists import main

from .helpers import read_lines, touch


def cityscapes_tree(root):
    touch(root / "cityscapes",
          "leftImg8bit/train/b/b_000000_000019_leftImg8bit.png",
          "leftImg8bit/train/a/a_000001_000019_leftImg8bit.png",
          "leftImg8bit/train/a/a_000000_000019_leftImg8bit.png",
          "gtFine/train/b/b_000000_000019_gtFine_labelIds.png",
          "gtFine/train/a/a_000001_000019_gtFine_labelIds.png",
          "gtFine/train/a/a_000000_000019_gtFine_labelIds.png",
          "gtFine/train/a/a_000000_000019_gtFine_color.png",
          "leftImg8bit/val/c/c_000000_000019_leftImg8bit.png",
          "gtFine/val/c/c_000000_000019_gtFine_labelIds.png",
          "leftImg8bit/test/d/d_000000_000019_leftImg8bit.png",
          "gtFine/test/d/d_000000_000019_gtFine_labelIds.png")


def test_cityscapes_lists_are_sorted_relative_tab_separated_and_test_is_image_only(tmp_path):
    cityscapes_tree(tmp_path)
    counts = make_lists(str(tmp_path), "cityscapes")
    assert counts == {"train": 3, "val": 1, "test": 1, "trainval": 4}
    out = tmp_path / "list" / "cityscapes"
    assert read_lines(out / "train.lst") == [
        "leftImg8bit/train/a/a_000000_000019_leftImg8bit.png\t"
        "gtFine/train/a/a_000000_000019_gtFine_labelIds.png",
        "leftImg8bit/train/a/a_000001_000019_leftImg8bit.png\t"
        "gtFine/train/a/a_000001_000019_gtFine_labelIds.png",
        "leftImg8bit/train/b/b_000000_000019_leftImg8bit.png\t"
        "gtFine/train/b/b_000000_000019_gtFine_labelIds.png"]
    assert read_lines(out / "test.lst") == ["leftImg8bit/test/d/d_000000_000019_leftImg8bit.png"]
    assert read_lines(out / "trainval.lst") == sorted(read_lines(out / "train.lst")
                                                      + read_lines(out / "val.lst"))


def test_label_without_image_is_reported_by_name(tmp_path):
    cityscapes_tree(tmp_path)
    touch(tmp_path / "cityscapes", "gtFine/val/c/c_000009_000019_gtFine_labelIds.png")
    with pytest.raises(DatasetError, match="label without an image.*c_000009_000019_gtFine"):
        make_lists(str(tmp_path), "cityscapes")


def test_train_image_without_label_is_reported_by_name(tmp_path):
    cityscapes_tree(tmp_path)
    os.remove(tmp_path / "cityscapes/gtFine/train/b/b_000000_000019_gtFine_labelIds.png")
    with pytest.raises(DatasetError, match="image without a label.*b_000000_000019_leftImg8bit"):
        make_lists(str(tmp_path), "cityscapes")


def test_split_without_folder_is_skipped_with_a_note_and_empty_dataset_is_an_error(
        tmp_path, caplog):
    touch(tmp_path / "cityscapes", "leftImg8bit/val/c/c_000000_000019_leftImg8bit.png",
          "gtFine/val/c/c_000000_000019_gtFine_labelIds.png")
    assert make_lists(str(tmp_path), "cityscapes", out=str(tmp_path / "lists")) == {"val": 1}
    assert "note: cityscapes train: no folder" in caplog.text and "skipped" in caplog.text
    assert sorted(os.listdir(tmp_path / "lists" / "cityscapes")) == ["val.lst"]
    os.makedirs(tmp_path / "empty" / "cityscapes" / "leftImg8bit" / "train")
    with pytest.raises(DatasetError, match="no images"):
        make_lists(str(tmp_path / "empty"), "cityscapes")


def acdc_tree(root):
    touch(root / "acdc",
          "rgb_anon/fog/train/GOPR0475/GOPR0475_frame_000041_rgb_anon.png",
          "gt/fog/train/GOPR0475/GOPR0475_frame_000041_gt_labelIds.png",
          "rgb_anon/fog/train_ref/GOPR0475/GOPR0475_frame_000041_rgb_ref_anon.png",
          "rgb_anon/night/train/GP010376/GP010376_frame_000001_rgb_anon.png",
          "gt/night/train/GP010376/GP010376_frame_000001_gt_labelIds.png",
          "rgb_anon/night/val/GP010377/GP010377_frame_000002_rgb_anon.png",
          "gt/night/val/GP010377/GP010377_frame_000002_gt_labelIds.png",
          "rgb_anon/snow/test/GOPR0122/GOPR0122_frame_000003_rgb_anon.png")


def test_acdc_lists_ignore_reference_folders_and_select_conditions(tmp_path):
    acdc_tree(tmp_path)
    assert make_lists(str(tmp_path), "acdc") == {"train": 2, "val": 1, "test": 1, "trainval": 3}
    train = read_lines(tmp_path / "list/acdc/train.lst")
    assert not any("_ref" in line for line in train)
    assert read_lines(tmp_path / "list/acdc/test.lst") == [
        "rgb_anon/snow/test/GOPR0122/GOPR0122_frame_000003_rgb_anon.png"]
    assert make_lists(str(tmp_path), "acdc", conditions=["fog"]) == {"train": 1}
    assert read_lines(tmp_path / "list/acdc/train.lst") == [
        "rgb_anon/fog/train/GOPR0475/GOPR0475_frame_000041_rgb_anon.png\t"
        "gt/fog/train/GOPR0475/GOPR0475_frame_000041_gt_labelIds.png"]


def test_command_line_writes_the_lists(tmp_path, capsys):
    acdc_tree(tmp_path)
    main(["--dataset", "acdc", "--root", str(tmp_path), "--conditions", "night",
          "--out", str(tmp_path / "out")])
    assert "train.lst: 1 images" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "out" / "acdc")) == ["train.lst", "trainval.lst",
                                                             "val.lst"]


@pytest.mark.parametrize("command", [["tools/make_lists.py"], ["-m", "tools.make_lists"]])
def test_tool_runs_as_a_script_and_as_a_module(tmp_path, command):
    cityscapes_tree(tmp_path)
    args = [sys.executable, *command, "--dataset", "cityscapes", "--root", str(tmp_path)]
    if command[0] == "-m":
        result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    else:
        args[1] = os.path.join(ROOT, command[0])
        result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "train.lst: 3 images" in result.stdout
