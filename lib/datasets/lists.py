"""The list files of a dataset: ``<out>/<dataset>/{train,val,trainval,test}.lst`` written from
the dataset's folders (``tools/make_lists.py`` is the command).

Paths in the lists are relative to ``<root>/<dataset>/``; train, val and trainval lines are
``image<TAB>label``, test lines only ``image`` (Cityscapes test labels are dummies, ACDC has none;
ADE20K has train and val: ``images/{training,validation}/*.jpg`` with
``annotations/{training,validation}/*.png`` of the same stem).  PASCAL-Context and COCO-Stuff
pair ``{train,val}/image/*.jpg`` with ``{train,val}/label/*.png``; LIP pairs
``TrainVal_images/{train,val}_images/*.jpg`` with
``TrainVal_parsing_annotations/{train,val}_segmentations/*.png`` (paths relative to those two
folders, lists named trainList.txt and valList.txt as the reference's); PASCAL VOC lists
``VOCdevkit/VOC2012``'s ImageSets/Segmentation/val.txt for val and, for train, every
SegmentationClassAug label of another image (the augmented set), or train.txt with
SegmentationClass when there are no augmented labels.  Each split's count is logged against
the release's.  Lines are sorted.  A label without an image, or a train/val image without a
label, is an error that lists the files.  A split without a folder is skipped with a note.

A dataset of your own is listed from two glob patterns relative to ``<root>/<dataset>/``, with
``{split}`` standing for each split (``**`` spans folders).  An image and a label pair up when
their file names agree on the part the pattern's ``*`` stands for: the stem for ``*.jpg``,
``x`` in ``x_mask.png`` for ``*_mask.png``.  Every split must pair up completely, except the
image-only splits, which are listed without labels.

Messages go to this module's logger: each list written and each count that matches the release
at INFO, the notes (a split skipped, a count unlike the release's) at WARNING.
"""
import glob
import logging
import os

from ..utils.atomic import write_text
from . import LIST_NAMES
from .acdc import CONDITIONS
from .base_dataset import SPLITS
from .files import DatasetError, listed_lines

__all__ = ["DATASETS", "scan_cityscapes", "scan_acdc", "scan_paired", "scan_pascal_voc",
           "scan_globs", "write_list", "make_lists", "make_glob_lists"]

logger = logging.getLogger(__name__)

# The built-in datasets whose release layout make_lists reads.
DATASETS = ("acdc", "ade20k", "cityscapes", "cocostuff", "lip", "pascal_ctx", "pascal_voc")
_LABELLED = ("train", "val")
_MAX_LISTED = 20


def _relative_files(data_dir, pattern):
    """Sorted paths (relative to ``data_dir``, with /) of the files matching ``pattern``."""
    paths = glob.glob(os.path.join(data_dir, pattern), recursive=True)
    return sorted(os.path.relpath(p, data_dir).replace(os.sep, "/") for p in paths
                  if os.path.isfile(p))


def _pair(images, labels, image_key, label_key, split, need_labels):
    """Match images and labels by key; the (image, label or None) pairs and the problems found."""
    by_key = {label_key(path): path for path in labels}
    image_keys = {image_key(path) for path in images}
    problems = [f"{split}: label without an image: {path}"
                for key, path in sorted(by_key.items()) if key not in image_keys]
    pairs = []
    for path in images:
        label = by_key.get(image_key(path))
        if need_labels and label is None:
            problems.append(f"{split}: image without a label: {path}")
        pairs.append((path, label if need_labels else None))
    return pairs, problems


def _strip(suffix):
    """The pairing key of a path ``<top>/<split>/.../<name><suffix>``: the folders below the
    split and the name less ``suffix`` (an image and its label share it)."""
    def key(path):
        parts = path.split("/")
        return tuple(parts[2:-1]) + (parts[-1][:-len(suffix)],)
    return key


