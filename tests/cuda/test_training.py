"""A training step of each W48 network on the device: every precision, channels-last, activation
checkpointing, gradient accumulation and torch.compile, each against the plain fp32 step."""
import functools
import time

import pytest
import torch

from lib.engine import step
from lib.utils.compat import compile_counters
from tests.cuda.helpers import batch_norm_statistics, gradients, relative_difference
from tools.gpu_check import NETWORKS

pytestmark = pytest.mark.cuda

PRECISIONS = {"fp32": [], "bf16": ["TRAIN.AMP", "True"],
              "fp16": ["TRAIN.AMP", "True", "TRAIN.AMP_DTYPE", "float16"]}


def train_step(parts, images, labels, accumulate_steps=1):
    return step.train_step(parts.model, parts.criterion, parts.optimizer, parts.scaler, images,
                           labels, parts.amp_dtype, accumulate_steps)


# Seeded before each of two computations that must draw the same dropout masks (the OCR head).
DROPOUT_SEED = 1


def fp32_loss(parts, images, labels):
    """The loss of the parts' current weights in fp32, without autocast and without grad."""
    torch.manual_seed(DROPOUT_SEED)
    with torch.no_grad():
        return float(sum(parts.criterion(parts.network(images), labels).values()))


def weights(network):
    return [p.detach().clone() for p in network.parameters() if p.requires_grad]


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("network", list(NETWORKS))
def test_a_training_step_in_each_precision(target, network, precision, record_property):
    cfg = target.cfg(network, *PRECISIONS[precision])
    parts = target.parts(cfg)
    images, labels = target.batch(cfg)
    before = weights(parts.network)
    reference = fp32_loss(parts, images, labels)
    # float16 may overflow the first scale of the GradScaler: the step is skipped on the device
    # and the scale halved, until one fits.
    for attempt in range(8):  # noqa: B007 (read after the loop: the steps it took)
        torch.manual_seed(DROPOUT_SEED)
        target.sync()
        start = time.perf_counter()
        out = train_step(parts, images, labels)
        target.sync()
        seconds = time.perf_counter() - start
        if not out.skipped.item():
            break
    record_property("loss", float(out.total))
    record_property("fp32 loss of the same weights", reference)
    record_property("step seconds (the last)", round(seconds, 3))
    record_property("skipped steps", attempt)
    assert torch.isfinite(out.total) and not out.nonfinite.item()
    assert not out.skipped.item(), f"every step of {attempt + 1} skipped"
    assert precision == "fp16" or attempt == 0
    if precision == "fp16":
        assert parts.scaler.get_scale() == 65536.0 / 2 ** attempt
    trainable = [p for p in parts.network.parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable)
    moved = [not torch.equal(a, b) for a, b in zip(before, weights(parts.network), strict=True)]
    assert sum(moved) > 0.9 * len(moved)
    # the first step's loss is that of the weights before it
    if attempt == 0:
        tolerance = 1e-3 if precision == "fp32" else 5e-2
        assert float(out.total) == pytest.approx(reference, rel=tolerance)


def in_float64(parts, images):
    """The network of ``parts``, its SGD momentum buffers and ``images`` in float64; the loss
    and the seed gathering stay in fp32, as the library computes them."""
    parts.network.double()
    for state in parts.optimizer.state.values():
        state["momentum_buffer"] = state["momentum_buffer"].double()
    return images.double()


@pytest.mark.parametrize("network", list(NETWORKS))
def test_a_channels_last_step_equals_the_contiguous_step(target, network, record_property):
    """On the CPU (the dry run) in float64: the two layouts' fp32 kernels round differently,
    and a ReLU input within that rounding of 0 takes a gradient of 0 in one step and g in the
    other.  In the tiny offset network one such input (in offset_layer: -2.4e-7 in float64,
    -2.6e-6 NCHW, +4.6e-7 channels-last, torch 2.14.1) is 1 of the layer's 30720 and moved
    the gradients by 3%: rounding, not layout.  At the real sizes one element weighs little."""
    results = []
    for channels_last in (False, True):
        cfg = target.cfg(network, "TRAIN.CHANNELS_LAST", channels_last)
        parts = target.parts(cfg)
        images, labels = target.batch(cfg)
        if target.dry_run:
            images = in_float64(parts, images)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        results.append((train_step(parts, images, labels).total, gradients(parts.network),
                        weights(parts.network)))
    (loss, grads, after), (cl_loss, cl_grads, cl_after) = results
    difference = relative_difference(cl_grads, grads)
    record_property("gradient relative difference", f"{difference:.2e}")
    assert float(cl_loss) == pytest.approx(float(loss), rel=target.tolerance())
    assert difference <= target.tolerance()
    assert relative_difference(cl_after, after) <= target.tolerance()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("network", list(NETWORKS))
