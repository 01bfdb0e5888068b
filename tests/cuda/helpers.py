"""What the CUDA tests share besides their fixtures: comparisons of two computations and the
count of host reads."""
import contextlib
import warnings

import torch

from tests.host_reads import count_host_reads


def relative_difference(got, expected):
    """The largest over the tensors of ``||got - expected|| / ||expected||``, where a tensor
    whose norm is below 1e-3 of the largest counts that largest norm /1000 instead (the
    gradient of a bias before a batch norm is zero up to rounding)."""
    norms = [e.double().norm() for e in expected]
    floor = 1e-3 * max(norms)
    return max(float((g.double() - e.double()).norm() / max(n, floor))
               for g, e, n in zip(got, expected, norms, strict=True))


def gradients(network):
    return [p.grad for p in network.parameters() if p.grad is not None]


def batch_norm_statistics(network):
    return [b for n, b in network.named_buffers() if n.endswith(("running_mean", "running_var"))]


@contextlib.contextmanager
def host_reads(target, monkeypatch):
    """``with host_reads(target, monkeypatch) as reads:`` ``reads`` lists every host
    synchronisation inside: on CUDA, each synchronising call torch.cuda.set_sync_debug_mode
    warns of; on the CPU, each Tensor method that hands a value to Python."""
    reads = []
    if target.device.type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield reads
            finally:
                torch.cuda.set_sync_debug_mode("default")
        reads += [str(w.message) for w in caught if "synchroniz" in str(w.message)]
        return
    calls = count_host_reads(monkeypatch)
    try:
        yield reads
    finally:
        monkeypatch.undo()
        reads += [name for name, _ in calls]


def classes_differ_at_near_ties(got, expected):
    """Check that the class maps of the scores ``got`` and ``expected`` (N x K x H x W, on the
    CPU) differ only at pixels whose two best classes are closer in ``expected`` than twice
    the largest difference of their scores there; returns how many pixels differ."""
    top2 = expected.topk(2, dim=1).values
    gap = top2[:, 0] - top2[:, 1]
    error = (got - expected).abs().amax(dim=1)
    differ = got.argmax(dim=1) != expected.argmax(dim=1)
    assert not (differ & (gap > 2 * error)).any(), "a class changed where the scores are far apart"
    return int(differ.sum())
