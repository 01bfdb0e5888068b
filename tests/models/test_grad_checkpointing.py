"""Activation checkpointing (``set_grad_checkpointing``): a training step gives the gradients and
batch-norm statistics of the plain network; evaluation and no-grad runs do not recompute."""
import copy

import pytest
import torch
import torch.nn as nn

from lib.models import build_model, checkpointing
from lib.models.losses import build_criterion
from lib.utils.memory import saved_tensor_bytes
from tests.helpers import free_port, tiny_ocr_cfg

NETWORKS = ["seg_hrnet", "branched_seg_hrnet", "seg_hrnet_ocr", "branched_seg_hrnet_ocr"]
SIZE = (32, 64)


def _cfg(make_tiny_cfg, name, **keys):
    cfg = tiny_ocr_cfg(name=name) if "ocr" in name else make_tiny_cfg(name=name)
    for key, value in keys.items():
        node, leaf = key.rsplit(".", 1)
        setattr(_node(cfg, node), leaf, value)
    return cfg


def _node(cfg, dotted):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def _criterion(cfg):
    """The training loss of the config, with class weights for the tiny networks' classes."""
    return build_criterion(cfg, torch.linspace(0.8, 1.2, cfg.DATASET.NUM_CLASSES))


def _pair(cfg):
    """The network twice with equal weights, in training mode: (plain, checkpointed)."""
    torch.manual_seed(0)
    plain = build_model(cfg, load_pretrained=False).train()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    return plain, ckpt


def _batch(num_classes, channels_last=False):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, *SIZE, generator=gen)
    y = torch.randint(0, num_classes, (2, *SIZE), generator=gen)
    y[:, :4] = 255  # some unlabelled pixels, as in real labels
    return (x.to(memory_format=torch.channels_last) if channels_last else x), y


def _step(model, criterion, x, y, autocast=None):
    """One forward (under autocast in the dtype ``autocast``), loss and backward; dropout draws
    from seed 7."""
    torch.manual_seed(7)
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        output = model(x)
    sum(criterion(output, y).values()).backward()


def _assert_same_step(plain, ckpt, rtol=1e-6):
    grads = {n: p.grad for n, p in plain.named_parameters() if p.requires_grad}
    for name, p in ckpt.named_parameters():
        if name in grads:
            torch.testing.assert_close(p.grad, grads[name], rtol=rtol, atol=rtol * (
                grads[name].abs().max().item() + 1e-30), msg=name)
        else:
            assert p.grad is None, name
    buffers = dict(plain.named_buffers())
    for name, b in ckpt.named_buffers():
        assert torch.equal(b, buffers[name]), f"{name} differs after the step"


def _recomputes(model, fn, monkeypatch):
    """How many segments ``fn()`` ran through the checkpoint."""
    calls = []
    real = checkpointing.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(checkpointing, "checkpoint", counting)
        fn()
    return len(calls)


@pytest.mark.parametrize("name", NETWORKS)
def test_a_checkpointed_training_step_gives_the_plain_gradients_and_bn_statistics(
        make_tiny_cfg, name, monkeypatch):
    cfg = _cfg(make_tiny_cfg, name)
    plain, ckpt = _pair(cfg)
    criterion = _criterion(cfg)
    x, y = _batch(cfg.DATASET.NUM_CLASSES)
    _step(plain, criterion, x, y)
    assert _recomputes(ckpt, lambda: _step(ckpt, criterion, x, y), monkeypatch) > 0
    _assert_same_step(plain, ckpt)
    # The statistics moved once: num_batches_tracked is 1, not 2.
    assert all(int(b) == 1 for n, b in ckpt.named_buffers() if n.endswith("num_batches_tracked"))


def test_checkpointing_keeps_far_less_for_backward(make_tiny_cfg):
    cfg = _cfg(make_tiny_cfg, "branched_seg_hrnet_ocr")
    plain, ckpt = _pair(cfg)
    x, _ = _batch(cfg.DATASET.NUM_CLASSES)
    _, stored = saved_tensor_bytes(lambda: plain(x), exclude=list(plain.parameters()))
    _, kept = saved_tensor_bytes(lambda: ckpt(x), exclude=list(ckpt.parameters()))
    assert kept.activations < stored.activations / 3


def test_segment_inputs_in_lists_are_kept_through_the_saved_tensor_hooks():
    # What non-reentrant checkpoint keeps for the recompute must be counted like saved tensors.
    a, b = torch.randn(1000, requires_grad=True), torch.randn(3000, requires_grad=True)
    w = torch.randn(1, requires_grad=True)
    _, kept = saved_tensor_bytes(
        lambda: checkpointing.recomputed(lambda ys, s: (ys[0] * s).sum() + ys[1].sum() * s,
                                         [a, b], w, enabled=True), exclude=[w])
    assert kept.activations == 4000 * 4


def test_sync_batch_norm_statistics_also_move_once(make_tiny_cfg):
    cfg = _cfg(make_tiny_cfg, "branched_seg_hrnet")
    plain, ckpt = (nn.SyncBatchNorm.convert_sync_batchnorm(m) for m in _pair(cfg))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in ckpt.modules())
    criterion = _criterion(cfg)
    x, y = _batch(cfg.DATASET.NUM_CLASSES)
    _step(plain, criterion, x, y)
    _step(ckpt, criterion, x, y)
    _assert_same_step(plain, ckpt)


