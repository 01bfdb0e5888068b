"""COCO-Stuff (COCO-Stuff-10k): 171 classes, the reference's 182 -> 171 table, names, palette.

Layout under ``<DATASET.ROOT>/cocostuff/`` (the one of the HRNet-OCR lists, e.g.
``train/image/COCO_train2014_000000000077.jpg train/label/COCO_train2014_000000000077.png``)::

    train/image/<stem>.jpg    train/label/<stem>.png      (9,000 images)
    val/image/<stem>.jpg      val/label/<stem>.png        (1,000 images: the release's test list)

Labels are 8-bit PNGs of the release's values: 0 is unlabelled, 1..182 the COCO ids of the 91
thing and 91 stuff classes, of which 11 thing ids are never used.  The reference keeps the 171
used ones in id order (``RAW_VALUES``): value ``RAW_VALUES[k]`` is class k; 0, the 11 unused ids
and 255 are ignored, and values 183..254 are out of range (DATASET.OUT_OF_RANGE_LABELS).  Images
are JPEGs.  Evaluated with the HRNet-OCR ``testval`` procedure (the ``ade20k`` protocol, the
multiple-of-8 padding cut off before the last resize as the reference's items carry it:
``eval_crop_padding``); trained on the image resized so that its short side is TRAIN.BASE_SIZE
before the random scale and crop, as the reference does.
"""
from .ade20k import ShortSideFirst
from .stored_labels import StoredLabelDataset, stored_value_tables, voc_colours

__all__ = ["COCOStuff", "CLASS_NAMES", "RAW_VALUES", "UNUSED_IDS"]

# COCO ids with no class (street sign, hat, shoe, eye glasses, plate, mirror, window, desk, door,
# blender, hair brush): the reference's table skips them.
UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)

# The stored value of each of the 171 classes, in class-index order.
RAW_VALUES = tuple(v for v in range(1, 183) if v not in UNUSED_IDS)

# The 80 thing classes (values 1..90) and the 91 stuff classes (values 92..182), in class order.
CLASS_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage",
    "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds",
    "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff", "fence",
    "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower", "fog",
    "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill",
    "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud",
    "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform",
    "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
    "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone",
    "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood")


class COCOStuff(StoredLabelDataset):
    """COCO-Stuff, 171 classes; items are named by the image stem, e.g.
    ``COCO_train2014_000000000077``.  Arguments are those of :class:`BaseDataset`.
    """

    folder = "cocostuff"
    image_suffix = ".jpg"
    class_names = CLASS_NAMES
    label_to_train_id, train_id_to_label = stored_value_tables(RAW_VALUES)
    void_values = (0, *UNUSED_IDS)  # unlabelled, and the ids of no class
    palette = voc_colours(RAW_VALUES)
    eval_protocol = "ade20k"
    # HRNet-OCR's testval items carry their border_padding, cut off before the last resize.
    eval_crop_padding = True
    before_transform = ShortSideFirst
