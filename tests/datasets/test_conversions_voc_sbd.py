"""tools/convert_voc_sbd.py end to end: VOC 2012 palette PNGs and SBD MATLAB structs written here,
converted into SegmentationClassAug and train_aug.txt, listed, and read back by the VOC dataset."""
import os

import numpy as np
from PIL import Image
from scipy.io import savemat
from scipy.sparse import csc_matrix

from lib.datasets import build_dataset
from lib.datasets.conversions.voc_sbd import train_aug_ids
from lib.datasets.lists import make_lists
from tests.helpers import write_png
from tools.cli import run
from tools.convert_voc_sbd import main

from .helpers import dataset_cfg

SHAPE = (5, 6)


def voc_palette():
    """The VOC colour map: bits of the index spread over the high bits of R, G and B."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def label(seed, with_void):
    values = np.random.default_rng(seed).integers(0, 21, SHAPE).astype(np.uint8)
    if with_void:
        values[0, :] = 255  # an outline
    return values


def write_sbd_mat(path, values):
    boundaries = np.empty((20, 1), dtype=object)
    for k in range(20):
        boundaries[k, 0] = csc_matrix(values == k + 1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    savemat(path, {"GTcls": {"Segmentation": values, "Boundaries": boundaries,
                             "CategoriesPresent": np.unique(values[values > 0])[:, None]}})


def write_lines(path, ids):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(f"{i}\n" for i in ids))


VOC_TRAIN, VOC_VAL = ["2007_000032", "2007_000039"], ["2007_000033"]
# SBD's splits overlap VOC's: 2007_000033 is VOC val, 2007_000039 VOC train.
SBD_TRAIN, SBD_VAL = ["2008_000002", "2007_000033", "2007_000039"], ["2008_000003"]


def write_releases(tmp_path):
    voc = str(tmp_path / "data" / "pascal_voc" / "VOCdevkit" / "VOC2012")
    sbd = str(tmp_path / "benchmark_RELEASE" / "dataset")
    labels = {}
    for k, image_id in enumerate(sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL))):
        write_png(os.path.join(voc, "JPEGImages", f"{image_id}.jpg"),
                  np.full(SHAPE + (3,), 70, np.uint8))
        if image_id in VOC_TRAIN + VOC_VAL:
            labels[image_id] = label(k, with_void=True)
            image = Image.fromarray(labels[image_id], mode="P")
            image.putpalette(voc_palette())
            os.makedirs(os.path.join(voc, "SegmentationClass"), exist_ok=True)
            image.save(os.path.join(voc, "SegmentationClass", f"{image_id}.png"))
        if image_id in SBD_TRAIN + SBD_VAL:
            sbd_values = label(100 + k, with_void=False)
            write_sbd_mat(os.path.join(sbd, "cls", f"{image_id}.mat"), sbd_values)
            labels.setdefault(image_id, sbd_values)  # VOC's own annotation comes first
    write_lines(os.path.join(voc, "ImageSets", "Segmentation", "train.txt"), VOC_TRAIN)
    write_lines(os.path.join(voc, "ImageSets", "Segmentation", "val.txt"), VOC_VAL)
    write_lines(os.path.join(sbd, "train.txt"), SBD_TRAIN)
    write_lines(os.path.join(sbd, "val.txt"), SBD_VAL)
    return voc, sbd, labels


def test_train_aug_is_sbd_and_voc_train_less_voc_val():
    assert train_aug_ids(SBD_TRAIN, SBD_VAL, VOC_TRAIN, VOC_VAL) == [
        "2007_000032", "2007_000039", "2008_000002", "2008_000003"]


def test_converted_labels_read_back(tmp_path, capsys):
    voc, sbd, labels = write_releases(tmp_path)
    assert run(main, ["--voc", voc, "--sbd", sbd]) is None
    assert capsys.readouterr().out.splitlines() == [
        "note: train_aug: 4 ids (the full releases give 10582); val: 1",
        f"{voc}/SegmentationClassAug: 3 labels from VOC, 2 from SBD"]
    with open(os.path.join(voc, "ImageSets", "Segmentation", "train_aug.txt")) as f:
        assert f.read().split() == ["2007_000032", "2007_000039", "2008_000002", "2008_000003"]
    root = str(tmp_path / "data")
    make_lists(root, "pascal_voc")
    for split, ids in (("train", ["2007_000032", "2007_000039", "2008_000002", "2008_000003"]),
                       ("val", VOC_VAL)):
        cfg = dataset_cfg(root, "pascal_voc", **{
            "DATASET.NUM_CLASSES": 21, "DATASET.TEST_SET": f"list/pascal_voc/{split}.lst"})
        dataset = build_dataset(cfg, "val")
        assert dataset.names == ids
        for k, image_id in enumerate(ids):
            np.testing.assert_array_equal(dataset[k][1].numpy(), labels[image_id])


def test_bad_sbd_files_name_the_file(tmp_path, capsys):
    voc, sbd, _ = write_releases(tmp_path)
    path = os.path.join(sbd, "cls", "2008_000002.mat")
    write_sbd_mat(path, np.full(SHAPE, 21, np.uint8))
    assert run(main, ["--voc", voc, "--sbd", sbd]) == 2
    assert capsys.readouterr().err == (f"error: {path}: GTcls.Segmentation holds values outside "
                                       f"0..20: [21]\n")
    savemat(path, {"GTinst": {"Segmentation": np.zeros(SHAPE)}})
    assert run(main, ["--voc", voc, "--sbd", sbd]) == 2
    assert capsys.readouterr().err == (f"error: {path}: no struct 'GTcls' (SBD's class "
                                       f"annotation); it holds ['GTinst']\n")
    os.remove(path)
    os.remove(os.path.join(voc, "JPEGImages", "2008_000003.jpg"))
    assert run(main, ["--voc", voc, "--sbd", sbd]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2 file(s) of the release not found:\n")
    assert path in err and os.path.join(voc, "JPEGImages", "2008_000003.jpg") in err
