"""Gradient accumulation (TRAIN.ACCUMULATE_STEPS): k micro-batches per optimiser step."""

import pytest
import torch
import torch.nn as nn

from lib.engine import step
from lib.engine.schedule import build_optimizer
from lib.engine.trainer import Check
from lib.models import build_model
from lib.models.losses import build_criterion
from tests.helpers import OFFSET_CFG, free_port, tiny_cfg

CROP = (32, 64)  # H x W of the random batches


def _batch(n, num_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, *CROP, generator=g)
    labels = torch.randint(0, num_classes, (n, *CROP), generator=g)
    labels[torch.rand(n, *CROP, generator=g) < 0.1] = 255
    return images, labels


def _parts(cfg, seed=0):
    """The tiny network of ``cfg`` (seeded), its real criterion, a fused SGD and a scaler."""
    torch.manual_seed(seed)
    model = build_model(cfg, load_pretrained=False)
    weights = torch.linspace(0.5, 1.5, cfg.DATASET.NUM_CLASSES)
    criterion = build_criterion(cfg, weights)
    optimizer = build_optimizer(model, "sgd", 0.01, 0.9, 5e-4, False)
    return model, criterion, optimizer, torch.amp.GradScaler("cpu", enabled=False)


def _relative_difference(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _eval_batch_norm(model):
    """Training mode with every batch norm in eval mode: its statistics are then no function
    of the batch, so that a micro-batch and the whole batch normalise alike."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model


def test_two_micro_batches_of_two_give_the_gradients_and_weights_of_one_batch_of_four():
    # The baseline network and its class-weighted cross-entropy: a weighted mean over the valid
    # pixels.  The mean over the whole batch is the mean of the micro-batches' means when both
    # micro-batches hold the same weight, so the second pair's labels are the first pair's,
    # mirrored (same classes, same ignored share), under other images.
    cfg = tiny_cfg("seg_hrnet", num_classes=5)
    images, labels = _batch(4, 5)
    labels[2:] = labels[:2].flip(-1)
    runs = []
    for k in (1, 2):
        model, criterion, optimizer, scaler = _parts(cfg)
        _eval_batch_norm(model)
        out = step.train_step(model, criterion, optimizer, scaler, images, labels,
                              accumulate_steps=k)
        assert not out.nonfinite and out.skipped == 0
        runs.append((out, {n: p.grad.clone() for n, p in model.named_parameters()},
                     {n: p.detach().clone() for n, p in model.named_parameters()}))
    (whole, whole_grads, whole_weights), (micro, micro_grads, micro_weights) = runs
    for name, grad in whole_grads.items():
        assert grad.norm() > 0, name
        assert _relative_difference(micro_grads[name], grad) <= 1e-6, name
        assert _relative_difference(micro_weights[name], whole_weights[name]) <= 1e-6, name
    assert float(micro.total) == pytest.approx(float(whole.total), rel=1e-6)


def _reference_train_step(model, criterion, optimizer, scaler, images, labels):
    """The training step as it was before accumulation existed, written out."""
    output = model(images)
    terms = criterion(output, labels)
    total = sum(terms.values())
    nonfinite = ~torch.isfinite(total.detach())
    optimizer.zero_grad(set_to_none=True)
    poison = torch.where(nonfinite, float("nan"), 1.0)
    scaler.scale(total * poison).backward()
    step.step_unless_nonfinite(optimizer, scaler)
    return total.detach()


def test_one_accumulation_step_is_bit_identical_to_the_step_without_accumulation():
    cfg = tiny_cfg(num_classes=5)
    images, labels = _batch(2, 5)
    results = []
    for train_step in (_reference_train_step, step.train_step):
        model, criterion, optimizer, scaler = _parts(cfg)
        model.train()
        totals = [train_step(model, criterion, optimizer, scaler, images, labels)
                  for _ in range(2)]
        totals = [t if isinstance(t, torch.Tensor) else t.total for t in totals]
        results.append((totals, model.state_dict()))
    (ref_totals, ref_state), (totals, state) = results
    assert all(torch.equal(a, b) for a, b in zip(ref_totals, totals, strict=True))
    for name, value in ref_state.items():
        assert torch.equal(value, state[name]), name


def _linear():
    torch.manual_seed(0)
    return nn.Linear(3, 2)


class _NonFiniteAt:
    """Mean-square loss that is ``value`` at the given calls (counted from 1)."""

    def __init__(self, calls, value=float("nan")):
        self.calls, self.value, self.count = set(calls), value, 0

    def __call__(self, output, labels):
        self.count += 1
        scale = self.value if self.count in self.calls else 1.0
        return {"seg": output.square().mean() * scale}


@pytest.mark.parametrize("bad_micro_batch", [1, 2, 3])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_nonfinite_micro_batch_skips_the_whole_step(bad_micro_batch, value):
    model = _linear()
    optimizer = build_optimizer(model, "sgd", 0.1, 0.9, 1e-4, False)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    x, labels = torch.randn(6, 3), torch.zeros(6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    criterion = _NonFiniteAt({bad_micro_batch}, value)
    out = step.train_step(model, criterion, optimizer, scaler, x, labels, accumulate_steps=3)
    assert criterion.count == 3
    assert bool(out.nonfinite) and float(out.skipped) == 1.0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    out = step.train_step(model, _NonFiniteAt(()), optimizer, scaler, x, labels,
                          accumulate_steps=3)
    assert not out.nonfinite and out.skipped == 0
    assert not torch.equal(model.weight, before["weight"])


def test_a_batch_that_does_not_split_into_the_micro_batches_is_named():
    model = _linear()
    optimizer = build_optimizer(model, "sgd", 0.1, 0.9, 0.0, False)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    with pytest.raises(ValueError, match="TRAIN.ACCUMULATE_STEPS = 4"):
        step.train_step(model, _NonFiniteAt(()), optimizer, scaler, torch.randn(6, 3),
                        torch.zeros(6), accumulate_steps=4)


# -- two gloo processes ----------------------------------------------------------------------
# Rank r takes images [2r, 2r + 2) of each step's batch of 4 (one process of the group);
# the single process takes all 4 in the same order: k micro-batches on each of W processes are
# then W * k micro-batches on one.  Step 1 has 1 micro-batch per rank, step 2 has 2.
STEPS = ((1, 0), (2, 1))  # (micro-batches per rank, seed of the step's batch)
MICRO = 1  # images per micro-batch


def _step_batch(k, seed, world_size):
    return _batch(MICRO * k * world_size, 5, seed=seed + 10)


def _rank_accumulating(rank, port, results):
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        network, criterion, _, scaler = _parts(tiny_cfg(num_classes=5))
        model = nn.parallel.DistributedDataParallel(network)
        optimizer = build_optimizer(network, "sgd", 0.01, 0.9, 5e-4, False)
        reduced = []

        def counting_allreduce(state, bucket):
            reduced.append(bucket.buffer().numel())
            return default_hooks.allreduce_hook(state, bucket)

        model.register_comm_hook(None, counting_allreduce)
        model.train()
        per_step = []
        for k, seed in STEPS:
            images, labels = _step_batch(k, seed, 2)
            mine = slice(rank * MICRO * k, (rank + 1) * MICRO * k)
            before = len(reduced)
            step.train_step(model, criterion, optimizer, scaler, images[mine], labels[mine],
                            accumulate_steps=k)
            per_step.append(sum(reduced[before:]))
        results[rank] = (per_step, {n: p.detach().clone()
                                    for n, p in network.named_parameters()})
    finally:
        dist.destroy_process_group()


def test_two_processes_all_reduce_once_per_step_and_train_as_one_process_of_all_micro_batches():
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_rank_accumulating, args=(free_port(), results), nprocs=2)
    model, criterion, optimizer, scaler = _parts(tiny_cfg(num_classes=5))
    model.train()
    for k, seed in STEPS:
        images, labels = _step_batch(k, seed, 2)
        step.train_step(model, criterion, optimizer, scaler, images, labels,
                        accumulate_steps=2 * k)
    ranks = [results[0], results[1]]  # one copy each out of the manager
    for per_step, weights in ranks:
        # Every gradient element is all-reduced once per optimiser step, also with 2
        # micro-batches (not once per backward); DDP may regroup its buckets between steps.
        assert per_step == [sum(p.numel() for p in model.parameters())] * 2
        for name, p in model.named_parameters():
            assert _relative_difference(weights[name], p.detach()) <= 1e-6, name
    assert all(torch.equal(ranks[0][1][n], ranks[1][1][n]) for n in ranks[0][1])


# -- the trainer: one loader batch = one optimiser step ----------------------------------------
class _Counting:
    """Wraps a criterion: counts its calls and the images each one saw; NaN at ``nan_calls``."""

    def __init__(self, criterion, nan_calls=()):
        self.criterion, self.nan_calls, self.images = criterion, set(nan_calls), []

    def __call__(self, output, labels):
        self.images.append(labels.shape[0])
        terms = self.criterion(output, labels)
        if len(self.images) in self.nan_calls:
            terms["seg"] = terms["seg"] * float("nan")
        return terms


@pytest.mark.parametrize("batch, k", [(2, 2), (1, 3), (2, 1)])
def test_iterations_count_optimiser_steps_of_batch_times_accumulation(make_trainer, batch, k,
                                                                      caplog):
    trainer = make_trainer(epochs=2, **{"TRAIN.BATCH_SIZE_PER_GPU": batch,
                                        "TRAIN.ACCUMULATE_STEPS": k, "TRAIN.EVAL_INTERVAL": 0})
    per_epoch = 8 // (1 * batch * k)  # the synthetic training set has 8 images, one process
    parts = trainer.parts
    loader, sampler = parts.phases[0]
    assert len(loader) == sampler.batches_per_epoch == per_epoch
    assert parts.schedule.total_iters == 2 * per_epoch
    assert f"effective batch {batch * k} = {batch} per GPU" in caplog.text
    parts.step.criterion = _Counting(parts.step.criterion)
    lrs, real_step = [], parts.step.optimizer.step

    def recording_step(*a, **kw):
        lrs.append(parts.step.optimizer.param_groups[0]["lr"])
        return real_step(*a, **kw)

    parts.step.optimizer.step = recording_step
    list(trainer.train_epoch(next(parts.schedule.epochs(0))))
    assert trainer.iteration == per_epoch
    assert parts.step.criterion.images == [batch] * (per_epoch * k)
    assert lrs == pytest.approx([0.02 * (1 - i / (2 * per_epoch)) ** 0.9
                                 for i in range(per_epoch)])


def test_nonfinite_micro_batches_count_once_per_step_towards_max_nonfinite(make_trainer,
                                                                           caplog):
    # 2 steps per epoch of 2 micro-batches: NaN in both micro-batches of the first step is one
    # non-finite step, so MAX_NONFINITE 2 is not reached.
    trainer = make_trainer(epochs=1, PRINT_FREQ=2, **{"TRAIN.ACCUMULATE_STEPS": 2,
                                                      "TRAIN.MAX_NONFINITE": 2})
    step_parts = trainer.parts.step
    step_parts.criterion = _Counting(step_parts.criterion, nan_calls={1, 2})
    before = [p.detach().clone() for p in step_parts.model.parameters()]
    real_step, changed = step_parts.optimizer.step, []

    def recording_step(*a, **kw):
        weights = [p.detach().clone() for p in step_parts.model.parameters()]
        result = real_step(*a, **kw)
        changed.append(any(not torch.equal(w, p) for w, p in
                           zip(weights, step_parts.model.parameters(), strict=True)))
        return result

    step_parts.optimizer.step = recording_step
    checks = list(trainer.train_epoch(next(trainer.parts.schedule.epochs(0))))
    assert checks == [Check(epoch_end=True, checkpoint_due=False, stop=False)]
    assert changed == [False, True]
    assert "it 2: 1 non-finite loss(es) in the last 2 iterations" in caplog.text
    assert any(not torch.equal(b, p) for b, p in zip(before, step_parts.model.parameters()))


def test_a_nonfinite_micro_batch_in_max_nonfinite_steps_in_a_row_stops_the_run(make_trainer):
    from lib.engine.trainer import NonFiniteLossError

    trainer = make_trainer(epochs=1, PRINT_FREQ=2, **{"TRAIN.ACCUMULATE_STEPS": 2,
                                                      "TRAIN.MAX_NONFINITE": 2})
    trainer.parts.step.criterion = _Counting(trainer.parts.step.criterion,
                                             nan_calls={2, 3})  # steps 1 and 2
    with pytest.raises(NonFiniteLossError, match="TRAIN.MAX_NONFINITE = 2"):
        list(trainer.train_epoch(next(trainer.parts.schedule.epochs(0))))


def test_the_train_benchmark_times_steps_of_every_micro_batch(monkeypatch, capsys):
    from tools import benchmark

    seen, real = [], step.train_step

    def recording(model, criterion, optimizer, scaler, images, labels, amp_dtype=None,
                  accumulate_steps=1):
        seen.append((images.shape[0], accumulate_steps))
        return real(model, criterion, optimizer, scaler, images, labels, amp_dtype,
                    accumulate_steps)

    monkeypatch.setattr(step, "train_step", recording)
    assert benchmark.main(["--cfg", OFFSET_CFG, "--mode", "train", "--iters", "1", "--warmup",
                           "0", "TRAIN.BATCH_SIZE_PER_GPU", "1", "TRAIN.ACCUMULATE_STEPS", "3",
                           "TRAIN.IMAGE_SIZE", "[64,32]", "LOSS.OHEMKEEP", "100"]) == 0
    assert seen == [(3, 3)] * 3  # the FLOP count, the timed iteration and the profiled step
    out = capsys.readouterr().out
    assert "3 images (3 micro-batches of 1) per training step" in out