def scan_cityscapes(data_dir):
    """{split: [(image, label or None)]} of the Cityscapes split folders that exist."""
    found, problems = {}, []
    for split in SPLITS:
        image_dir = os.path.join(data_dir, "leftImg8bit", split)
        label_dir = os.path.join(data_dir, "gtFine", split)
        if not os.path.isdir(image_dir) and not os.path.isdir(label_dir):
            logger.warning(f"note: cityscapes {split}: no folder {image_dir}, split skipped")
            continue
        images = _relative_files(data_dir, f"leftImg8bit/{split}/*/*_leftImg8bit.png")
        labels = _relative_files(data_dir, f"gtFine/{split}/*/*_gtFine_labelIds.png")
        pairs, bad = _pair(images, labels, _strip("_leftImg8bit.png"),
                           _strip("_gtFine_labelIds.png"), split, split in _LABELLED)
        found[split], problems = pairs, problems + bad
    return found, problems


def scan_acdc(data_dir, conditions=CONDITIONS):
    """{split: [(image, label or None)]} over the selected conditions; ``*_ref`` folders unused."""
    found, problems = {}, []
    for split in SPLITS:
        present = False
        for condition in conditions:
            image_dir = os.path.join(data_dir, "rgb_anon", condition, split)
            label_dir = os.path.join(data_dir, "gt", condition, split)
            if not os.path.isdir(image_dir) and not os.path.isdir(label_dir):
                logger.warning(f"note: acdc {condition}/{split}: no folder {image_dir}, skipped")
                continue
            present = True
            images = _relative_files(data_dir, f"rgb_anon/{condition}/{split}/*/*_rgb_anon.png")
            labels = _relative_files(data_dir, f"gt/{condition}/{split}/*/*_gt_labelIds.png")
            images = [p for p in images if not p.split("/")[3].endswith("_ref")]
            labels = [p for p in labels if not p.split("/")[3].endswith("_ref")]
            pairs, bad = _pair(images, labels, _strip("_rgb_anon.png"),
                               _strip("_gt_labelIds.png"), f"{condition}/{split}",
                               split in _LABELLED)
            found.setdefault(split, []).extend(pairs)
            problems += bad
        if present:
            found[split].sort()
    return found, problems


# Per dataset and split: (image folder, label folder, both relative to the dataset folder and
# the roots of the list's paths; image glob, label glob, relative to them), and the number of
# images of the official release.
_PAIRED_SPLITS = {
    "ade20k": {"train": (("", "", "images/training/*.jpg", "annotations/training/*.png"), 20210),
               "val": (("", "", "images/validation/*.jpg", "annotations/validation/*.png"),
                       2000)},
    "pascal_ctx": {split: (("", "", f"{split}/image/*.jpg", f"{split}/label/*.png"), official)
                   for split, official in (("train", 4998), ("val", 5105))},
    "cocostuff": {split: (("", "", f"{split}/image/*.jpg", f"{split}/label/*.png"), official)
                  for split, official in (("train", 9000), ("val", 1000))},
    "lip": {split: (("TrainVal_images", "TrainVal_parsing_annotations", f"{split}_images/*.jpg",
                     f"{split}_segmentations/*.png"), official)
            for split, official in (("train", 30462), ("val", 10000))},
}


def _count_note(dataset, split, count, official):
    note = "" if count == official else "note: "
    log = logger.warning if note else logger.info
    log(f"{note}{dataset} {split}: {count} images; the official release has {official}")


def scan_paired(data_dir, dataset):
    """{split: [(image, label)]} of the split folders of ``dataset`` (a :data:`_PAIRED_SPLITS`
    entry) that exist; images and labels pair by stem."""
    found, problems = {}, []
    for split, ((image_root, label_root, images, labels), official) in (
            _PAIRED_SPLITS[dataset].items()):
        image_dir = os.path.join(data_dir, image_root, os.path.dirname(images))
        if not os.path.isdir(image_dir) and not os.path.isdir(
                os.path.join(data_dir, label_root, os.path.dirname(labels))):
            logger.warning(f"note: {dataset} {split}: no folder {image_dir}, split skipped")
            continue
        images = _relative_files(os.path.join(data_dir, image_root), images)
        labels = _relative_files(os.path.join(data_dir, label_root), labels)
        pairs, bad = _pair(images, labels, _strip(".jpg"), _strip(".png"), split, True)
        _count_note(dataset, split, len(pairs), official)
        found[split], problems = pairs, problems + bad
    return found, problems


