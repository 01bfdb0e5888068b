"""PASCAL VOC 2012 with the augmented training set: 21 classes (background included), names,
palette, layout.

Layout under ``<DATASET.ROOT>/pascal_voc/`` (the VOC 2012 release with the augmented labels)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClassAug/<id>.png     (single-channel label values)
    VOCdevkit/VOC2012/SegmentationClass/<id>.png        (palette PNGs: the indices are read)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt

``tools/make_lists.py`` lists the 10,582 augmented training images (every SegmentationClassAug
label not in val.txt) and the 1,449 val.txt images.  Label value k (0..20) is class k; 255, the
"void" outline drawn around objects, is ignored, and values 21..254 are out of range
(DATASET.OUT_OF_RANGE_LABELS).  Images are JPEGs.

The OVeNet repository ships VOC experiment files with 21 and with 20 classes.  DATASET.NUM_CLASSES
21 is VOC 2012 as benchmarked; 20 (:class:`PascalVOC20`) is the 20 object classes with the
background ignored (value k is class k - 1).  The OVeNet code's VOC loader trains with the
random scale and crop alone (no short-side resize first), which is what is done here.

Testing.  The OVeNet repository's VOC loader (``lib_old/datasets/pascal_voc.py``; its ``lib/``
has no VOC dataset) validates on val.txt images resized to TEST.IMAGE_SIZE, 520x520, whatever
their aspect ratio (image bilinear, label nearest), so its scores are counted on 520x520 label
maps that are not the released ones.  Here VOC is evaluated as PASCAL-Context, a relabelling of
the same kind of images: the HRNet-OCR ``testval`` procedure (the ``ade20k`` protocol, short side
to TEST.BASE_SIZE, the multiple-of-8 padding cut off before the last resize:
``eval_crop_padding``), scored against the label files at their own size, as VOC results are
published.
"""
from .stored_labels import StoredLabelDataset, stored_value_tables, voc_colours

__all__ = ["PascalVOC", "PascalVOC20", "CLASS_NAMES"]

CLASS_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


class PascalVOC(StoredLabelDataset):
    """PASCAL VOC 2012, 21 classes (DATASET.NUM_CLASSES 21); items are named by the image id,
    e.g. ``2007_000032``.  Arguments are those of :class:`BaseDataset`.
    """

    folder = "pascal_voc"
    image_suffix = ".jpg"
    class_names = CLASS_NAMES
    label_to_train_id, train_id_to_label = stored_value_tables(range(21))
    palette = voc_colours(range(21))
    eval_protocol = "ade20k"
    # Evaluated as PASCAL-Context (see the module's docstring).
    eval_crop_padding = True


class PascalVOC20(PascalVOC):
    """PASCAL VOC 2012 object classes only (DATASET.NUM_CLASSES 20): the background is ignored."""

    class_names = CLASS_NAMES[1:]
    label_to_train_id, train_id_to_label = stored_value_tables(range(1, 21))
    void_values = (0,)  # the background
    palette = voc_colours(range(1, 21))
