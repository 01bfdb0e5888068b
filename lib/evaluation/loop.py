"""One evaluation for validation during training and for ``tools/test.py``: ``evaluate``.

Validation predicts whole images at one scale (``predict_whole_image``); testing runs the
configured procedure (``predict_by_protocol``: ``lib.evaluation.protocols.predict``).  Each
predicted batch goes, as a ``Batch``, to every consumer of predictions (anything with
``process(batch)``): the ``SegAccumulator`` that ``evaluate`` builds when the set has labels, and
the caller's own (prediction files, image summaries).  Counts are grouped by
``dataset.condition(name)`` (the ACDC conditions; None for the others).
"""
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from tqdm import tqdm

from ..models import input_normalization
from ..utils.compat import stop_loader_workers
from .accumulator import MeasureSettings, SegAccumulator
from .finite import NonFiniteOutputs
from .predictions import label_size_inputs, label_size_offsets, network_predictions
from .protocols import predict, scale_one_output, split_predictions

__all__ = ["Batch", "PredictionConsumer", "Evaluation", "evaluate", "predict_whole_image",
           "predict_by_protocol"]


@dataclass(frozen=True)
class Batch:
    """One predicted batch, as every consumer receives it.

    images: N x 3 x H x W on the device; names: the N file stems; preds: {field: N x H x W
    train ids} of every prediction of the network (``predictions.final_prediction`` is the evaluated
    one); offsets: N x 2 x H x W (x, y) in pixels of the label map and confidence: N x 1 x H x W,
    both None without offsets; labels: N x H x W on the device and groups: the N group names (None
    where none), both None for a set without labels.
    """

    images: torch.Tensor
    names: Sequence[str]
    preds: dict[str, torch.Tensor]
    offsets: torch.Tensor | None
    confidence: torch.Tensor | None
    labels: torch.Tensor | None
    groups: list | None


class PredictionConsumer(Protocol):
    """What ``evaluate`` hands each batch to."""

    def process(self, batch: Batch) -> None: ...


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate`` returns, the same on every rank.

    results: ``SegAccumulator.results`` ("final_prediction", "predictions", "boundary", "fusion"),
    None for a set without labels; confusion: K x K int64 (CPU) counts of the final prediction, rows
    = ground truth, None without labels; nonfinite: NaN and infinite values in the network's
    outputs, summed over ranks (a non-zero count makes the metrics meaningless).
    """

    results: dict | None
    confusion: torch.Tensor | None
    nonfinite: int


def predict_whole_image(model, align_corners, amp_dtype=None):
    """Validation's prediction: each whole image of N x 3 x H x W at its own size, one forward,
    no flip.  Returns ``{"preds": {field: N x H x W}, "offsets", "confidence"}`` for every
    prediction of the network (``predictions.label_size_inputs``)."""
    def predict_fn(images):
        output = scale_one_output(model, images, amp_dtype=amp_dtype)
        return label_size_inputs(output, images.shape[-2:], align_corners)
    return predict_fn


def predict_by_protocol(model, settings):
    """Testing's prediction: the whole procedure of ``settings`` (its protocol, scales, single
    scale included, and flip) for every prediction of the network from the same forwards, one image
    per call (N = 1).  The images come normalised as the network says; the padding and the first
    resize use the network's normalisation (``input_normalization``), whatever
    ``settings.normalization`` holds.  The offsets and the confidence of an offset network (for
    the fusion histograms) are those of the image at scale 1, one more forward."""
    predictions = network_predictions(model)
    settings = replace(settings, predictions=predictions, normalization=input_normalization(model))

    def predict_fn(images):
        scores = split_predictions(predict(model, images, settings), predictions)
        maps = {"offsets": None, "confidence": None}
        if "fused_logits" in predictions:
            output = scale_one_output(model, images, settings.base_size, settings.amp_dtype)
            maps = label_size_offsets(output, images.shape[-2:], settings.align_corners)
        return {"preds": {p: s.max(dim=1).indices for p, s in scores.items()}, **maps}
    return predict_fn


@torch.no_grad()
def evaluate(model, predict_fn, loader, dataset, device, measures: MeasureSettings, *,
             consumers: Sequence[PredictionConsumer] = (), progress=False) -> Evaluation:
    """Collective: predict every batch of ``loader`` (this rank's shard of ``dataset``) with
    ``predict_fn`` (``predict_whole_image`` or ``predict_by_protocol`` of ``model``), count
    every prediction of ``model`` in a ``SegAccumulator`` (when the set has labels; ``measures``:
    its bands and bins), hand each ``Batch`` to ``consumers`` after it, and sum over the ranks.

    Every rank must call it.  Nothing is read back from the device inside the image loop: the
    counts and the non-finite outputs of every forward of ``model`` (``NonFiniteOutputs``)
    are read once after it.  ``progress`` shows a progress bar.
    """
    accumulator = None
    if dataset.has_labels:
        accumulator = SegAccumulator(dataset.num_classes, network_predictions(model),
                                     ignore_label=dataset.ignore_label, measures=measures,
                                     device=device)
    with NonFiniteOutputs(model, device) as outputs:
        _predict_all(predict_fn, loader, dataset, device,
                     [accumulator, *consumers] if accumulator is not None else consumers,
                     progress)
    if accumulator is None:
        return Evaluation(None, None, outputs.total())
    accumulator.reduce()
    results = accumulator.results(dataset.class_names)
    confusion = accumulator.confusion(results["final_prediction"]).cpu()
    return Evaluation(results, confusion, outputs.total())


def _predict_all(predict_fn, loader, dataset, device, consumers, progress):
    batches = iter(loader)
    try:
        for batch in tqdm(batches, total=len(loader), desc="evaluating", disable=not progress):
            predicted = _predicted_batch(batch, predict_fn, dataset, device)
            for consumer in consumers:
                consumer.process(predicted)
    except BaseException:
        stop_loader_workers(batches)  # at once: a traceback would keep its workers alive until exit
        raise


def _predicted_batch(batch, predict_fn, dataset, device):
    images, names = batch[0].to(device, non_blocking=True), batch[-1]
    predicted = predict_fn(images)
    labels = groups = None
    if dataset.has_labels:
        labels = batch[1].to(device, non_blocking=True)
        groups = [dataset.condition(name) for name in names]
    return Batch(images, names, predicted["preds"], predicted["offsets"],
                 predicted["confidence"], labels, groups)
