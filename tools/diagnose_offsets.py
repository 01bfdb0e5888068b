"""Look inside an offset network: where its seeds point, how much seed gathering could fix at
best, and the gradient each loss term sends into the trunk shared with the class head.

    python tools/diagnose_offsets.py --cfg <yaml> --weights A.pth [B.pth ...] [--init] \\
        [--batches 4] --out DIR [KEY VALUE ...]
    python tools/diagnose_offsets.py --history RUN_FOLDER --out DIR


--history draws DIR/history.png from the validations a training run recorded
(RUN_FOLDER/validation/iter<k>.json; TRAIN.EVAL_INTERVAL 1 records every epoch): each prediction's
mIoU, the fusion split and the histograms of offset length and confidence over training.
--init adds the network as initialised (TRAIN.SEED, no pretrained file).  Writes
DIR/diagnostics.json and prints a table; the measures are defined in
lib/evaluation/offset_diagnostics.py.  For a baseline (no offsets) only the "fixable" oracle of
its S_i is measured.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import logging

from lib.config import load_cfg
from lib.engine.diagnose import diagnose, diagnostics_table, read_validation_records
from lib.engine.launch import configure_threads
from lib.evaluation.figures import save_figure, training_history_figure
from lib.utils.atomic import write_json
from lib.utils.device import select_device
from tools.cli import run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg", help="experiment YAML file")
    parser.add_argument("--history", help="a run folder: draw its recorded validations")
    parser.add_argument("--weights", nargs="*", default=[], help="weight files to look at")
    parser.add_argument("--init", action="store_true", help="also the initialised network")
    parser.add_argument("--batches", type=int, default=4,
                        help="training batches for the gradient measures (0 = none)")
    parser.add_argument("--out", required=True, help="folder for diagnostics.json")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    args = parser.parse_intermixed_args(argv)
    if args.history is None and (args.cfg is None or not (args.weights or args.init)):
        parser.error("give --history RUN_FOLDER, or --cfg with --weights, --init or both")
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.history is not None:
        path = os.path.join(args.out, "history.png")
        save_figure(training_history_figure(read_validation_records(args.history)), path)
        print(f"written to {path}")
        return
    cfg = load_cfg(args.cfg, args.opts)
    configure_threads(0, 1)
    device = select_device()
    results = [diagnose(cfg, weights, device, args.batches)
               for weights in ([""] if args.init else []) + args.weights]
    path = os.path.join(args.out, "diagnostics.json")
    write_json(path, {"cfg": args.cfg, "opts": args.opts, "results": results}, indent=1)
    print(diagnostics_table(results))
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(run(main))
