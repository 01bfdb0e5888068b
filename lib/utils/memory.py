"""What a training step keeps in memory, measured the same way on every device.

Two figures decide whether a training step fits:

- the bytes that autograd saves for backward during the forward (``saved_tensor_bytes``): the
  activations, which grow with the batch and the crop;
- the bytes of the weights, their gradients and the optimiser's state (``ParameterMemory``),
  which do not.

``saved_tensor_bytes`` counts the tensors handed to autograd's saved-tensor hooks (the same
tensors are saved on the CPU and on CUDA, so the figure is the same on both).  Each storage is
counted once (views and in-place results share one), and the parameters' own storages are left
out (they are counted by ``ParameterMemory``).  Copies of the parameters made for the forward,
such as the bf16 weights of autocast (one per weight and forward, cached by autocast), are
counted apart from the activations: they cost the same for one image as for many.  With
activation checkpointing (``torch.utils.checkpoint``, non-reentrant) a recomputed segment saves
only its inputs, which go through the same hooks, so the figure stays honest.
"""
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .compat import view_base

GIB = 2 ** 30


def _storage_key(tensor):
    # The address of the storage's implementation: one per storage, shared by its views, and
    # distinct also on the meta device, where every data pointer is 0.
    return tensor.untyped_storage()._cdata


class SavedBytes(NamedTuple):
    """Bytes of the storages autograd saved for backward: ``activations``, which grow with the
    batch, and ``parameter_copies``, copies of the excluded parameters (autocast's bf16 weights),
    which do not."""

    activations: int
    parameter_copies: int = 0

    @property
    def total(self) -> int:
        return self.activations + self.parameter_copies


def _is_copy_of(tensor, keys):
    """Whether ``tensor`` (or the tensor it is a view of) is a dtype copy (``Tensor.to``, as
    autocast makes) of a leaf tensor whose storage is in ``keys``: its autograd node copies and
    leads straight to that leaf.  Linear layers save a transposed view of their weight."""
    node = view_base(tensor).grad_fn
    if node is None or node.name() != "ToCopyBackward0":
        return False
    return any(hasattr(n, "variable") and _storage_key(n.variable) in keys
               for n, _ in node.next_functions if n is not None)


def saved_tensor_bytes(fn, exclude=()):
    """``(fn(), SavedBytes)``: run ``fn()`` and count the bytes of the distinct storages that
    autograd saves for backward during the call, leaving out the storages of the tensors in
    ``exclude`` (pass the model's parameters) and counting their copies apart.

    Counted at the moment each tensor is saved; a storage saved several times counts once.  The
    figure is what the graph holds when ``fn`` returns if nothing is freed before the backward,
    which is the case for a training forward.
    """
    skip = {_storage_key(t) for t in exclude}
    activations, copies = {}, {}

    def pack(tensor):
        if tensor.layout == torch.strided:
            key = _storage_key(tensor)
            if key not in skip:
                kind = copies if _is_copy_of(tensor, skip) else activations
                kind[key] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()
    return result, SavedBytes(sum(activations.values()), sum(copies.values()))


@dataclass(frozen=True)
class ParameterMemory:
    """Bytes of the trainable parameters, of their gradients and of the optimiser's state."""

    parameters: int
    gradients: int
    optimizer_state: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state

    @classmethod
    def of(cls, model, optimizer=None):
        """The figures of ``model`` and ``optimizer``: what exists now, or, before the first
        backward and step, what they will make: a gradient per trainable parameter and the
        optimiser's buffers (``state_buffers``)."""
        params = [p for p in model.parameters() if p.requires_grad]
        param_bytes = sum(_nbytes(p) for p in params)
        if any(p.grad is not None for p in params):
            grad_bytes = sum(_nbytes(p.grad) for p in params if p.grad is not None)
        else:
            grad_bytes = param_bytes
        state_bytes = 0
        if optimizer is not None and optimizer.state:
            for state in optimizer.state.values():
                state_bytes += sum(_nbytes(v) for v in state.values()
                                   if torch.is_tensor(v) and v.dim() > 0)
        elif optimizer is not None:
            for group in optimizer.param_groups:
                buffers = state_buffers(optimizer, group)
                state_bytes += buffers * sum(_nbytes(p) for p in group["params"]
                                             if p.requires_grad)
        return cls(param_bytes, grad_bytes, state_bytes)


def state_buffers(optimizer, group) -> int:
    """Parameter-sized buffers that ``optimizer`` keeps per parameter of ``group``: SGD one
    momentum buffer (none without momentum), Adam and AdamW two moments (three with amsgrad)."""
    if isinstance(optimizer, torch.optim.SGD):
        return 1 if group["momentum"] else 0
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return 3 if group["amsgrad"] else 2
    raise TypeError(f"no rule for the state of {type(optimizer).__name__}; take the figures "
                    f"after a step")


def _nbytes(tensor):
    return tensor.numel() * tensor.element_size()
