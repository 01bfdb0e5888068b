"""A small made-up evaluation: SegAccumulator over blocky labels and predictions of known
quality."""
import torch
import torch.nn.functional as F

from lib.evaluation.accumulator import SegAccumulator

OFFSET_PREDICTIONS = ("logits", "seed_logits", "fused_logits")


def analysed(class_names, predictions=OFFSET_PREDICTIONS, seed=0, n=4, h=48, w=96):
    """The reduced SegAccumulator: prediction i is the labels shifted by 2 - i pixels, with
    (15 - 3 i)% of the pixels set to a neighbouring class."""
    k = len(class_names)
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, k, (n, 1, 6, 12), generator=g).float()
    labels = F.interpolate(coarse, size=(h, w), mode="nearest").long()[:, 0]
    labels[torch.rand(labels.shape, generator=g) < 0.05] = 255
    clean = labels.clamp(max=k - 1)
    preds = {}
    for i, field in enumerate(predictions):
        wrong = (clean + torch.randint(1, 3, labels.shape, generator=g)) % k
        noise = torch.rand(labels.shape, generator=g) < 0.15 - 0.03 * i
        preds[field] = torch.where(noise, wrong, clean.roll(2 - i, dims=2))
    fused = len(predictions) > 1
    analysis = SegAccumulator(k, list(predictions))
    analysis.update(preds, labels,
                    offsets=6 * torch.randn(n, 2, h, w, generator=g) if fused else None,
                    confidence=torch.rand(n, 1, h, w, generator=g) if fused else None)
    return analysis.reduce()


def results_json(class_names, predictions=OFFSET_PREDICTIONS, seed=0):
    """The figures of a results.json as tools/test.py writes them."""
    return analysed(class_names, predictions, seed).results(class_names)
