"""Two or more evaluations side by side, e.g. HRNetV2 against the offset network.

    python tools/compare.py RESULTS.json RESULTS.json [...] --out DIR [--labels A B ...]

Writes into DIR: iou.png (per-class IoU of each run), trimap.png (trimap curves of each run's
final prediction and their differences from the first run, when the runs have boundary figures) and
headline.md (the headline figures of every run, in %, with each run's difference from the first
in points); the table is also printed.

Labels name the runs in the table, the legends and the differences.  By default a run is its
results file's folder (tools/test.py names it after the configuration) less the words all the
folders share: output/cityscapes/seg_hrnet_tiny_baseline_64x128_sgd_lr2e-2_bs_8_epoch40 and
.../seg_hrnet_tiny_offset_64x128_sgd_lr2e-2_bs_8_epoch40 become "baseline" and "offset".
--labels A B ... gives one label per results file instead, in the same order, e.g.
--labels HRNetV2 "offset network".
A file that cannot be read or is not a results.json of tools/test.py is named in the error
(exit status 2, as for bad arguments); runs that score different classes are compared with a
warning.  results.json files of earlier releases (which called the predictions heads, or held the
final figures on top) are read too.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import json

from lib.evaluation.comparison import (
    ResultsError,
    class_set_mismatch,
    comparison_figures,
    headline_table,
    read_run,
    run_labels,
)
from lib.evaluation.figures import save_figure
from lib.utils.atomic import write_text
from tools.cli import run


def build_parser():
    parser = argparse.ArgumentParser(description="Compare evaluations (results.json files).")
    parser.add_argument("results", nargs="+", help="results.json files, two or more")
    parser.add_argument("--out", required=True, help="folder for the figures and the table")
    parser.add_argument("--labels", nargs="+",
                        help="one name per results file, in their order (default: each file's "
                             "folder less the words all the folders share)")
    return parser


def parse_args(parser, argv=None):
    args = parser.parse_args(argv)
    if len(args.results) < 2:
        parser.error("give two or more results.json files to compare")
    if args.labels is not None and len(args.labels) != len(args.results):
        parser.error(f"{len(args.labels)} labels for {len(args.results)} results files")
    return args


def read_results(path):
    """The checked run of the results.json at ``path`` (a file of an older layout is read in
    the current one); ResultsError names what is wrong."""
    try:
        with open(path) as f:
            content = json.load(f)
    except OSError as e:
        raise ResultsError(f"cannot read {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path} is not a JSON file: {e}") from None
    return read_run(content, path)


def main(argv=None):
    parser = build_parser()
    args = parse_args(parser, argv)
    labels = args.labels or run_labels(args.results)
    runs = {label: read_results(path) for label, path in zip(labels, args.results, strict=True)}
    warning = class_set_mismatch(runs)
    if warning:
        print(f"{parser.prog}: warning: {warning}", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    for name, figure in comparison_figures(runs).items():
        save_figure(figure, os.path.join(args.out, name))
    table = headline_table(runs)
    write_text(os.path.join(args.out, "headline.md"), table)
    print(table, end="")
    print(f"written to {os.path.abspath(args.out)}: "
          f"{', '.join(sorted(os.listdir(args.out)))}")


if __name__ == "__main__":
    sys.exit(run(main))
