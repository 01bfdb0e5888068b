"""Distributed helpers that also work with no process group (world size 1 is the ordinary case).

Collectives say so in their docstring: every rank must call them.
"""
import os

import torch
import torch.distributed as dist


def launcher_env():
    """(rank, local_rank, world_size) from the variables torchrun / torch.distributed.launch set."""
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    return rank, local_rank, world_size


def init_distributed(device_type, timeout_minutes=30):
    """Join the process group the launcher describes; nccl on CUDA, gloo otherwise.

    Returns the world size.  With WORLD_SIZE 1 (or unset) no group is created.
    """
    import datetime

    _, _, world_size = launcher_env()
    if world_size > 1 and not is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return world_size


def is_initialized():
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_initialized() else 0


def get_world_size():
    return dist.get_world_size() if is_initialized() else 1


def is_main_process():
    return get_rank() == 0


def barrier():
    """Collective: wait for every rank."""
    if is_initialized():
        dist.barrier()


def all_reduce_sum(tensor):
    """Collective: sum ``tensor`` over ranks in place and return it (unchanged on one process)."""
    if is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_rank(flag, device):
    """Collective: True when ``flag`` is true on at least one rank."""
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=device)).item())


def all_equal(values):
    """Collective: True when the tensor ``values`` is the same on every rank."""
    if not is_initialized():
        return True
    high, low = values.clone(), values.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return bool(torch.equal(high, low))


def shard_indices(num_items, rank=None, world_size=None):
    """Indices of rank ``rank`` when ``num_items`` are split exactly (each item on one rank only).

    Contiguous blocks whose sizes differ by at most one, in order, so that concatenating the
    ranks' shards gives 0..num_items-1 once.
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    base, extra = divmod(num_items, world_size)
    start = rank * base + min(rank, extra)
    return list(range(start, start + base + (1 if rank < extra else 0)))


def cleanup():
    if is_initialized():
        dist.destroy_process_group()
