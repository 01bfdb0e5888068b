"""Validation during training: single-scale mIoU of the validation set, logged, drawn and
recorded (``validation/iter<k>.json`` in the run folder: the results.json blocks of every
validation, so that a run's fusion split and histograms can be followed over training)."""
import logging
import os

from ..evaluation.accumulator import MeasureSettings
from ..evaluation.figures import figure_image
from ..evaluation.finite import NonFiniteOutputError
from ..evaluation.loop import evaluate, predict_whole_image
from ..evaluation.protocols import scale_one_output
from ..evaluation.report import report
from ..evaluation.results import final_metrics, json_safe
from ..models import input_normalization
from ..utils import distributed as dist
from ..utils.atomic import write_json
from ..utils.logger import add_finite_scalars
from ..utils.visualize import prediction_panels
from .out_of_memory import InputWatch, OutOfMemoryMessage, explain_out_of_memory

logger = logging.getLogger(__name__)


class Validator:
    """``validator(model, iteration)`` -> mIoU of the final prediction, a fraction: every rank
    predicts its shard of ``dataset`` whole, at one scale, without flipping (collective); rank 0
    logs the tables of every prediction, the boundaries and the fusion (``lib.evaluation.report``,
    with the trimap bands and the Boundary IoU width of ``measures``), and the mIoU, per-class and
    per-prediction IoU (in per cent, as the tables), the figures and the first image's panels go to
    ``writer`` when there is one (undefined values, such as the IoU of a class absent from the
    set, are left out).  Out of device memory, it raises the ``OutOfMemoryRunError`` of
    ``oom_message`` (default: named by the network's class); when the network's outputs hold
    NaN or infinite values, a ``NonFiniteOutputError`` naming the iteration, before the tables
    and the scalars.  With ``record_dir``, rank 0 writes each validation's results there as
    ``iter<k>.json`` (k = the iteration, seven digits)."""

    def __init__(self, loader, dataset, device, *, align_corners, amp_dtype=None, writer=None,
                 measures: MeasureSettings, oom_message=None, record_dir=None):
        self.loader, self.dataset, self.device = loader, dataset, device
        self.align_corners, self.amp_dtype, self.writer = align_corners, amp_dtype, writer
        self.measures = measures
        self.oom_message, self.record_dir = oom_message, record_dir

    def __call__(self, model, iteration):
        message = self.oom_message or OutOfMemoryMessage.of_model("validation", model)
        watch = InputWatch(predict_whole_image(model, self.align_corners, self.amp_dtype))
        panels = [_FirstImagePanels(self, model, iteration)] if self.writer is not None else []
        with explain_out_of_memory(message, self.device, watch):
            evaluation = evaluate(model, watch, self.loader, self.dataset, self.device,
                                  self.measures, consumers=panels)
        if evaluation.nonfinite:
            raise NonFiniteOutputError(
                f"validation at iteration {iteration}: the network's outputs are not finite "
                f"({evaluation.nonfinite} NaN or infinite values on the {len(self.dataset)} "
                f"validation images)")
        tables, figures = report(evaluation, figures=self.writer is not None)
        logger.info("validation at iteration %d:\n%s", iteration, tables)
        if self.writer is not None:
            self._write_summaries(evaluation.results, figures, iteration)
        if self.record_dir is not None and dist.get_rank() == 0:
            self._record(evaluation.results, iteration)
        return final_metrics(evaluation.results)["mIoU"]

    def _record(self, results, iteration):
        write_json(os.path.join(self.record_dir, f"iter{iteration:07d}.json"),
                   json_safe({"iteration": iteration, **results}), indent=None)

    def _write_summaries(self, results, figures, iteration):
        final = final_metrics(results)
        # Percentages, as in the logs and the printed tables (the JSON records keep fractions).
        scalars = {"val/mIoU": 100.0 * final["mIoU"],
                   **{f"val_IoU/{name.replace(' ', '_')}": 100.0 * iou
                      for name, iou in final["IoU"].items()},
                   **{f"val_predictions/mIoU_{field}": 100.0 * metrics["mIoU"]
                      for field, metrics in results["predictions"].items()}}
        add_finite_scalars(self.writer, scalars, iteration)  # an absent class has no IoU (NaN)
        for name, figure in figures.items():
            self.writer.add_image(f"val_analysis/{name[:-4]}", figure_image(figure), iteration,
                                  dataformats="HWC")

    def image_summary(self, model, images, iteration):
        output = scale_one_output(model, images[:1], amp_dtype=self.amp_dtype)
        panels = prediction_panels(input_normalization(model).to_rgb(images[0]), output,
                                   self.dataset.palette, align_corners=self.align_corners)
        for name, rgb in panels.items():
            self.writer.add_image(f"val/{name}", rgb, iteration, dataformats="HWC")


class _FirstImagePanels:
    """A consumer of the validation's batches: ``Validator.image_summary`` of the first one."""

    def __init__(self, validator, model, iteration):
        self.validator, self.model, self.iteration = validator, model, iteration
        self.done = False

    def process(self, batch):
        if not self.done:
            self.validator.image_summary(self.model, batch.images, self.iteration)
            self.done = True
