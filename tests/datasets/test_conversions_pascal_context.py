"""tools/convert_pascal_context.py end to end: a Detail annotation file written here (RLE masks
encoded from known masks), converted, listed, and read back by the PASCAL-Context dataset with 59
and with 60 classes."""
import json
import os
import re

import numpy as np
import pytest

from lib.datasets import build_dataset
from lib.datasets.conversions.pascal_context import CONTEXT_59_IDS
from lib.datasets.lists import make_lists
from lib.datasets.pascal_ctx import CLASS_NAMES_59
from tests.helpers import write_png
from tools.cli import run
from tools.convert_pascal_context import main

from .helpers import dataset_cfg, encode_counts, mask_runs

# The reference loaders' table (HRNet master lib/datasets/pascal_ctx.py, PyTorch-Encoding),
# unsorted as written there: 0 and the Detail category ids of the 59 classes.
REFERENCE_MAPPING = [
    0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33, 162,
    420, 454, 295, 296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68, 326, 72,
    458, 34, 207, 80, 355, 85, 347, 220, 349, 360, 98, 187, 104, 105, 366, 189, 368, 113, 115]
# Names of a few of those categories among PASCAL-Context's 459 labels.
NAMES = {2: "aeroplane", 284: "person", 458: "wood", 187: "grass"}


def rle(mask):
    return {"size": list(mask.shape), "counts": encode_counts(mask_runs(mask))}


def box(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def write_release(folder, images, annotations):
    """Images {file name: (phase, (h, w))} as JPEGs in folder/JPEGImages and the Detail JSON with
    ``annotations`` [(file name, category, mask)]; returns (json path, image folder)."""
    entries, ids = [], {}
    for k, (name, (phase, (height, width))) in enumerate(images.items()):
        ids[name] = 2008000002 + k
        entries.append({"image_id": ids[name], "file_name": name, "height": height,
                        "width": width, "phase": phase, "date_captured": ""})
        write_png(os.path.join(folder, "JPEGImages", name), np.full((height, width, 3), 99,
                                                                       np.uint8))
    annos = [{"id": k, "image_id": ids[name], "category_id": category, "segmentation": rle(mask),
              "iscrowd": 0, "area": int(mask.sum()), "parts": []}
             for k, (name, category, mask) in enumerate(annotations)]
    data = {"info": {}, "images": entries, "annos_segmentation": annos, "categories": [],
            "parts": [], "annos_occlusion": [], "annos_boundary": []}
    path = os.path.join(folder, "trainval_merged.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path, os.path.join(folder, "JPEGImages")


def test_the_detail_table_is_the_references():
    assert sorted(REFERENCE_MAPPING[1:]) == list(CONTEXT_59_IDS)


def test_converted_labels_read_back_with_59_and_60_classes(tmp_path):
    shape_a, shape_b = (6, 8), (5, 7)
    aeroplane = box(shape_a, (0, 3), (0, 4))
    wood = box(shape_a, (1, 4), (2, 6))  # over part of the aeroplane: the later one wins
    person = box(shape_b, (2, 5), (1, 3))
    grass = box(shape_b, (0, 5), (0, 7)) & ~person
    json_path, image_dir = write_release(str(tmp_path / "release"), {
        "2008_000002.jpg": ("train", shape_a), "2008_000003.jpg": ("val", shape_b),
        "2010_000001.jpg": ("test", (4, 4))},
        [("2008_000002.jpg", 2, aeroplane), ("2008_000002.jpg", 458, wood),
         ("2008_000003.jpg", 187, grass), ("2008_000003.jpg", 284, person)])
    root = str(tmp_path / "data")
    assert run(main, ["--json", json_path, "--images", image_dir, "--root", root]) is None
    assert sorted(os.listdir(os.path.join(root, "pascal_ctx"))) == ["train", "val"]
    assert os.path.islink(os.path.join(root, "pascal_ctx", "train", "image", "2008_000002.jpg"))
    make_lists(root, "pascal_ctx")

    # Stored value = 1 + the class's place in the alphabetical list of the 59.
    value = {category: CLASS_NAMES_59.index(name) + 1 for category, name in NAMES.items()}
    expected_a = np.zeros(shape_a, np.int64)
    expected_a[aeroplane], expected_a[wood] = value[2], value[458]
    expected_b = np.zeros(shape_b, np.int64)
    expected_b[grass], expected_b[person] = value[187], value[284]
    assert (value[2], value[458]) == (1, 59)
    for classes, to_class in ((60, lambda v: v), (59, lambda v: np.where(v == 0, 255, v - 1))):
        for list_name, expected in (("train", expected_a), ("val", expected_b)):
            cfg = dataset_cfg(root, "pascal_ctx", **{
                "DATASET.NUM_CLASSES": classes,
                "DATASET.TEST_SET": f"list/pascal_ctx/{list_name}.lst"})
            dataset = build_dataset(cfg, "val")
            assert len(dataset) == 1
            np.testing.assert_array_equal(dataset[0][1].numpy(), to_class(expected))


def test_copies_instead_of_links(tmp_path):
    json_path, image_dir = write_release(str(tmp_path / "release"), {
        "2008_000002.jpg": ("train", (4, 4))}, [])
    root = str(tmp_path / "data")
    assert run(main, ["--json", json_path, "--images", image_dir, "--root", root,
                      "--copy"]) is None
    image = os.path.join(root, "pascal_ctx", "train", "image", "2008_000002.jpg")
    assert os.path.isfile(image) and not os.path.islink(image)
    label = os.path.join(root, "pascal_ctx", "train", "label", "2008_000002.png")
    assert os.path.isfile(label)  # no annotation: all background


@pytest.mark.parametrize("change, message", [
    (lambda d: d["annos_segmentation"][0].update(category_id=5),
     "annotation 0 of image 2008_000002.jpg: category 5 is none of the 59"),
    (lambda d: d["annos_segmentation"][0]["segmentation"].update(size=[4, 6]),
     "annotation 0 of image 2008_000002.jpg: the mask is 4 x 6 but the image is 6 x 4"),
    (lambda d: d["annos_segmentation"][0]["segmentation"].update(counts="0 "),
     "annotation 0 of image 2008_000002.jpg: 'segmentation' character"),
    (lambda d: d["images"][0].pop("phase"), "images\\[0\\]: 'phase' missing"),
    (lambda d: d.pop("annos_segmentation"), "no list 'annos_segmentation'"),
])
def test_bad_annotations_are_one_line_naming_the_file(tmp_path, capsys, change, message):
    mask = box((6, 4), (0, 2), (0, 2))
    json_path, image_dir = write_release(str(tmp_path), {"2008_000002.jpg": ("train", (6, 4))},
                                         [("2008_000002.jpg", 2, mask)])
    with open(json_path) as f:
        data = json.load(f)
    change(data)
    with open(json_path, "w") as f:
        json.dump(data, f)
    assert run(main, ["--json", json_path, "--images", image_dir,
                      "--root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {json_path}") and len(err.splitlines()) == 1
    assert re.search(message, err), err


def test_missing_images_are_named_before_anything_is_written(tmp_path, capsys):
    json_path, image_dir = write_release(str(tmp_path), {"2008_000002.jpg": ("train", (4, 4))}, [])
    os.remove(os.path.join(image_dir, "2008_000002.jpg"))
    root = tmp_path / "data"
    assert run(main, ["--json", json_path, "--images", image_dir, "--root", str(root)]) == 2
    assert os.path.join(image_dir, "2008_000002.jpg") in capsys.readouterr().err
    assert not root.exists()
