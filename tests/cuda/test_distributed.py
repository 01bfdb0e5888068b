"""The multi-process parts on one device (NCCL on CUDA, gloo in the dry run), and a checkpoint
saved and resumed on the device."""
import pytest
import torch
import torch.distributed as dist

from lib.engine.checkpointer import Checkpointer
from lib.engine.step import train_step
from tests.cuda.helpers import relative_difference
from tests.helpers import free_port

pytestmark = pytest.mark.cuda


@pytest.fixture
def group_of_one(target):
    """A process group of this process alone: NCCL on CUDA (one GPU holds one NCCL rank),
    gloo on the CPU, as ``lib.utils.distributed.init_distributed`` chooses."""
    backend = "nccl" if target.device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    yield backend
    dist.destroy_process_group()


def step(parts, images, labels):
    return train_step(parts.model, parts.criterion, parts.optimizer, parts.scaler, images,
                      labels, parts.amp_dtype)


@pytest.mark.parametrize("network", ["offset", "ovenet_ocr"])
def test_ddp_trains_the_offset_path_alone_with_the_rest_frozen(target, group_of_one, network,
                                                               record_property):
    cfg = target.cfg(network, "MODEL.FREEZED_PAR", True)
    # world_size 2 asks the builder for the parts of several processes (SyncBatchNorm on CUDA,
    # DDP); the group has one, as one device allows.
    parts = target.parts(cfg, world_size=2)
    assert isinstance(parts.model, torch.nn.parallel.DistributedDataParallel)
    sync_bns = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in parts.network.modules())
    plain_bns = sum(type(m) is torch.nn.BatchNorm2d for m in parts.network.modules())
    record_property("backend, world size", f"{group_of_one}, {dist.get_world_size()}")
    record_property("SyncBatchNorm modules", sync_bns)
    if target.device.type == "cuda":
        assert sync_bns > 0 and plain_bns == 0
    else:
        assert sync_bns == 0  # SyncBatchNorm runs on CUDA only
    def frozen_state():
        return [t for m in parts.network.shared_modules() for t in m.state_dict().values()]

    frozen = [t.clone() for t in frozen_state()]
    trainable = [p.detach().clone() for p in parts.network.parameters() if p.requires_grad]
    assert trainable and len(trainable) < sum(1 for _ in parts.network.parameters())
    images, labels = target.batch(cfg)
    for _ in range(3):  # DDP raises in the second step when a parameter had no gradient
        out = step(parts, images, labels)
        assert torch.isfinite(out.total) and not out.skipped.item()
    assert all(torch.equal(a, b) for a, b in zip(frozen, frozen_state(), strict=True)), \
        "the frozen part (weights or batch-norm statistics) changed"
    moved = [not torch.equal(a, p) for a, p in zip(
        trainable, (p for p in parts.network.parameters() if p.requires_grad), strict=True)]
    assert all(moved)


CUDNN = {"recipe": {"benchmark": True, "deterministic": False},
         "deterministic": {"benchmark": False, "deterministic": True}}


@pytest.mark.parametrize("cudnn", list(CUDNN))
def test_a_resumed_checkpoint_holds_bit_identical_weights(target, tmp_path, monkeypatch, cudnn,
                                                          record_property):
    for flag, value in CUDNN[cudnn].items():
        monkeypatch.setattr(torch.backends.cudnn, flag, value)
    cfg = target.cfg("ovenet_ocr")  # dropout in the OCR head: the RNG states matter too
    batches = [target.batch(cfg, seed=seed) for seed in (0, 1)]

    def checkpointer(parts):
        return Checkpointer(str(tmp_path), parts.model, parts.optimizer, parts.scaler,
                            iters_per_epoch=[4], config_text=cfg.dump(), device=target.device)

    first = target.parts(cfg)
    step(first, *batches[0])
    checkpointer(first).save(1, 0.5)
    saved = {k: v.clone() for k, v in first.network.state_dict().items()}
    momentum = [first.optimizer.state[p]["momentum_buffer"].clone()
                for p in first.network.parameters()]
    step(first, *batches[1])

    resumed = target.parts(cfg)
    assert checkpointer(resumed).resume() == (1, 0.5)
    state = resumed.network.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())
    assert all(torch.equal(resumed.optimizer.state[p]["momentum_buffer"], m)
               for p, m in zip(resumed.network.parameters(), momentum, strict=True))
    assert all(t.device.type == target.device.type for t in state.values())
    step(resumed, *batches[1])
    # The second step after the resume against the same step of the run that went on.
    went_on = list(first.network.parameters())
    again = list(resumed.network.parameters())
    identical = all(torch.equal(a, b) for a, b in zip(again, went_on, strict=True))
    difference = relative_difference([p.detach() for p in again],
                                     [p.detach() for p in went_on])
    record_property("the next step bit-identical to the run that went on", identical)
    record_property("its weights' relative difference", f"{difference:.2e}")
    assert difference <= target.tolerance()
