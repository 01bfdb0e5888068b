"""What the training loop keeps on the device between two checks (its host synchronisations):
the sums of the steps (``StepWindow``) and a snapshot of the batch-norm statistics
(``BufferGuard``).  Nothing here reads the device."""
import torch

from .step import StepOutput


class StepWindow:
    """Device-side sums over the steps since the last ``reset``: the loss terms of the finite
    steps, the finite and non-finite steps, the labelled pixels, and the streak of non-finite
    losses in a row, which ``reset`` keeps, so that a streak across checks and epochs counts
    whole (``longest_streak``: the longest one that reached into this window)."""

    def __init__(self, device):
        self.device = device
        self.streak = torch.zeros((), device=device)  # non-finite losses in a row, up to now
        self.reset()

    def reset(self):
        zero = torch.zeros((), device=self.device)
        self.names, self.sums = [], None
        self.finite, self.nonfinite = zero, zero.clone()
        self.longest_streak = self.streak.clone()
        self.labelled = zero.clone()  # label pixels other than the ignore label

    def add(self, out: StepOutput):
        values = torch.stack([*out.terms.values(), out.total]).float()
        values = torch.where(out.nonfinite, 0.0, values)
        self.names = [*out.terms, "loss"]
        self.sums = values if self.sums is None else self.sums + values
        self.finite = self.finite + ~out.nonfinite
        self.nonfinite = self.nonfinite + out.nonfinite
        self.streak = (self.streak + 1) * out.nonfinite
        self.longest_streak = torch.maximum(self.longest_streak, self.streak)

    def count_labelled(self, labels, ignore_label):
        self.labelled = self.labelled + (labels != ignore_label).sum()


class BufferGuard:
    """Puts back the float buffers (batch-norm statistics) of ``network`` when a non-finite
    forward corrupted them, from a snapshot taken at a check where they were finite."""

    def __init__(self, network, device):
        self.network, self.device = network, device
        self.snapshot(iteration=0)

    def _buffers(self):
        return [b for b in self.network.buffers() if b.is_floating_point()]

    def snapshot(self, iteration):
        """Keep the buffers as they are after ``iteration``."""
        self.saved = [b.detach().clone() for b in self._buffers()]
        self.iteration = iteration  # how old the statistics in ``saved`` are

    def restore(self):
        """Where any buffer is non-finite, put back all of them as they were at the snapshot
        (of ``self.iteration``), on the device; returns that 0-dim bool flag."""
        buffers = self._buffers()
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        if buffers:
            bad = ~torch.stack([torch.isfinite(b).all() for b in buffers]).all()
        with torch.no_grad():
            for buffer, saved in zip(buffers, self.saved, strict=True):
                buffer.copy_(torch.where(bad, saved, buffer))
        return bad
