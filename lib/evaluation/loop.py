"""One evaluation loop for validation during training and for ``tools/test.py``.

Validation predicts whole images at one scale (``predict_whole_image``); testing runs the
configured procedure (``predict_by_protocol``: ``lib.evaluation.protocols.predict``).  Both
count the same confusion matrices, grouped by ``dataset.condition(name)`` (the ACDC conditions;
None for the others).
"""
from dataclasses import replace

import torch
from tqdm import tqdm

from ..utils.compat import stop_loader_workers
from .analysis import SegAnalysis
from .heads import final_head, label_size_inputs, label_size_offsets, network_heads
from .metrics import SegEvaluator
from .protocols import predict, scale_one_output, split_heads


def predict_whole_image(model, align_corners, amp_dtype=None):
    """Validation's prediction: each whole image of N x 3 x H x W at its own size, one forward,
    no flip.  Returns ``{"preds": {head: N x H x W}, "offsets", "confidence"}`` for every head
    of the network (``heads.label_size_inputs``)."""
    def predict_fn(images):
        output = scale_one_output(model, images, amp_dtype=amp_dtype)
        return label_size_inputs(output, images.shape[-2:], align_corners)
    return predict_fn


def predict_by_protocol(model, settings):
    """Testing's prediction: the whole procedure of ``settings`` (its protocol, scales, single
    scale included, and flip) for every head of the network from the same forwards, one image
    per call (N = 1).  The offsets and the confidence of an offset network (for the fusion
    histograms) are those of the image at scale 1, one more forward."""
    heads = network_heads(model)
    settings = replace(settings, heads=heads)

    def predict_fn(images):
        scores = split_heads(predict(model, images, settings), heads)
        maps = {"offsets": None, "confidence": None}
        if "fused_logits" in heads:
            output = scale_one_output(model, images, settings.base_size, settings.amp_dtype)
            maps = label_size_offsets(output, images.shape[-2:], settings.align_corners)
        return {"preds": {h: s.max(dim=1).indices for h, s in scores.items()}, **maps}
    return predict_fn


def build_analysis(model, dataset, device, *, bands, boundary_ratio):
    """The ``SegAnalysis`` of every head of ``model`` on ``dataset`` (TEST.TRIMAP_BANDS,
    TEST.BOUNDARY_IOU_RATIO), or None when the dataset has no labels."""
    if not dataset.has_labels:
        return None
    return SegAnalysis(dataset.num_classes, network_heads(model), ignore_label=dataset.ignore_label,
                       bands=bands, boundary_ratio=boundary_ratio, device=device)


@torch.no_grad()
def evaluate(predict_fn, loader, dataset, device, analysis=None, on_batch=None, progress=False):
    """Predict every batch of ``loader`` (this rank's shard of ``dataset``) with ``predict_fn``
    (``predict_whole_image`` or ``predict_by_protocol``).

    Returns the SegEvaluator of the final head after its all-reduce, or None when the dataset
    has no labels; ``analysis`` (a ``SegAnalysis``), when given, is updated with every head and
    reduced too.  Collective when the dataset has labels: every rank must call it.
    ``on_batch(images, predictions, names)`` receives each batch (N x 3 x H x W, {head: N x H x W
    train ids} of every head, ``heads.final_head`` the evaluated one) for prediction files and
    image summaries.  ``progress`` shows
    a progress bar.
    """
    evaluator = SegEvaluator(dataset.num_classes, ignore_label=dataset.ignore_label,
                             device=device) if dataset.has_labels else None
    batches = iter(loader)
    try:
        for batch in tqdm(batches, total=len(loader), desc="evaluating", disable=not progress):
            _evaluate_batch(batch, predict_fn, dataset, device, evaluator, analysis, on_batch)
    except BaseException:
        stop_loader_workers(batches)  # at once: a traceback would keep its workers alive until exit
        raise
    if analysis is not None:
        analysis.reduce()
    return evaluator.reduce() if evaluator is not None else None


def _evaluate_batch(batch, predict_fn, dataset, device, evaluator, analysis, on_batch):
    images, names = batch[0].to(device, non_blocking=True), batch[-1]
    predicted = predict_fn(images)
    preds = predicted["preds"][final_head(predicted["preds"])]
    if evaluator is not None:
        labels = batch[1].to(device, non_blocking=True)
        groups = [dataset.condition(name) for name in names]
        if all(group is None for group in groups):
            evaluator.update(preds, labels)
        else:
            for pred, label, group in zip(preds, labels, groups, strict=True):
                evaluator.update(pred, label, group=group)
        if analysis is not None:
            analysis.update(predicted["preds"], labels, offsets=predicted["offsets"],
                            confidence=predicted["confidence"], groups=groups)
    if on_batch is not None:
        on_batch(images, predicted["preds"], names)
