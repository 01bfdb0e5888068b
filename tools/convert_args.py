"""The command line the dataset conversion tools share: --root and --copy, and what they mean."""
import os


def add_output_arguments(parser, folder, what="images"):
    """``--root`` (the converted dataset goes to ``<root>/<folder>/``, DATASET.ROOT) and
    ``--copy`` (copy ``what`` instead of linking them)."""
    parser.add_argument("--root", default="data",
                        help=f"writes <root>/{folder}/ (DATASET.ROOT)")
    parser.add_argument("--copy", action="store_true",
                        help=f"copy the {what} instead of linking them")


def output_of(args, folder):
    """``(<root>/<folder>, "copy" or "link")`` of parsed arguments."""
    return os.path.join(args.root, folder), "copy" if args.copy else "link"
