import os, sys  # noqa: E401, I001  (repository root on sys.path for tools/x.py and -m tools.x)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
__doc__ = """Convert COCO-Stuff (the 10k or the 164k release) into <root>/cocostuff/.

    python tools/convert_coco_stuff.py --release 10k --src /datasets/cocostuff-10k --root data
    python tools/convert_coco_stuff.py --release 164k --src /datasets/cocostuff --root data

10k: ``--src`` holds the unpacked cocostuff-10k-v1.1.zip (images/, annotations/*.mat,
imageLists/{train,test}.txt); the test list becomes our val split.  164k: ``--src`` holds
images/{train2017,val2017}/ (COCO 2017) and annotations/{train2017,val2017}/ (the unpacked
stuffthingmaps_trainval2017.zip).  Writes ``{train,val}/image/<name>.jpg`` (symbolic links to the
release's images, or copies with --copy) and ``{train,val}/label/<name>.png`` with 0 for
unlabelled and the COCO ids 1..182.  Then write the lists with
``python tools/make_lists.py --dataset cocostuff --root data``.
"""
import argparse

from lib.datasets.conversions.coco_stuff import RELEASES, convert_coco_stuff
from tools.cli import run
from tools.convert_args import add_output_arguments, output_of


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", required=True, choices=RELEASES)
    parser.add_argument("--src", required=True, help="the folder the release was unpacked in")
    add_output_arguments(parser, "cocostuff")
    args = parser.parse_args(argv)
    out, mode = output_of(args, "cocostuff")
    counts = convert_coco_stuff(args.release, args.src, out, mode, sys.stderr.isatty())
    for split, n in counts.items():
        print(f"{out}/{split}: {n} images written")


if __name__ == "__main__":
    sys.exit(run(main))
