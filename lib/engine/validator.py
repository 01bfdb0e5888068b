"""Validation during training: single-scale mIoU of the validation set, logged and drawn."""
import logging

from ..datasets.transforms import MEAN, STD
from ..evaluation.loop import evaluate, predict_whole_image
from ..evaluation.metrics import format_table
from ..evaluation.protocols import scale_one_output
from ..utils.visualize import denormalize, prediction_panels

logger = logging.getLogger(__name__)


class Validator:
    """``validator(model, iteration)`` -> mIoU: every rank predicts its shard of ``dataset``
    whole, at one scale, without flipping (collective); rank 0 logs the table, and the mIoU,
    per-class IoU and the first image's panels go to ``writer`` when there is one."""

    def __init__(self, loader, dataset, device, *, align_corners, amp_dtype=None, writer=None):
        self.loader, self.dataset, self.device = loader, dataset, device
        self.align_corners, self.amp_dtype, self.writer = align_corners, amp_dtype, writer

    def __call__(self, model, iteration):
        shown = []

        def summary_of_first_batch(images, preds, names):
            if not shown and self.writer is not None:
                self.image_summary(model, images, iteration)
                shown.append(True)

        evaluator = evaluate(predict_whole_image(model, self.align_corners, self.amp_dtype),
                             self.loader, self.dataset, self.device, summary_of_first_batch)
        results = evaluator.results(self.dataset.class_names)
        logger.info("validation at iteration %d:\n%s", iteration,
                    format_table(results, self.dataset.class_names))
        if self.writer is not None:
            self.writer.add_scalar("val/mIoU", results["mIoU"], iteration)
            for name, iou in results["IoU"].items():
                self.writer.add_scalar(f"val_IoU/{name.replace(' ', '_')}", iou, iteration)
        return results["mIoU"]

    def image_summary(self, model, images, iteration):
        output = scale_one_output(model, images[:1], amp_dtype=self.amp_dtype)
        panels = prediction_panels(denormalize(images[0].cpu(), MEAN, STD), output,
                                   self.dataset.palette, align_corners=self.align_corners)
        for name, rgb in panels.items():
            self.writer.add_image(f"val/{name}", rgb, iteration, dataformats="HWC")
