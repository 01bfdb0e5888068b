"""The memory of a training step of a configured network, and the largest batch that fits.

``measure_step_memory`` runs the trainer's own step (``lib.engine.step.train_step``) on parts
built as training builds them (``build_step_parts``: TRAIN.AMP, TRAIN.CHANNELS_LAST and
TRAIN.GRAD_CHECKPOINTING of the config) and returns a ``StepMemory``:

- ``saved_per_image``: the bytes that autograd saves for backward in the forward and the loss,
  per image (``lib.utils.memory.saved_tensor_bytes``; the same on every device);
- ``recompute_per_image``: with TRAIN.GRAD_CHECKPOINTING, what the largest recomputed segment
  saves per image (``lib.models.checkpointing.segment_sizes``): the backward holds it on top of
  the saved bytes while it recomputes that segment;
- ``parameters``: weights, gradients and optimiser state (``ParameterMemory``);
- ``parameter_copies``: the copies of the weights that the forward saves (autocast's bf16
  weights, one per weight whatever the batch), with those the largest recomputed segment makes
  again: a fixed cost, like the weights;
- ``cuda_peak``: on CUDA, ``torch.cuda.max_memory_allocated`` of the whole step
  (``lib.utils.profiling.cuda_peak_bytes``).

``largest_batch`` turns the first two into the largest batch per GPU by the rule of
``StepMemory.estimate``.
"""
from dataclasses import dataclass

from ..models.checkpointing import segment_sizes
from ..utils.memory import GIB, ParameterMemory, SavedBytes, saved_tensor_bytes
from ..utils.profiling import cuda_peak_bytes, reset_memory
from . import step

# The rule of ``StepMemory.largest_batch``: of a device's memory, this share and this many bytes
# are kept free for what the saved tensors do not show: the activation gradients alive during
# the backward, the cuDNN and cuBLAS workspaces, the CUDA context and the caching allocator's
# fragmentation.
FREE_SHARE = 0.2
FREE_BYTES = GIB


@dataclass(frozen=True)
class StepMemory:
    """What one training step of ``batch`` images kept in memory (bytes)."""

    saved_per_image: int
    parameters: ParameterMemory
    batch: int
    cuda_peak: int | None = None
    recompute_per_image: int = 0
    parameter_copies: int = 0

    def estimate(self, batch: int) -> int:
        """Weights, gradients, optimiser state, the weights' copies and ``batch`` images' saved
        tensors and largest recomputed segment."""
        return self.fixed + batch * self.per_image

    @property
    def fixed(self) -> int:
        """What does not grow with the batch: weights, gradients, optimiser state, copies."""
        return self.parameters.total + self.parameter_copies

    @property
    def per_image(self) -> int:
        return self.saved_per_image + self.recompute_per_image

    def largest_batch(self, device_bytes: int) -> int:
        """The largest batch per GPU with ``estimate(batch)`` within ``device_bytes`` less the
        free share and bytes of the rule (0 when not even one image fits)."""
        usable = device_bytes * (1 - FREE_SHARE) - FREE_BYTES - self.fixed
        return max(0, int(usable // self.per_image))


def measure_step_memory(parts, images, labels, full_step=None) -> StepMemory:
    """Memory of one training step of ``parts`` (``StepParts``) on ``images`` N x 3 x H x W and
    ``labels`` N x H x W, on their device.

    ``full_step`` (default: on CUDA only): run the whole ``train_step`` (forward, loss, backward,
    update; the weights change) and, on CUDA, record its peak.  Otherwise only the forward and
    the loss run (every saved tensor is made there), which also works on the meta device: the
    same tensors are saved there, without any arithmetic.
    """
    device = images.device
    if full_step is None:
        full_step = device.type == "cuda"
    params = list(parts.network.parameters())
    parts.model.train()
    peak = None
    if full_step:
        reset_memory(device)
        _, saved = saved_tensor_bytes(lambda: parts.run(images, labels), exclude=params)
        peak = cuda_peak_bytes(device)
    else:
        _, saved = saved_tensor_bytes(lambda: _forward_and_loss(parts, images, labels),
                                      exclude=params)
    recompute = SavedBytes(0)
    if getattr(parts.network, "grad_checkpointing", False):
        with segment_sizes(exclude=params) as sizes:
            _forward_and_loss(parts, images, labels)
        # the segment that saves the most activations (a SavedBytes compares them first)
        recompute = max(sizes, default=recompute)
    batch = images.shape[0]
    return StepMemory(saved.activations // batch,
                      ParameterMemory.of(parts.network, parts.optimizer), batch, peak,
                      recompute.activations // batch,
                      saved.parameter_copies + recompute.parameter_copies)


def _forward_and_loss(parts, images, labels):
    return sum(step.forward_loss(parts.model, parts.criterion, images, labels,
                                 parts.amp_dtype).values())

