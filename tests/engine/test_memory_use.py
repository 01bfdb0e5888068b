"""lib.engine.memory_use: the memory of a training step and the largest batch that fits."""
import pytest
import torch

from lib.config import load_cfg
from lib.engine.build import build_step_parts
from lib.engine.memory_use import FREE_BYTES, FREE_SHARE, StepMemory, measure_step_memory
from lib.models.checkpointing import recomputed, segment_sizes
from lib.utils.memory import GIB, ParameterMemory
from tests.helpers import OFFSET_CFG

CROP = (64, 128)


def parts_and_batch(batch, *opts):
    cfg = load_cfg(OFFSET_CFG, ["LOSS.OHEMKEEP", "1000", *opts])
    torch.manual_seed(0)
    parts = build_step_parts(cfg, torch.device("cpu"), load_pretrained=False)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, *CROP, generator=g)
    labels = torch.randint(0, cfg.DATASET.NUM_CLASSES, (batch, *CROP), generator=g)
    return parts, images, labels


def test_the_rule_of_the_largest_batch():
    fixed = ParameterMemory(GIB, GIB, GIB)  # 3 GiB that do not grow with the batch
    use = StepMemory(saved_per_image=GIB // 2, parameters=fixed, batch=1)
    assert use.estimate(4) == 5 * GIB
    # 16 GiB x 0.8 - 1 GiB - 3 GiB = 8.8 GiB of saved tensors: 17 images of 0.5 GiB.
    assert (FREE_SHARE, FREE_BYTES) == (0.2, GIB)
    assert use.largest_batch(16 * GIB) == 17
    assert use.largest_batch(4 * GIB) == 0


def test_saved_bytes_are_per_image_and_the_state_is_that_of_sgd_with_momentum():
    one = measure_step_memory(*parts_and_batch(1))
    parts, images, labels = parts_and_batch(3)
    three = measure_step_memory(parts, images, labels)
    assert three.batch == 3 and three.cuda_peak is None
    # Everything saved is per image except a few per-channel batch-norm statistics.
    assert three.saved_per_image == pytest.approx(one.saved_per_image, rel=0.01)
    params = sum(p.numel() * 4 for p in parts.network.parameters() if p.requires_grad)
    assert three.parameters == ParameterMemory(params, params, params)


def test_bf16_weight_copies_are_a_fixed_cost_not_a_cost_per_image():
    one = measure_step_memory(*parts_and_batch(1, "TRAIN.AMP", "True"))
    parts, images, labels = parts_and_batch(2, "TRAIN.AMP", "True")
    two = measure_step_memory(parts, images, labels)
    params = sum(p.numel() for p in parts.network.parameters())
    # autocast casts the weights of the convolutions to 2 bytes, once per forward
    assert 0 < one.parameter_copies == two.parameter_copies <= 2 * params
    assert two.saved_per_image == pytest.approx(one.saved_per_image, rel=0.01)
    assert two.fixed == two.parameters.total + two.parameter_copies
    assert two.estimate(5) == two.fixed + 5 * two.per_image
    assert measure_step_memory(*parts_and_batch(1)).parameter_copies == 0  # fp32 copies none


def test_the_forward_alone_saves_what_the_whole_step_saves():
    forward_only = measure_step_memory(*parts_and_batch(2), full_step=False)
    whole = measure_step_memory(*parts_and_batch(2), full_step=True)
    # The step adds only its 0-dim loss scalars to what the forward and the loss save.
    assert 0 <= whole.saved_per_image - forward_only.saved_per_image < 64
    assert whole.parameters == forward_only.parameters


def test_checkpointing_keeps_less_and_reports_its_largest_recompute():
    off = measure_step_memory(*parts_and_batch(2))
    on = measure_step_memory(*parts_and_batch(2, "TRAIN.GRAD_CHECKPOINTING", "True"))
    assert off.recompute_per_image == 0
    assert 0 < on.recompute_per_image < off.saved_per_image
    assert on.saved_per_image < off.saved_per_image / 2
    assert on.estimate(4) == on.parameters.total + 4 * (on.saved_per_image +
                                                         on.recompute_per_image)


def test_segment_sizes_are_what_each_segment_saves_when_it_runs_plainly():
    w = torch.randn(16, 16, requires_grad=True)
    x = torch.randn(8, 16)

    def segment(t):
        return torch.sigmoid(t @ w)  # saves t (for w's gradient) and its output

    with segment_sizes(exclude=[w]) as sizes:
        out = recomputed(segment, x, enabled=True)
        recomputed(segment, torch.randn(4, 16), enabled=True)
        recomputed(segment, x, enabled=False)  # not a recomputed segment: not counted
    assert [s.activations for s in sizes] == [2 * 8 * 16 * 4, 2 * 4 * 16 * 4]
    assert torch.equal(out, segment(x))