# VOC 2012: the folder of the release, and the images of the augmented training set and of val.
_VOC_DIR = "VOCdevkit/VOC2012"
_VOC_OFFICIAL = {"train": 10582, "val": 1449}


def _voc_ids(data_dir, split):
    """The ids of ImageSets/Segmentation/<split>.txt, or None (with a note) without one."""
    path = os.path.join(data_dir, _VOC_DIR, "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(path):
        logger.warning(f"note: pascal_voc {split}: no {path}, split skipped")
        return None
    with open(path) as f:
        return sorted({line.strip() for line in f if line.strip()})


def scan_pascal_voc(data_dir):
    """{split: [(image, label)]} of VOC 2012: val.txt for val; the augmented training set (every
    SegmentationClassAug label of an image not in val.txt), else train.txt with
    SegmentationClass."""
    problems, found = [], {}
    val = _voc_ids(data_dir, "val")
    aug = _relative_files(os.path.join(data_dir, _VOC_DIR), "SegmentationClassAug/*.png")
    folder = "SegmentationClassAug" if aug else "SegmentationClass"
    if aug:
        train = sorted({os.path.splitext(os.path.basename(p))[0] for p in aug} - set(val or ()))
    else:
        logger.warning(f"note: pascal_voc: no {_VOC_DIR}/SegmentationClassAug, train is train.txt")
        train = _voc_ids(data_dir, "train")
    for split, ids in (("train", train), ("val", val)):
        if ids is None:
            continue
        pairs = [(f"{_VOC_DIR}/JPEGImages/{i}.jpg", f"{_VOC_DIR}/{folder}/{i}.png") for i in ids]
        for pair in pairs:
            problems += [f"{split}: {what} not found: {rel}" for what, rel in zip(
                ("image", "label"), pair) if not os.path.isfile(os.path.join(data_dir, rel))]
        if aug or split == "val":
            _count_note("pascal_voc", split, len(pairs), _VOC_OFFICIAL[split])
        found[split] = pairs
    return found, problems


def write_list(path, pairs):
    """Write ``image<TAB>label`` (or ``image``) lines, sorted by image path."""
    write_text(path, "".join(f"{image}\t{label}\n" if label is not None else f"{image}\n"
                             for image, label in sorted(pairs)))


def _name_key(pattern):
    """The pairing key of file names matched by ``pattern``: the name without the literal text
    before its first ``*`` and after its last one; the stem when that text holds wildcards."""
    base = pattern.replace("\\", "/").rsplit("/", 1)[-1]
    head, star, tail = base.partition("*")
    tail = tail.rpartition("*")[2] if "*" in tail else tail
    literal = star and not any(c in head + tail for c in "?[")

    def key(path):
        name = path.rsplit("/", 1)[-1]
        return name[len(head):len(name) - len(tail)] if literal else os.path.splitext(name)[0]
    return key


def _by_key(paths, key, split, what):
    """{key: path}; two files with one key are a problem (they cannot be paired)."""
    found, problems = {}, []
    for path in paths:
        k = key(path)
        if k in found:
            problems.append(f"{split}: two {what}s pair as {k!r}: {found[k]} and {path}")
        found.setdefault(k, path)
    return found, problems


def scan_globs(data_dir, images, labels, splits=SPLITS, image_only=()):
    """{split: [(image, label or None)]} of a dataset of your own, and the problems found.

    ``images`` and ``labels`` are glob patterns relative to ``data_dir`` with ``{split}`` for the
    split; ``labels`` is not read for the ``image_only`` splits.  A split that matches no file is
    skipped with a note.
    """
    found, problems = {}, []
    for split in splits:
        image_paths = _relative_files(data_dir, images.format(split=split))
        label_paths = [] if split in image_only else _relative_files(
            data_dir, labels.format(split=split))
        if not image_paths and not label_paths:
            logger.warning(f"note: {split}: no file matches {images.format(split=split)}, split skipped")
            continue
        if split in image_only:
            found[split] = [(path, None) for path in image_paths]
            continue
        by_image, bad_images = _by_key(image_paths, _name_key(images), split, "image")
        by_label, bad_labels = _by_key(label_paths, _name_key(labels), split, "label")
        problems += bad_images + bad_labels
        problems += [f"{split}: image without a label: {path}"
                     for k, path in sorted(by_image.items()) if k not in by_label]
        problems += [f"{split}: label without an image: {path}"
                     for k, path in sorted(by_label.items()) if k not in by_image]
        found[split] = [(path, by_label[k]) for k, path in by_image.items() if k in by_label]
    return found, problems


def make_glob_lists(root, dataset, images, labels=None, splits=SPLITS, image_only=(), out=None):
    """Pair ``<root>/<dataset>/`` images and labels from glob patterns (:func:`scan_globs`) and
    write ``<out>/<dataset>/*.lst`` (``out`` = ``<root>/list``); returns {list name: lines}.

    Raises DatasetError naming every unpaired file, for a pattern without ``{split}``, and when
    no image is found.
    """
    data_dir = os.path.join(root, dataset)
    if not os.path.isdir(data_dir):
        raise DatasetError(f"dataset folder not found: {data_dir}")
    unknown = sorted(set(image_only) - set(splits))
    if unknown:
        raise DatasetError(f"--image-only {unknown} are not among the splits {list(splits)}")
    patterns = {"--images": images}
    if set(splits) - set(image_only):
        patterns["--labels"] = labels
    for option, pattern in patterns.items():
        if not pattern or "{split}" not in pattern:
            raise DatasetError(f"{option} {pattern!r} needs the placeholder {{split}} (e.g. "
                               f"'images/{{split}}/*.jpg')")
    found, problems = scan_globs(data_dir, images, labels, splits, image_only)
    return _write_lists(data_dir, found, problems, dataset, root, out)


def make_lists(root, dataset, conditions=None, out=None):
    """Scan ``<root>/<dataset>/`` and write ``<out>/<dataset>/*.lst`` (``out`` = ``<root>/list``).

    Returns {list name: number of lines}.  Raises DatasetError when a label has no image, a
    train/val image has no label, or no image is found at all.
    """
    data_dir = os.path.join(root, dataset)
    if not os.path.isdir(data_dir):
        raise DatasetError(f"dataset folder not found: {data_dir}")
    if dataset == "cityscapes":
        if conditions:
            raise DatasetError("--conditions applies to acdc only")
        found, problems = scan_cityscapes(data_dir)
    elif dataset == "acdc":
        conditions = list(conditions or CONDITIONS)
        unknown = sorted(set(conditions) - set(CONDITIONS))
        if unknown:
            raise DatasetError(f"unknown ACDC condition(s) {unknown}; valid: {list(CONDITIONS)}")
        found, problems = scan_acdc(data_dir, conditions)
    elif dataset in _PAIRED_SPLITS or dataset == "pascal_voc":
        if conditions:
            raise DatasetError("--conditions applies to acdc only")
        found, problems = (scan_pascal_voc(data_dir) if dataset == "pascal_voc"
                           else scan_paired(data_dir, dataset))
    else:
        raise DatasetError(f"unknown dataset {dataset!r}; valid names: {list(DATASETS)} "
                           f"(list a dataset of your own with --images and --labels)")
    return _write_lists(data_dir, found, problems, dataset, root, out)


def _write_lists(data_dir, found, problems, dataset, root, out):
    """Raise for the problems, else write {split: pairs} (and trainval) as list files."""
    if problems:
        raise DatasetError(f"{data_dir}: {len(problems)} unmatched file(s):\n"
                           f"{listed_lines(problems, _MAX_LISTED)}")
    if not any(found.values()):
        raise DatasetError(f"no images found under {data_dir}")
    if "train" in found and "val" in found:
        found["trainval"] = found["train"] + found["val"]
    out_dir = os.path.join(out if out is not None else os.path.join(root, "list"), dataset)
    names = LIST_NAMES.get(dataset, {})
    counts = {}
    for name, pairs in found.items():
        path = os.path.join(out_dir, names.get(name, f"{name}.lst"))
        write_list(path, pairs)
        counts[name] = len(pairs)
        logger.info(f"{path}: {len(pairs)} images")
    return counts
