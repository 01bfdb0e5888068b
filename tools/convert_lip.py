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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, nargs="+",
                        help="the folder(s) the two archives were unpacked in")
    parser.add_argument("--root", default="data", help="writes <root>/lip/ (DATASET.ROOT)")
    parser.add_argument("--copy", action="store_true",
                        help="copy the files instead of linking them")
    args = parser.parse_args(argv)
    out = os.path.join(args.root, "lip")
    counts = convert_lip(args.src, out, "copy" if args.copy else "link", sys.stderr.isatty())
    for split, n in counts.items():
        print(f"{out}: {split}: {n} images and annotations")


if __name__ == "__main__":
    sys.exit(run(main))
