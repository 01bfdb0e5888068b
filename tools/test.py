"""Evaluate a trained network: multi-scale and flip testing, metrics, prediction files.

    python tools/test.py --cfg <yaml> TEST.MODEL_FILE <pth> \\
        TEST.SCALE_LIST 0.5,0.75,1.0,1.25,1.5,1.75 TEST.FLIP_TEST True
    python tools/test.py --cfg <yaml> --save-pred DATASET.TEST_SET list/cityscapes/test.lst ...
    torchrun --nproc_per_node=4 tools/test.py --cfg <yaml> ...
    srun python tools/test.py --cfg <yaml> ...        (one task per GPU, see tools/slurm/)

Without TEST.MODEL_FILE the final_state.pth of RUN_DIR, or of the config's latest run, is
evaluated.  Each evaluation writes into its own folder, ``<run>/eval/<weights>_<test list>_
<protocol>_s<scales>_<flip|noflip>/`` (``TEST.EVAL_DIR <folder>`` names it exactly).
A list without labels (a test split) gives no metrics: pass --save-pred to write predictions.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib.engine.launch import launched
from lib.engine.tester import run_test
from tools.cli import run
from tools.launch_args import launcher_parser


def parse_args(argv=None):
    parser = launcher_parser("Evaluate a segmentation network.")
    parser.add_argument("--save-pred", "--save_pred", action="store_true",
                        help="write label-id and colour PNGs of every image (also TEST.SAVE_PRED)")
    return parser.parse_intermixed_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with launched(args.cfg, args.opts, args.local_rank) as (cfg, device, rank, _):
        run_test(cfg, args.cfg, device, rank, save_pred=args.save_pred)


if __name__ == "__main__":
    sys.exit(run(main))
