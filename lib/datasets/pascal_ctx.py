"""PASCAL-Context: 59 classes with the background ignored, or 60 with it; names, palette, layout.

Layout under ``<DATASET.ROOT>/pascal_ctx/`` (the one the HRNet-OCR loader's lists describe:
the release converted to PNG labels, one folder per split)::

    train/image/<id>.jpg      train/label/<id>.png        (4,998 images)
    val/image/<id>.jpg        val/label/<id>.png          (5,105 images)

Labels are 8-bit PNGs: 0 is the background, 1..59 the classes in the order of
``CLASS_NAMES_59``.  With 60 classes every value 0..59 is its own class; with 59 (the common
benchmark, and the reference's ``reduce_zero_label``) 0 is ignored and k is class k - 1.  255
is ignored in both; values 60..254 are out of range (DATASET.OUT_OF_RANGE_LABELS).  Images are
JPEGs.  Evaluated with the HRNet-OCR ``testval`` procedure (the ``ade20k`` protocol, the
multiple-of-8 padding cut off before the last resize as the reference's items carry it:
``eval_crop_padding``); trained, as there, on the image resized so that its short side is
TRAIN.BASE_SIZE before the random scale and crop.
"""
from .ade20k import ShortSideFirst
from .stored_labels import StoredLabelDataset, stored_value_tables, voc_colours

__all__ = ["PASCALContext", "PASCALContext59", "CLASS_NAMES_59"]

# The 59 classes, as stored in the label files (value k is CLASS_NAMES_59[k - 1]).
CLASS_NAMES_59 = (
    "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle",
    "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow",
    "cup", "curtain", "dog", "door", "fence", "floor", "flower", "food", "grass", "ground",
    "horse", "keyboard", "light", "motorbike", "mountain", "mouse", "person", "plate", "platform",
    "pottedplant", "road", "rock", "sheep", "shelves", "sidewalk", "sign", "sky", "snow", "sofa",
    "table", "track", "train", "tree", "truck", "tvmonitor", "wall", "water", "window", "wood")


class PASCALContext(StoredLabelDataset):
    """PASCAL-Context with 60 classes (background included, DATASET.NUM_CLASSES 60); items are
    named by the image id, e.g. ``2008_000002``.  Arguments are those of :class:`BaseDataset`.
    """

    folder = "pascal_ctx"
    image_suffix = ".jpg"
    class_names = ("background",) + CLASS_NAMES_59
    label_to_train_id, train_id_to_label = stored_value_tables(range(60))
    palette = voc_colours(range(60))
    eval_protocol = "ade20k"
    # HRNet-OCR's testval items carry their border_padding, cut off before the last resize.
    eval_crop_padding = True
    before_transform = ShortSideFirst


class PASCALContext59(PASCALContext):
    """PASCAL-Context with 59 classes (DATASET.NUM_CLASSES 59): the background is ignored."""

    class_names = CLASS_NAMES_59
    label_to_train_id, train_id_to_label = stored_value_tables(range(1, 60))
    void_values = (0,)  # the background
    palette = voc_colours(range(1, 60))
