"""Stand-in networks of known outputs for the inference protocols, and random image batches."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.models import SegOutput


class Pointwise(nn.Module):
    """Full-resolution logits W x + b at each pixel: a window sees what the whole image sees."""

    def __init__(self, num_classes=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(num_classes, 3, generator=g))
        self.bias = nn.Parameter(torch.randn(num_classes, generator=g))

    def forward(self, x):
        logits = torch.einsum("kc,nchw->nkhw", self.weight, x)
        return SegOutput(logits + self.bias.view(1, -1, 1, 1))


class QuarterWindowMean(Pointwise):
    """Quarter-resolution logits W avgpool4(x) + mean of the whole input: windows disagree."""

    def forward(self, x):
        pooled = F.avg_pool2d(x, 4)
        logits = super().forward(pooled).logits
        return SegOutput(logits + x.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1))


class Constant(nn.Module):
    """The same logits at every pixel, whatever the input (full resolution)."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values)

    def forward(self, x):
        n, _, h, w = x.shape
        return SegOutput(self.values.view(1, -1, 1, 1).expand(n, -1, h, w).clone())


class ColumnRamp(nn.Module):
    """One class whose logit is the column index (content-independent, not mirror-symmetric)."""

    def forward(self, x):
        n, _, h, w = x.shape
        ramp = torch.arange(w, dtype=x.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
        return SegOutput(torch.cat((ramp, torch.zeros_like(ramp)), dim=1))


class Recorder(nn.Module):
    """Wraps a model and keeps every input batch it receives."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return self.model(x)


def image(h, w, seed=0, n=1):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def pointwise_scores(model, img):
    """exp(W x + b) at every pixel of ``img`` for a :class:`Pointwise` model, in NumPy."""
    weight, bias = model.weight.detach().numpy(), model.bias.detach().numpy()
    logits = np.einsum("kc,nchw->nkhw", weight, img.numpy()) + bias[None, :, None, None]
    return torch.from_numpy(np.exp(logits))
