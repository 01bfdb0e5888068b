"""A hand-made offset network and labelled batches for the Validator, without a config."""
import torch
import torch.nn as nn

from lib.engine.validator import Validator
from lib.evaluation.accumulator import MeasureSettings
from lib.models import SegOutput
from lib.utils.normalization import IMAGENET

CLASSES = ("road", "sky", "car")


class PixelOffsetNet(nn.Module):
    """An offset network of one 1x1 convolution: logits at the input's resolution, zero offsets,
    S_s = S_f = S_i, and the confidence 0.5 except at ``nan_pixels`` (row, column) of every image,
    where it is NaN, as a diverged network's is."""

    PREDICTIONS = ("logits", "seed_logits", "fused_logits")
    normalization = IMAGENET

    def __init__(self, nan_pixels=()):
        super().__init__()
        self.conv = nn.Conv2d(3, len(CLASSES), 1)
        self.nan_pixels = list(nan_pixels)

    def forward(self, x):
        logits = self.conv(x)
        n, _, h, w = logits.shape
        confidence = x.new_full((n, 1, h, w), 0.5)
        for row, col in self.nan_pixels:
            confidence[:, :, row, col] = float("nan")
        return SegOutput(logits, offsets=x.new_zeros(n, 2, h, w), seed_logits=logits,
                         fused_logits=logits, confidence=confidence)


class Labelled:
    """What the Validator reads of a dataset: classes, the ignore label, no conditions."""

    class_names = CLASSES
    num_classes = len(CLASSES)
    ignore_label = 255
    has_labels = True
    palette = [(128, 64, 128), (70, 130, 180), (0, 0, 142)]

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size

    def condition(self, name):
        return None


def batches(count, labels_of=lambda labels: labels % 2, batch_size=2, h=4, w=6):
    """``count`` batches (images, labels, names) of random images; the labels ``labels_of`` an
    arange (default: classes 0 and 1 only, so "car" is absent)."""
    generator = torch.Generator().manual_seed(0)
    made = []
    for b in range(count):
        images = torch.randn(batch_size, 3, h, w, generator=generator)
        labels = labels_of(torch.arange(batch_size * h * w).view(batch_size, h, w))
        made.append((images, labels, [f"image{b}_{i}" for i in range(batch_size)]))
    return made


def validator(loader, writer=None):
    """A Validator of ``loader`` (a list of batches) on the CPU."""
    dataset = Labelled(sum(len(names) for *_, names in loader))
    return Validator(loader, dataset, torch.device("cpu"), align_corners=False, writer=writer,
                     measures=MeasureSettings(bands=(1,)))