def test_checkpointing_gives_the_gradients_and_statistics_of_the_plain_step(
        target, network, precision, record_property):
    results = []
    for checkpointing in (False, True):
        cfg = target.cfg(network, *PRECISIONS[precision], "TRAIN.GRAD_CHECKPOINTING",
                         checkpointing)
        parts = target.parts(cfg)
        assert parts.network.grad_checkpointing is checkpointing
        images, labels = target.batch(cfg)
        out = train_step(parts, images, labels)
        results.append((out.total, gradients(parts.network),
                        batch_norm_statistics(parts.network),
                        [b for n, b in parts.network.named_buffers()
                         if n.endswith("num_batches_tracked")]))
    (loss, grads, stats, tracked), (ckpt_loss, ckpt_grads, ckpt_stats, ckpt_tracked) = results
    dtype = None if precision == "fp32" else torch.bfloat16
    gradient_difference = relative_difference(ckpt_grads, grads)
    statistics_difference = relative_difference(ckpt_stats, stats)
    record_property("gradient relative difference", f"{gradient_difference:.2e}")
    record_property("batch-norm statistics relative difference", f"{statistics_difference:.2e}")
    assert float(ckpt_loss) == pytest.approx(float(loss), rel=target.tolerance(dtype))
    assert gradient_difference <= target.tolerance(dtype)
    assert statistics_difference <= target.tolerance(dtype)
    # the recompute moved no statistics: one forward, one update
    assert all(int(t) == 1 for t in ckpt_tracked) and len(ckpt_tracked) == len(tracked)


@pytest.mark.parametrize("network", list(NETWORKS))
def test_two_accumulated_micro_batches_give_the_mean_of_their_gradients(target, network,
                                                                         record_property):
    cfg = target.cfg(network, "TRAIN.ACCUMULATE_STEPS", 2)
    parts = target.parts(cfg)
    images, labels = target.batch(cfg)
    initial = {k: v.clone() for k, v in parts.network.state_dict().items()}
    halves = []
    torch.manual_seed(DROPOUT_SEED)  # the two halves draw the masks of the two micro-batches
    for half in (0, 1):
        parts.network.load_state_dict(initial)
        train_step(parts, images[half:half + 1], labels[half:half + 1])
        halves.append([g.clone() for g in gradients(parts.network)])
    parts = target.parts(cfg)
    torch.manual_seed(DROPOUT_SEED)
    out = train_step(parts, images, labels, accumulate_steps=2)
    mean = [(a + b) / 2 for a, b in zip(*halves, strict=True)]
    difference = relative_difference(gradients(parts.network), mean)
    record_property("gradient relative difference", f"{difference:.2e}")
    assert torch.isfinite(out.total) and not out.skipped.item()
    assert difference <= target.tolerance()


@pytest.mark.compile
def test_a_compiled_step_compiles_once_and_agrees_with_the_eager_step(
        target, monkeypatch, record_property):
    """TRAIN.COMPILE of the offset network with bf16 and channels-last (the benchmark's
    bf16_cl_compile): the first step compiles, later steps reuse the graphs.  One network:
    compiling a W48 training step takes minutes; the dry run traces with the eager backend
    (dynamo's graphs and recompiles counted, no code generated)."""
    if target.dry_run:
        monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    cfg = target.cfg("offset", *PRECISIONS["bf16"], "TRAIN.CHANNELS_LAST", True,
                     "TRAIN.COMPILE", True)
    parts = target.parts(cfg)
    images, labels = target.batch(cfg)
    images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(target.device.type, dtype=torch.bfloat16), torch.no_grad():
        eager = float(sum(parts.criterion(parts.network(images), labels).values()))
    seconds, counts = [], []
    for _ in range(3):
        target.sync()
        start = time.perf_counter()
        out = train_step(parts, images, labels)
        target.sync()
        seconds.append(time.perf_counter() - start)
        counts.append(compile_counters())
    record_property("step seconds (first compiles)", [round(s, 3) for s in seconds])
    record_property("compiled frames, graphs, graph breaks after each step", counts)
    assert counts[0]["frames"] > 0
    assert counts[1] == counts[0] == counts[2], "a later step compiled again"
    assert float(out.total) == pytest.approx(eager, rel=0.1)
    assert torch.isfinite(out.total) and not out.skipped.item()
