import os, sys  # noqa: E401, I001  (repository root on sys.path for tools/x.py and -m tools.x)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
__doc__ = """Write ``<out>/<dataset>/{train,val,trainval,test}.lst`` from the dataset folders.

    python tools/make_lists.py --dataset cityscapes --root data
    python tools/make_lists.py --dataset acdc --root data --conditions fog night
    python tools/make_lists.py --dataset ade20k --root data
    python tools/make_lists.py --dataset pascal_ctx --root data     (also cocostuff, lip, pascal_voc)
    python tools/make_lists.py --dataset mydata --root data \
        --images 'images/{split}/*.jpg' --labels 'masks/{split}/*.png' [--image-only test]

Paths in the lists are relative to ``<root>/<dataset>/``; the folders each built-in dataset is
read from, how images and labels pair up, and what is an error are in
``lib/datasets/lists.py``.  Each list written, and each split's count against the release's, is
printed; a split without a folder is skipped with a note.

A dataset of your own is listed from two glob patterns relative to ``<root>/<dataset>/``, with
``{split}`` standing for each of ``--splits`` (``**`` spans folders); the ``--image-only``
splits are listed without labels.
"""
import argparse

from lib.datasets import SPLITS
from lib.datasets.acdc import CONDITIONS
from lib.datasets.lists import DATASETS, make_glob_lists, make_lists
from lib.utils.logger import log_messages_to_stdout
from tools.cli import run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True,
                        help=f"one of {', '.join(DATASETS)}, or the folder name of a dataset of "
                             f"your own (with --images and --labels)")
    parser.add_argument("--root", default="data", help="folder holding <dataset>/ (DATASET.ROOT)")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS,
                        help="ACDC conditions to list (default: all four)")
    parser.add_argument("--out", help="list folder (default: <root>/list)")
    own = parser.add_argument_group("a dataset of your own")
    own.add_argument("--images", help="glob of the images under <root>/<dataset>/, with {split}")
    own.add_argument("--labels", help="glob of the label PNGs under <root>/<dataset>/, with {split}")
    own.add_argument("--splits", nargs="+", default=list(SPLITS), help="splits to list")
    own.add_argument("--image-only", nargs="+", default=[], metavar="SPLIT",
                     help="splits listed without labels (e.g. test)")
    args = parser.parse_args(argv)
    if args.conditions and (args.images or args.labels):
        parser.error("--conditions applies to acdc, not to --images / --labels lists")
    log_messages_to_stdout()
    if args.images is None and args.labels is None:
        make_lists(args.root, args.dataset, args.conditions, args.out)
    else:
        make_glob_lists(args.root, args.dataset, args.images, args.labels, args.splits,
                        args.image_only, args.out)


if __name__ == "__main__":
    sys.exit(run(main))
