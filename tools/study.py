"""Train and evaluate experiment files x variants x seeds, then summarise them with paired
differences (mean +- std per variant, 95 % intervals of the per-seed differences).

    python tools/study.py --cfg A.yaml --cfg B.yaml --seeds 0 1 2 --out DIR \\
        [--variant NAME KEY VALUE ...] [--test KEY VALUE ...] [--against NAME ...] [--jobs N] \\
        [-- KEY VALUE ...]
    python tools/study.py ... --summary-only        (summarise the runs done so far, train
                                                     nothing)
    python tools/study.py ... --print-commands      (one train + test line per run, for a
                                                     scheduler; then run the study again to
                                                     summarise)

Each --cfg is a variant named by what tells its file name apart from the others' ("baseline",
"offset"); each --variant NAME KEY VALUE ... is one more variant of the --cfg before it, with
those overrides.  Overrides after `--` (or before the first option) apply to every run, before
the variant's own.  --test overrides only the evaluation (default: the config's TEST section,
e.g. --test TEST.SCALE_LIST 0.5,0.75,1.0,1.25,1.5,1.75 TEST.FLIP_TEST True).  Seeds set
TRAIN.SEED.  Differences are paired by seed against the first variant, or against each variant
that --against names.  Every run trains into DIR/runs/<variant>/seed<k>; a study started again skips
finished runs and resumes the others.  Writes DIR/study.json, DIR/study.md and the figures.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import logging
import shlex

from lib.engine.study import (
    StudyScripts,
    Variant,
    plan_study,
    run_study,
    summarise_study,
)
from lib.evaluation.comparison import short_labels
from tools.cli import run

TOOLS = os.path.dirname(os.path.abspath(__file__))


class _InOrder(argparse.Action):
    """Keeps --cfg and --variant in the order given, so that a variant belongs to its --cfg."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.entries = [*(getattr(namespace, "entries", None) or []),
                             (self.dest, values)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--cfg", action=_InOrder, required=True, help="experiment YAML file")
    parser.add_argument("--variant", action=_InOrder, nargs="+", metavar="NAME KEY VALUE",
                        help="a variant of the --cfg before it: NAME, then overrides")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="TRAIN.SEED values")
    parser.add_argument("--out", required=True, help="the study's folder")
    parser.add_argument("--test", nargs="+", default=[], metavar="KEY VALUE",
                        help="overrides of the evaluation only")
    parser.add_argument("--against", nargs="+", default=[], metavar="NAME",
                        help="variants to take the paired differences against (default: the "
                             "first)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument("--print-commands", action="store_true",
                        help="print one train + test command line per run and exit")
    parser.add_argument("--summary-only", action="store_true",
                        help="train nothing: summarise the runs that are done (e.g. of a study "
                             "still running elsewhere)")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of every run")
    args = parser.parse_intermixed_args(argv)
    args.variants = _variants(parser, args.entries)
    names = [v.name for v in args.variants]
    for name in args.against:
        if name not in names:
            parser.error(f"--against {name}: not a variant of this study ({', '.join(names)})")
    for name, pairs in (("--test", args.test), ("overrides", args.opts)):
        if len(pairs) % 2:
            parser.error(f"{name} must be KEY VALUE pairs, got {pairs}")
    return args


def _variants(parser, entries):
    files = [value for kind, value in entries if kind == "cfg"]
    if entries[0][0] != "cfg":
        parser.error("--variant must follow the --cfg it varies")
    labels = dict(zip(files, short_labels([os.path.splitext(os.path.basename(f))[0]
                                           for f in files]), strict=True))
    variants, cfg = [], None
    for kind, value in entries:
        if kind == "cfg":
            cfg = value
            variants.append(Variant(labels[cfg], cfg))
        else:
            name, *pairs = value
            if not pairs or len(pairs) % 2:
                parser.error(f"--variant {name}: give NAME and then KEY VALUE pairs")
            variants.append(Variant(name, cfg, tuple(pairs)))
    return variants


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    scripts = StudyScripts(sys.executable, os.path.join(TOOLS, "train.py"),
                           os.path.join(TOOLS, "test.py"))
    runs = plan_study(args.variants, args.seeds, args.out, args.opts, args.test)
    if args.print_commands:
        for run in runs:
            print(scripts.shell_line(run, args.test))
        return
    outcomes = [] if args.summary_only else run_study(runs, scripts, args.test, args.jobs)
    failed = [o for o in outcomes if o["status"] == "failed"]
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join(["python", "tools/study.py",
                          *(a for a in given if a != "--summary-only")])
    summarise_study(runs, args.out, command, failed, args.against)
    print(f"study written to {os.path.abspath(args.out)}: study.json, study.md")
    if failed:
        sys.exit(f"error: {len(failed)} of {len(runs)} runs failed; see study.md")


if __name__ == "__main__":
    sys.exit(run(main))
