"""NonFiniteOutputs counts every NaN and infinity a network returns, while it is entered."""
import torch
import torch.nn as nn

from lib.evaluation.finite import NonFiniteOutputs
from lib.models import SegOutput


class _Fixed(nn.Module):
    """Returns the maps it was given, whatever the input."""

    def __init__(self, output):
        super().__init__()
        self.output = output

    def forward(self, x):
        return self.output


def test_every_nan_and_infinity_of_every_output_field_is_counted_while_entered():
    nan, inf = float("nan"), float("inf")
    logits = torch.tensor([[[[0.0, inf], [-inf, 1.0]]]])
    confidence = torch.tensor([[[[nan, 0.5], [nan, 0.5]]]])
    model = _Fixed(SegOutput(logits, offsets=torch.zeros(1, 2, 2, 2), confidence=confidence))
    with NonFiniteOutputs(model, "cpu") as outputs:
        model(None)
        model(None)
    model(None)  # after the exit: not counted
    assert outputs.total() == 2 * (2 + 2)
    with NonFiniteOutputs(nn.Identity(), "cpu") as finite:
        finite.model(torch.ones(3))
    assert finite.total() == 0
