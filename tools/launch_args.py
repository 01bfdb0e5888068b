"""The command line that tools/train.py and tools/test.py share: --cfg, the launchers'
--local-rank, and KEY VALUE overrides."""
import argparse


def launcher_parser(description):
    """An ``ArgumentParser`` with ``--cfg``, ``--local_rank`` / ``--local-rank`` and ``opts``;
    parse with ``parse_intermixed_args`` so that options may follow the overrides."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    # torch.distributed.launch passes --local-rank (newer) or --local_rank (older); torchrun
    # sets LOCAL_RANK, which is what is used.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser
