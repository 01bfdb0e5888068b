import os, sys  # noqa: E401, I001  (repository root on sys.path for tools/x.py and -m tools.x)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
__doc__ = """Convert PASCAL-Context (Detail API annotations) into <root>/pascal_ctx/.

    python tools/convert_pascal_context.py --json /datasets/VOCdevkit/VOC2010/trainval_merged.json \\
        --images /datasets/VOCdevkit/VOC2010/JPEGImages --root data

Reads ``trainval_merged.json`` (the PASCAL in Detail annotation file) and the VOC 2010 JPEG
images; writes ``{train,val}/image/<id>.jpg`` (symbolic links to the release's images, or copies
with --copy) and ``{train,val}/label/<id>.png`` (0 background, 1..59 the 59 classes in
alphabetical order; the same files serve DATASET.NUM_CLASSES 59 and 60).  No Detail API or
pycocotools is needed.  Then write the lists with
``python tools/make_lists.py --dataset pascal_ctx --root data``.
"""
import argparse

from lib.datasets.conversions.pascal_context import SPLITS, convert_pascal_context
from tools.cli import run
from tools.convert_args import add_output_arguments, output_of


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="the Detail annotation file "
                        "trainval_merged.json")
    parser.add_argument("--images", required=True, help="the VOC 2010 JPEGImages folder")
    add_output_arguments(parser, "pascal_ctx")
    args = parser.parse_args(argv)
    out, mode = output_of(args, "pascal_ctx")
    counts = convert_pascal_context(args.json, args.images, out, mode, sys.stderr.isatty())
    for phase, n in counts.items():
        done = "written" if phase in SPLITS else "not written (no labels)"
        print(f"{out}/{phase}: {n} images {done}")


if __name__ == "__main__":
    sys.exit(run(main))