def test_the_recompute_draws_the_forwards_dropout_masks(make_tiny_cfg):
    cfg = _cfg(make_tiny_cfg, "seg_hrnet_ocr", **{"MODEL.OCR.DROPOUT": 0.5})
    plain, ckpt = _pair(cfg)
    criterion = _criterion(cfg)
    x, y = _batch(cfg.DATASET.NUM_CLASSES)
    _step(plain, criterion, x, y)
    _step(ckpt, criterion, x, y)
    _assert_same_step(plain, ckpt)


def test_frozen_shared_part_still_trains_only_the_offset_path(make_tiny_cfg):
    cfg = _cfg(make_tiny_cfg, "branched_seg_hrnet_ocr", **{"MODEL.FREEZED_PAR": True})
    plain, ckpt = _pair(cfg)
    before = {n: b.clone() for n, b in ckpt.named_buffers()}
    criterion = _criterion(cfg)
    x, y = _batch(cfg.DATASET.NUM_CLASSES)
    _step(plain, criterion, x, y)
    _step(ckpt, criterion, x, y)
    _assert_same_step(plain, ckpt)
    frozen = [n for n in before if n.startswith(("layer1.", "stage4.", "aux_head."))]
    assert frozen and all(torch.equal(ckpt.state_dict()[n], before[n]) for n in frozen)


@pytest.mark.parametrize("name, dtype", [("branched_seg_hrnet", torch.bfloat16),
                                         ("branched_seg_hrnet_ocr", torch.bfloat16),
                                         ("branched_seg_hrnet_ocr", torch.float16)])
def test_autocast_and_channels_last_steps_match_the_plain_network(make_tiny_cfg, name, dtype):
    cfg = _cfg(make_tiny_cfg, name)
    plain, ckpt = (m.to(memory_format=torch.channels_last) for m in _pair(cfg))
    criterion = _criterion(cfg)
    x, y = _batch(cfg.DATASET.NUM_CLASSES, channels_last=True)
    _step(plain, criterion, x, y, autocast=dtype)
    _step(ckpt, criterion, x, y, autocast=dtype)
    _assert_same_step(plain, ckpt)


@pytest.mark.parametrize("mode", ["eval", "no_grad", "inference_mode"])
def test_evaluation_and_no_grad_runs_are_plain_forwards(make_tiny_cfg, mode, monkeypatch):
    cfg = _cfg(make_tiny_cfg, "branched_seg_hrnet_ocr")
    plain, ckpt = _pair(cfg)
    x, _ = _batch(cfg.DATASET.NUM_CLASSES)
    if mode == "eval":
        plain.eval(), ckpt.eval()
    context = {"eval": torch.enable_grad, "no_grad": torch.no_grad,
               "inference_mode": torch.inference_mode}[mode]
    outputs = []

    def run(model):
        torch.manual_seed(7)
        with context():
            outputs.append(model(x))
    run(plain)
    assert _recomputes(ckpt, lambda: run(ckpt), monkeypatch) == 0
    for a, b in zip(*outputs, strict=True):
        assert torch.equal(a, b)


def test_checkpointing_changes_no_state_dict_key_and_loads_both_ways(make_tiny_cfg):
    cfg = _cfg(make_tiny_cfg, "branched_seg_hrnet_ocr")
    plain, ckpt = _pair(cfg)
    assert list(ckpt.state_dict()) == list(plain.state_dict())
    other = build_model(cfg, load_pretrained=False)
    other.load_state_dict(ckpt.state_dict(), strict=True)
    ckpt.load_state_dict(other.state_dict(), strict=True)
    assert not plain.grad_checkpointing and ckpt.grad_checkpointing


def _ddp_rank(rank, port, cfg, results):
    """One of two gloo ranks: a DDP step of the plain and of the checkpointed network."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        plain, ckpt = _pair(cfg)
        criterion = _criterion(cfg)
        gen = torch.Generator().manual_seed(rank)
        x = torch.randn(1, 3, *SIZE, generator=gen)
        y = torch.randint(0, cfg.DATASET.NUM_CLASSES, (1, *SIZE), generator=gen)
        grads = []
        for model in (plain, ckpt):
            _step(nn.parallel.DistributedDataParallel(model), criterion, x, y)
            grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        results[rank] = grads
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_step_gives_the_plain_gradients(make_tiny_cfg):
    cfg = _cfg(make_tiny_cfg, "branched_seg_hrnet_ocr")
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_ddp_rank, args=(free_port(), cfg, results), nprocs=2)
    (plain0, ckpt0), (plain1, ckpt1) = results[0], results[1]
    for name, grad in plain0.items():
        assert torch.equal(plain1[name], grad), name  # the all-reduce ran
        torch.testing.assert_close(ckpt0[name], grad, rtol=1e-6, atol=1e-6 * grad.abs().max())
        torch.testing.assert_close(ckpt1[name], grad, rtol=1e-6, atol=1e-6 * grad.abs().max())
