"""The memory estimate (lib.engine.memory_use) against the device's real peak, and its largest
batch against a real training step."""
import gc

import pytest
import torch

from lib.engine.memory_use import FREE_BYTES, FREE_SHARE, measure_step_memory
from lib.engine.out_of_memory import OutOfMemoryMessage, OutOfMemoryRunError, explain_out_of_memory
from lib.engine.step import train_step
from lib.utils.memory import GIB
from tools.gpu_check import NETWORKS

pytestmark = pytest.mark.cuda


def measured(target, cfg, batch):
    """``StepMemory`` of a full training step of ``batch`` images (its CUDA peak on CUDA)."""
    parts = target.parts(cfg)
    images, labels = target.batch(cfg, n=batch)
    target.reset_peak()
    return measure_step_memory(parts, images, labels, full_step=True)


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "checkpointing"])
@pytest.mark.parametrize("network", list(NETWORKS))
def test_the_real_peak_stays_within_what_the_rule_keeps_for_it(target, network, checkpointing,
                                                               record_property):
    cfg = target.cfg(network, "TRAIN.GRAD_CHECKPOINTING", checkpointing)
    one, two = (measured(target, cfg, batch) for batch in (1, 2))
    # the estimate is measured the same way on every device
    assert two.saved_per_image == pytest.approx(one.saved_per_image, rel=0.05)
    assert two.fixed == one.fixed
    record_property("estimate GiB (batch 1, 2)", [round(u.estimate(u.batch) / GIB, 3)
                                                  for u in (one, two)])
    if target.peak_bytes() is None:
        return  # no allocator to compare with on the CPU
    peaks = [u.cuda_peak for u in (one, two)]
    growth = peaks[1] - peaks[0]
    record_property("CUDA peak GiB (batch 1, 2)", [round(p / GIB, 3) for p in peaks])
    record_property("peak growth per image / estimated per image",
                    round(growth / two.per_image, 3))
    record_property("peak / estimate at batch 2", round(peaks[1] / two.estimate(2), 3))
    # The rule keeps FREE_SHARE of the device and FREE_BYTES for what the estimate leaves out:
    # the peak must fit in the estimate and that reserve, whatever the device's size.
    assert peaks[1] <= (two.estimate(2) + FREE_BYTES) / (1 - FREE_SHARE)
    assert growth <= two.per_image / (1 - FREE_SHARE)


def device_bytes(target, use):
    """The device's memory; on the CPU one that the rule fills with 2 images."""
    if target.device.type == "cuda":
        return torch.cuda.get_device_properties(target.device).total_memory
    return int((use.estimate(2) + use.per_image / 2 + FREE_BYTES) / (1 - FREE_SHARE))


def test_the_largest_batch_fits_and_one_more_fits_or_says_what_to_do(target, record_property):
    cfg = target.cfg("offset")
    use = measured(target, cfg, 1)
    largest = use.largest_batch(device_bytes(target, use))
    record_property("largest batch by the rule", largest)
    assert largest >= target.sizes.batch
    for batch in (largest, largest + 1):
        parts = target.parts(cfg)
        images, labels = target.batch(cfg, n=batch)
        oom_message = OutOfMemoryMessage.training(
            target.cfg("offset", "TRAIN.BATCH_SIZE_PER_GPU", batch))
        target.reset_peak()
        try:
            with explain_out_of_memory(oom_message, target.device):
                out = train_step(parts.model, parts.criterion, parts.optimizer, parts.scaler,
                                 images, labels, parts.amp_dtype)
                target.sync()
        except OutOfMemoryRunError as e:
            assert batch == largest + 1, f"the rule's largest batch {largest} does not fit"
            record_property(f"batch {batch}", "out of memory: " + str(e).splitlines()[0])
            message = str(e)
            assert message.startswith("out of memory in training of branched_seg_hrnet")
            assert "to fit, try one of" in message and "TRAIN.GRAD_CHECKPOINTING True" in message
        else:
            assert torch.isfinite(out.total)
            peak = target.peak_bytes()
            record_property(f"batch {batch}", "fits" if peak is None else
                            f"fits, peak {peak / GIB:.2f} GiB")
        del parts, images, labels
        gc.collect()
