"""One evaluation loop for validation during training and for ``tools/test.py``.

Validation predicts whole images at one scale (``predict_whole_image``); testing runs the
configured procedure (``predict_by_protocol``: ``lib.evaluation.protocols.predict``).  Both
count the same confusion matrices, grouped by ``dataset.condition(name)`` (the ACDC conditions;
None for the others).
"""
import torch
from tqdm import tqdm

from ..utils.compat import stop_loader_workers
from .metrics import SegEvaluator
from .protocols import forward_logits, predict


def predict_whole_image(model, align_corners, amp_dtype=None):
    """Validation's prediction: N x 3 x H x W images -> N x K x H x W logits of each whole
    image at its own size, one forward, no flip."""
    return lambda images: forward_logits(model, images, flip=False, align_corners=align_corners,
                                         amp_dtype=amp_dtype)


def predict_by_protocol(model, settings):
    """Testing's prediction: the whole procedure of ``settings`` (its protocol, scales, single
    scale included, and flip), one image per call (N = 1)."""
    return lambda images: predict(model, images, settings)


@torch.no_grad()
def evaluate(predict_fn, loader, dataset, device, on_batch=None, progress=False):
    """Predict every batch of ``loader`` (this rank's shard of ``dataset``) with ``predict_fn``.

    Returns the SegEvaluator after its all-reduce, or None when the dataset has no labels.
    Collective when the dataset has labels: every rank must call it.  ``on_batch(images,
    predictions, names)`` receives each batch (N x 3 x H x W, N x H x W train ids) for
    prediction files and image summaries.  ``progress`` shows a progress bar.
    """
    evaluator = SegEvaluator(dataset.num_classes, ignore_label=dataset.ignore_label,
                             device=device) if dataset.has_labels else None
    batches = iter(loader)
    try:
        for batch in tqdm(batches, total=len(loader), desc="evaluating", disable=not progress):
            _evaluate_batch(batch, predict_fn, dataset, device, evaluator, on_batch)
    except BaseException:
        stop_loader_workers(batches)  # at once: a traceback would keep its workers alive until exit
        raise
    return evaluator.reduce() if evaluator is not None else None


def _evaluate_batch(batch, predict_fn, dataset, device, evaluator, on_batch):
    images, names = batch[0].to(device, non_blocking=True), batch[-1]
    preds = predict_fn(images).argmax(dim=1)
    if evaluator is not None:
        labels = batch[1].to(device, non_blocking=True)
        groups = [dataset.condition(name) for name in names]
        if all(group is None for group in groups):
            evaluator.update(preds, labels)
        else:
            for pred, label, group in zip(preds, labels, groups, strict=True):
                evaluator.update(pred, label, group=group)
    if on_batch is not None:
        on_batch(images, preds, names)
