"""Evaluate a trained network: multi-scale and flip testing, metrics, prediction files.

    python tools/test.py --cfg <yaml> TEST.MODEL_FILE <pth> \\
        TEST.SCALE_LIST 0.5,0.75,1.0,1.25,1.5,1.75 TEST.FLIP_TEST True
    python tools/test.py --cfg <yaml> --save-pred DATASET.TEST_SET list/cityscapes/test.lst ...
    torchrun --nproc_per_node=4 tools/test.py --cfg <yaml> ...
    srun python tools/test.py --cfg <yaml> ...        (one task per GPU, see tools/slurm/)

A list without labels (a test split) gives no metrics: pass --save-pred to write predictions.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse

from lib.engine.launch import init_process
from lib.engine.tester import run_test
from lib.utils import distributed as dist


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate a segmentation network.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--save-pred", "--save_pred", action="store_true",
                        help="write label-id and colour PNGs of every image (also TEST.SAVE_PRED)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg, device, rank, _ = init_process(args.cfg, args.opts, args.local_rank)
    try:
        run_test(cfg, args.cfg, device, rank, save_pred=args.save_pred)
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main()
