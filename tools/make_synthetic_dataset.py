import os, sys  # noqa: E401, I001  (repository root on sys.path for tools/x.py and -m tools.x)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
__doc__ = """Write a small synthetic dataset in the layout of a built-in dataset, and its lists.

    python tools/make_synthetic_dataset.py --root /tmp/synth --dataset cityscapes \\
        --train 40 --val 10 --test 10 --size 256 512 --seed 0
    python tools/make_synthetic_dataset.py --root /tmp/synth --dataset ade20k \\
        --train 40 --val 10 --size 128 160 --seed 0

Datasets: cityscapes and acdc (street scenes in Cityscapes label ids, ACDC spread over fog,
night, rain and snow; test images without labels), ade20k (rooms and streets, raw ADE20K
values), pascal_ctx, cocostuff and pascal_voc (outdoor views and rooms of things and stuff in
each one's stored values), lip (one person each, the 20 LIP classes); each in its release
layout and file naming (see lib/datasets/synthetic).  Regions are textured and every instance
has its own colour jitter, so colour alone does not give the class.  The datasets other than
cityscapes and acdc have train and val splits only.

The same seed gives byte-identical files.
"""
import argparse
import time

from lib.datasets.lists import make_lists
from lib.datasets.synthetic import LAYOUTS, write_synthetic_dataset
from lib.utils.logger import log_messages_to_stdout
from tools.cli import run


def make_synthetic_dataset(root, dataset, counts, size, seed):
    """Write ``counts`` ({split: n}) scenes of ``size`` (H, W) under ``<root>/<dataset>/`` and the
    lists under ``<root>/list/<dataset>/``; returns the counts of the lists written."""
    write_synthetic_dataset(root, dataset, counts, size, seed)
    return make_lists(root, dataset)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="output folder (use it as DATASET.ROOT)")
    parser.add_argument("--dataset", required=True, choices=list(LAYOUTS))
    parser.add_argument("--train", type=int, default=40, help="training images")
    parser.add_argument("--val", type=int, default=10, help="validation images")
    parser.add_argument("--test", type=int, default=None,
                        help="test images, no labels (default 10; 0 for the datasets without a "
                             "test split)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.test is None:
        args.test = 10 if "test" in LAYOUTS[args.dataset].splits else 0
    log_messages_to_stdout()
    start = time.perf_counter()
    counts = {"train": args.train, "val": args.val, "test": args.test}
    make_synthetic_dataset(args.root, args.dataset, {k: v for k, v in counts.items() if v > 0},
                           tuple(args.size), args.seed)
    print(f"wrote {sum(counts.values())} {args.size[0]}x{args.size[1]} images in "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    sys.exit(run(main))
