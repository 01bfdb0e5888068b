import os, sys  # noqa: E401, I001  (repository root on sys.path for tools/x.py and -m tools.x)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
__doc__ = """Place the unpacked LIP archives in <root>/lip/, as the id lists name them.

    python tools/convert_lip.py --src /datasets/LIP --root data

``--src`` (one or more folders) holds the unpacked TrainVal_images.zip and
TrainVal_parsing_annotations.zip, at any depth up to four folders down: train_images/,
val_images/, train_id.txt, val_id.txt, train_segmentations/ and val_segmentations/ are found by
name.  Writes ``TrainVal_images/{train,val}_images/<id>.jpg`` and
``TrainVal_parsing_annotations/{train,val}_segmentations/<id>.png`` for the ids of the two lists
(symbolic links, or copies with --copy); a release unpacked in that layout already is left as it
is.  Then write the lists with ``python tools/make_lists.py --dataset lip --root data``.
"""
import argparse

from lib.datasets.conversions.lip import convert_lip
from tools.cli import run
from tools.convert_args import add_output_arguments, output_of


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, nargs="+",
                        help="the folder(s) the two archives were unpacked in")
    add_output_arguments(parser, "lip", what="files")
    args = parser.parse_args(argv)
    out, mode = output_of(args, "lip")
    counts = convert_lip(args.src, out, mode, sys.stderr.isatty())
    for split, n in counts.items():
        print(f"{out}: {split}: {n} images and annotations")


if __name__ == "__main__":
    sys.exit(run(main))
