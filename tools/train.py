"""Train a segmentation network.

    python tools/train.py --cfg experiments/cityscapes/<name>.yaml [KEY VALUE ...]
    python -m torch.distributed.launch --nproc_per_node=4 tools/train.py --cfg ...
    torchrun --nproc_per_node=4 tools/train.py --cfg ...
    srun python tools/train.py --cfg ...        (one task per GPU, see tools/slurm/)

SIGTERM (a scheduler's stop) ends the run at the next check with a checkpoint; resume it with
AUTO_RESUME True (or TRAIN.RESUME True).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import signal

from lib.engine.build import build_trainer
from lib.engine.launch import init_process
from lib.utils import distributed as dist


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a segmentation network.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    # torch.distributed.launch passes --local-rank (newer) or --local_rank (older); torchrun
    # sets LOCAL_RANK, which is what is used.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg, device, rank, world_size = init_process(args.cfg, args.opts, args.local_rank)
    try:
        with build_trainer(cfg, args.cfg, device, rank, world_size) as trainer:
            signal.signal(signal.SIGTERM, lambda *_: trainer.request_stop())
            trainer.fit()
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main()
