"""train_step: the one training step, shared by the Trainer and tools/benchmark.py."""
import pytest
import torch
import torch.nn as nn

from lib.engine import step
from lib.engine.schedule import build_optimizer
from tests.helpers import OFFSET_CFG, free_port
from tools import benchmark


@pytest.fixture
def counted_steps(monkeypatch):
    """Counts the calls of ``lib.engine.step.train_step`` (the real one still runs)."""
    calls = []
    real = step.train_step

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(step, "train_step", counting)
    return calls


def test_training_and_the_benchmark_run_the_same_step_function(make_trainer, counted_steps,
                                                               capsys):
    trainer = make_trainer(epochs=1, **{"TRAIN.EVAL_INTERVAL": 0})
    list(trainer.train_epoch(next(trainer.parts.schedule.epochs(0))))
    assert len(counted_steps) == len(trainer.loader)
    counted_steps.clear()
    assert benchmark.main(["--cfg", OFFSET_CFG, "--mode", "train", "--iters", "2", "--warmup",
                           "1", "TRAIN.BATCH_SIZE_PER_GPU", "1", "TRAIN.IMAGE_SIZE", "[64,32]",
                           "LOSS.OHEMKEEP", "100"]) == 0
    # the FLOP count, warm-up and timed iterations, and the profiled step
    assert len(counted_steps) == 1 + 1 + 2 + 1


class _Squares(nn.Module):
    """A linear layer whose loss is the mean square of its output (terms as the criteria give)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        return self.linear(x)


def _criterion(scale):
    return lambda output, labels: {"seg": output.square().mean() * scale}


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_a_nonfinite_loss_leaves_weights_and_optimiser_state_unchanged(optimizer):
    model = _Squares()
    opt = build_optimizer(model, optimizer, 0.1, 0.9, 1e-4, False)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    x = torch.randn(4, 3)
    out = step.train_step(model, _criterion(1.0), opt, scaler, x, None)
    assert not out.nonfinite and out.skipped == 0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = [{k: v.clone() for k, v in s.items()} for s in opt.state.values()]
    def constant_inf(output, labels):  # a non-finite loss whose gradients are finite
        return {"seg": output.square().mean(), "other": torch.tensor(float("inf"))}

    for criterion in (_criterion(float("nan")), _criterion(float("inf")), constant_inf):
        out = step.train_step(model, criterion, opt, scaler, x, None)
        assert out.nonfinite and out.skipped == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for saved, now in zip(state, opt.state.values(), strict=True):
        assert all(torch.equal(saved[k], now[k]) for k in saved)


def test_a_skipped_first_step_leaves_the_same_run_as_no_step():
    x = torch.randn(4, 3)
    runs = []
    for losses in ([1.0, 1.0], [float("nan"), 1.0, 1.0]):
        model = _Squares()
        opt = build_optimizer(model, "sgd", 0.1, 0.9, 1e-4, False)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        for scale in losses:
            step.train_step(model, _criterion(scale), opt, scaler, x, None)
        runs.append(model.linear.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_sgd_with_zero_momentum_buffers_matches_torch_default_sgd():
    model, reference = _Squares(), _Squares()
    opt = build_optimizer(model, "sgd", 0.1, 0.9, 5e-4, True)
    ref = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                          nesterov=True, foreach=False)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    x = torch.randn(4, 3)
    for _ in range(3):
        step.train_step(model, _criterion(1.0), opt, scaler, x, None)
        ref.zero_grad()
        reference(x).square().mean().backward()
        ref.step()
    torch.testing.assert_close(model.linear.weight, reference.linear.weight, atol=1e-6, rtol=0)


def test_float16_scaler_skips_an_overflowing_step_and_halves_its_scale():
    model = _Squares()
    opt = build_optimizer(model, "sgd", 0.1, 0.9, 0.0, False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    x = torch.randn(4, 3)
    before = model.linear.weight.detach().clone()
    out = step.train_step(model, _criterion(1e36), opt, scaler, x, None)  # finite loss,
    assert not out.nonfinite and out.skipped == 1  # but its scaled gradients overflow
    assert torch.equal(model.linear.weight, before)
    assert scaler.get_scale() == 2.0 ** 15
    out = step.train_step(model, _criterion(1.0), opt, scaler, x, None)
    assert out.skipped == 0 and not torch.equal(model.linear.weight, before)


def _rank_with_a_nan_loss(rank, port, results):
    """One of two gloo ranks: DDP over _Squares, rank 1's second loss is NaN."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                           world_size=2)
    try:
        model = nn.parallel.DistributedDataParallel(_Squares())
        opt = build_optimizer(model, "sgd", 0.1, 0.9, 1e-4, False)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        x = torch.randn(4, 3, generator=torch.Generator().manual_seed(rank))
        skipped, weights = [], []
        for i in range(3):
            scale = float("nan") if (rank, i) == (1, 1) else 1.0
            out = step.train_step(model, _criterion(scale), opt, scaler, x, None)
            skipped.append(float(out.skipped))
            weights.append(model.module.linear.weight.detach().clone())
        results[rank] = (skipped, weights)
    finally:
        dist.destroy_process_group()


def test_a_nan_loss_on_one_rank_skips_the_same_step_on_every_rank():
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_rank_with_a_nan_loss, args=(free_port(), results), nprocs=2)
    (skipped0, weights0), (skipped1, weights1) = results[0], results[1]
    assert skipped0 == skipped1 == [0.0, 1.0, 0.0]
    for a, b in zip(weights0, weights1, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(weights0[0], weights0[1]) and not torch.equal(weights0[1], weights0[2])


def test_parameters_named_by_the_nonbackbone_keywords_train_at_their_factor_of_the_schedule():
    # HRNet-OCR's PASCAL-Context recipe: the heads take 10x the poly learning rate.
    from lib.engine.schedule import set_lr

    model = nn.ModuleDict({"trunk": nn.Linear(3, 3), "cls_head": nn.Linear(3, 2),
                           "aux_head": nn.Linear(3, 2)})
    opt = build_optimizer(model, "sgd", 0.1, 0.9, 0.0, False, nonbackbone_keywords=("cls", "aux"),
                          nonbackbone_lr_mult=10)
    trunk, heads = opt.param_groups
    assert {id(p) for p in trunk["params"]} == {id(p) for p in model["trunk"].parameters()}
    assert len(heads["params"]) == 4 and heads["lr"] == pytest.approx(1.0)
    set_lr(opt, 0.02)
    assert (trunk["lr"], heads["lr"]) == (pytest.approx(0.02), pytest.approx(0.2))
    # A plain SGD step with those rates moves each parameter by lr * grad (zero momentum state).
    x = torch.randn(4, 3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = sum(m(x).sum() for m in model.values())
    loss.backward()
    opt.step()
    for name, p in model.named_parameters():
        lr = 0.02 if name.startswith("trunk") else 0.2
        torch.testing.assert_close(p.detach(), before[name] - lr * p.grad)


def test_nonbackbone_keywords_that_name_no_parameter_are_an_error():
    with pytest.raises(ValueError, match=r"NONBACKBONE_KEYWORDS \['ocr'\] name no parameter"):
        build_optimizer(nn.Linear(2, 2), "sgd", 0.1, 0.9, 0.0, False, nonbackbone_keywords=("ocr",),
                        nonbackbone_lr_mult=10)
