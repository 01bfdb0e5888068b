"""Distributed helpers that also work with no process group (world size 1 is the ordinary case).

The process group comes from the launcher's environment: torchrun / torch.distributed.launch, or
``srun`` (SLURM's variables; see ``launcher_env`` and ``rendezvous_env``).  Collectives say so in
their docstring: every rank must call them.
"""
import datetime
import os
import re

import torch
import torch.distributed as dist

from .compat import abort_process_group

_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
# srun sets these for every task of a job step; SLURM_STEP_NUM_TASKS is the step's size.  The
# batch script itself runs outside any step: there SLURM_NTASKS is the allocation's task count, and
# taking it as the world size would wait for tasks that never start.
_SLURM_VARS = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_NUM_TASKS")
# Used when neither MASTER_PORT nor SLURM_JOB_ID is set; torchrun's default.
DEFAULT_PORT = 29500


def launcher_env(environ=None):
    """(rank, local_rank, world_size) of this process.

    From RANK / LOCAL_RANK / WORLD_SIZE (torchrun, torch.distributed.launch) when WORLD_SIZE is
    set, else inside an ``srun`` step from SLURM_PROCID / SLURM_LOCALID and the step's task count
    SLURM_STEP_NUM_TASKS (one task per GPU; equal to SLURM_NTASKS for a plain ``srun``), else
    (0, 0, 1): also in a batch script outside ``srun``, which is one process whatever
    SLURM_NTASKS says.  ``environ`` defaults to ``os.environ``.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ and "SLURM_STEP_NUM_TASKS" in environ:
        names = _SLURM_VARS
    else:
        names = _TORCHRUN_VARS
    return tuple(_int_var(environ, name, default) for name, default in zip(names, (0, 0, 1)))


def _int_var(environ, name, default):
    value = environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not a whole number") from None


def expand_nodelist(nodelist):
    """Host names of a SLURM node list in its compressed form, in order.

    ``"node[01-03,07]"`` -> node01, node02, node03, node07 (zero padding kept);
    ``"a,b"`` -> a, b; ``"gpu-[1-2]"`` -> gpu-1, gpu-2; several bracket groups in one name give
    every combination (``"r[1-2]n[1-2]"`` -> r1n1, r1n2, r2n1, r2n2), as ``scontrol show
    hostnames`` does.
    """
    hosts = []
    for name in _split_outside_brackets(nodelist.strip()):
        expanded = [""]
        for part in re.finditer(r"([^\[]*)(?:\[([^\]]*)\])?", name):
            literal, ranges = part.groups()
            choices = [""] if ranges is None else _expand_ranges(ranges, nodelist)
            expanded = [head + literal + choice for head in expanded for choice in choices]
        hosts.extend(expanded)
    if not hosts:
        raise ValueError(f"SLURM node list {nodelist!r} names no host")
    return hosts


def _split_outside_brackets(nodelist):
    names, depth, start = [], 0, 0
    for i, char in enumerate(nodelist):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth not in (0, 1):
            raise ValueError(f"SLURM node list {nodelist!r} has unbalanced brackets")
        if char == "," and depth == 0:
            names.append(nodelist[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"SLURM node list {nodelist!r} has unbalanced brackets")
    names.append(nodelist[start:])
    return [name for name in names if name]


def _expand_ranges(ranges, nodelist):
    """``"01-03,7"`` -> ["01", "02", "03", "7"]: each range keeps the width of its first bound."""
    out = []
    for part in ranges.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if match is None:
            raise ValueError(f"SLURM node list {nodelist!r}: cannot read the range {part!r}")
        first, last = match.group(1), match.group(2) or match.group(1)
        if int(last) < int(first):
            raise ValueError(f"SLURM node list {nodelist!r}: range {part!r} runs backwards")
        out.extend(str(i).zfill(len(first)) for i in range(int(first), int(last) + 1))
    return out


def slurm_port(job_id):
    """Master port of SLURM job ``job_id``: 10000 + job_id % 20000.

    Jobs sharing a node get different ports unless their ids differ by a multiple of 20000, and
    the ports stay below Linux's ephemeral range (32768-60999), from which outgoing connections
    take theirs.
    """
    return 10000 + int(job_id) % 20000


def rendezvous_env(environ=None):
    """(MASTER_ADDR, MASTER_PORT) of the process group: the environment's, else under SLURM the
    first host of SLURM_STEP_NODELIST / SLURM_NODELIST and ``slurm_port(SLURM_JOB_ID)``."""
    environ = os.environ if environ is None else environ
    addr = environ.get("MASTER_ADDR")
    if not addr:
        nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_NODELIST")
        if not nodelist:
            raise RuntimeError("MASTER_ADDR is not set and there is no SLURM_NODELIST to take "
                               "the first host from: set MASTER_ADDR or start with torchrun")
        addr = expand_nodelist(nodelist)[0]
    if environ.get("MASTER_PORT"):
        port = _int_var(environ, "MASTER_PORT", DEFAULT_PORT)
    elif environ.get("SLURM_JOB_ID"):
        port = slurm_port(_int_var(environ, "SLURM_JOB_ID", 0))
    else:
        port = DEFAULT_PORT
    return addr, port


def init_distributed(device_type, timeout_minutes=30):
    """Join the process group the launcher describes; nccl on CUDA, gloo otherwise.

    Returns the world size.  With WORLD_SIZE 1 (or unset) no group is created.  Under ``srun``
    (no torchrun variables) the ranks come from SLURM (``launcher_env``) and the rendezvous from
    ``rendezvous_env``; RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are then put in
    ``os.environ``, so that this process and its children see what torchrun would have set.
    """
    rank, local_rank, world_size = launcher_env()
    if world_size > 1 and not is_initialized():
        addr, port = rendezvous_env()
        for name, value in (("RANK", rank), ("LOCAL_RANK", local_rank),
                            ("WORLD_SIZE", world_size), ("MASTER_ADDR", addr),
                            ("MASTER_PORT", port)):
            os.environ.setdefault(name, str(value))
        backend = "nccl" if device_type == "cuda" else "gloo"
        timeout = datetime.timedelta(minutes=timeout_minutes)
        dist.init_process_group(backend, store=attempt_store(rank, world_size, timeout),
                                rank=rank, world_size=world_size, timeout=timeout)
    return world_size


def attempt_store(rank, world_size, timeout):
    """The rendezvous store of ``env://`` (MASTER_ADDR, MASTER_PORT), its keys under a prefix of
    this launch attempt (TORCHELASTIC_RESTART_COUNT, 0 without torchrun).

    torchrun's agent serves that store and keeps it across the restarts of ``--max-restarts``,
    and the torch installed here no longer prefixes the keys of each attempt: the addresses the
    ranks of the failed attempt published are still there, and a new rank that reads its peer's
    key before the peer has written it again connects to a process that is gone ("Gloo
    connectFullMesh failed ... Connection refused", or a wait until the timeout).
    """
    store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=world_size,
                                       timeout=timeout))
    return dist.PrefixStore(f"attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def is_initialized():
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_initialized() else 0


def get_world_size():
    return dist.get_world_size() if is_initialized() else 1


def all_reduce_sum(tensor):
    """Collective: sum ``tensor`` over ranks in place and return it (unchanged on one process)."""
    if is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_rank(flag, device):
    """Collective: True when ``flag`` is true on at least one rank."""
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=device)).item())


def on_rank_0(action, device, failure):
    """Collective: ``action()`` on rank 0 only; when it raises, every rank raises, so that none
    is left waiting in the next collective for a rank 0 that stopped.  Rank 0 re-raises its own
    error; the others raise ``failure`` (an exception saying where to look)."""
    error = None
    if get_rank() == 0:
        try:
            action()
        except Exception as e:  # re-raised below, on every rank
            error = e
    if any_rank(error is not None, device):
        raise error or failure


def broadcast_from_rank_0(value, device):
    """Collective: rank 0's ``value`` (any picklable object) on every rank."""
    if not is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]


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


def abort():
    """Leave the process group at once, after an error on this rank: the other ranks may be
    waiting in a collective this rank will never join; tearing down the group (rather than
    waiting in ``destroy_process_group``) lets this process exit, and its exit ends their wait
    with an error (gloo at once, NCCL when its watchdog or the launcher ends them)."""
    if is_initialized():
        abort_process_group()
