import os, sys  # noqa: E401, I001  (repository root on sys.path for tools/x.py and -m tools.x)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
__doc__ = """Add the SBD labels to PASCAL VOC 2012: SegmentationClassAug/ and train_aug.txt.

    python tools/convert_voc_sbd.py --voc data/pascal_voc/VOCdevkit/VOC2012 \\
        --sbd /datasets/benchmark_RELEASE/dataset

``--voc`` is the VOC2012 folder of VOCtrainval_11-May-2012.tar, ``--sbd`` the dataset/ folder of
SBD's benchmark.tgz.  Writes ``<voc>/SegmentationClassAug/<id>.png`` (single-channel class values,
VOC's own annotation where VOC has one, SBD's otherwise) for the 10,582 ids of train_aug (SBD
train + SBD val + VOC train, less VOC val) and the 1,449 of VOC val, and
``<voc>/ImageSets/Segmentation/train_aug.txt``.  Then write the lists with
``python tools/make_lists.py --dataset pascal_voc --root data``.
"""
import argparse

from lib.datasets.conversions.voc_sbd import convert_voc_sbd
from tools.cli import run

# The size of the augmented training set made from the full releases.
_TRAIN_AUG = 10582


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voc", default="data/pascal_voc/VOCdevkit/VOC2012",
                        help="the VOC2012 folder (JPEGImages, SegmentationClass, ImageSets)")
    parser.add_argument("--sbd", required=True,
                        help="SBD's benchmark_RELEASE/dataset folder (cls/, train.txt, val.txt)")
    args = parser.parse_args(argv)
    counts = convert_voc_sbd(args.voc, args.sbd, sys.stderr.isatty())
    note = "" if counts["train_aug"] == _TRAIN_AUG else "note: "
    print(f"{note}train_aug: {counts['train_aug']} ids (the full releases give {_TRAIN_AUG}); "
          f"val: {counts['val']}")
    print(f"{args.voc}/SegmentationClassAug: {counts['from VOC']} labels from VOC, "
          f"{counts['from SBD']} from SBD")


if __name__ == "__main__":
    sys.exit(run(main))
