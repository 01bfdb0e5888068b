"""Train a segmentation network.

    python tools/train.py --cfg experiments/cityscapes/<name>.yaml [KEY VALUE ...]
    python -m torch.distributed.launch --nproc_per_node=4 tools/train.py --cfg ...
    torchrun --nproc_per_node=4 tools/train.py --cfg ...
    srun python tools/train.py --cfg ...        (one task per GPU, see tools/slurm/)

Each run writes into a new folder ``OUTPUT_DIR/<dataset>/<config name>/<date-time>[_<overrides>]``
(a ``latest`` link beside it); ``RUN_DIR <folder>`` names the folder exactly.  SIGTERM (a
scheduler's stop) ends the run at the next check with a checkpoint; AUTO_RESUME True (or
TRAIN.RESUME True) continues RUN_DIR, else the SLURM job's own run, else the newest run of the
config with the same settings.  Under ``torchrun --max-restarts=N`` a rank that dies restarts the
group, which resumes from the last checkpoint when AUTO_RESUME is on.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib.engine.build import build_trainer
from lib.engine.launch import launched, stop_on_sigterm
from tools.cli import run
from tools.launch_args import launcher_parser


def parse_args(argv=None):
    return launcher_parser("Train a segmentation network.").parse_intermixed_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with launched(args.cfg, args.opts, args.local_rank) as (cfg, device, rank, world_size), \
            build_trainer(cfg, args.cfg, device, rank, world_size) as trainer, \
            stop_on_sigterm(trainer.request_stop):
        trainer.fit()


if __name__ == "__main__":
    sys.exit(run(main))
