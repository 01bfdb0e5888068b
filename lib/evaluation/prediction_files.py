"""Prediction files of an evaluation: label-id and colour PNGs, and the image panels."""
import os
from dataclasses import dataclass

import torch

from ..config import amp_dtype_of
from ..models import input_normalization
from ..utils.visualize import colorize, prediction_panels, save_png
from .predictions import final_prediction
from .protocols import scale_one_output


@dataclass(frozen=True)
class PredictionFiles:
    """What to write under an output folder."""

    save_pred: bool  # predictions/labelIds/<name>.png (dataset label ids) and predictions/color/
    visualize: bool  # visualizations/<name>_<panel>.png of the network's maps at scale 1
    base_size: int  # long side of an image at scale 1 (TEST.BASE_SIZE)
    align_corners: bool
    amp_dtype: torch.dtype | None = None  # autocast of the scale-1 forward (TRAIN.AMP)
    # predictions/<field>/<name>.png: the dataset label ids of every prediction ("logits",
    # "seed_logits", "fused_logits", "region_logits", ...), by the same procedure as the final's
    save_every_prediction: bool = False

    @classmethod
    def from_config(cls, cfg, save_pred: bool = False) -> "PredictionFiles":
        """TEST.SAVE_PRED (or ``save_pred``, tools/test.py --save-pred), TEST.VISUALIZATION,
        TEST.SAVE_EVERY_PREDICTION, TEST.BASE_SIZE, MODEL.ALIGN_CORNERS and the autocast of
        TRAIN.AMP."""
        return cls(save_pred=bool(save_pred or cfg.TEST.SAVE_PRED),
                   visualize=bool(cfg.TEST.VISUALIZATION), base_size=int(cfg.TEST.BASE_SIZE),
                   align_corners=bool(cfg.MODEL.ALIGN_CORNERS), amp_dtype=amp_dtype_of(cfg),
                   save_every_prediction=bool(cfg.TEST.SAVE_EVERY_PREDICTION))

    @property
    def writes_any(self) -> bool:
        return self.save_pred or self.save_every_prediction or self.visualize

    def describe(self) -> str:
        """What is written, e.g. "predictions and visualizations"."""
        return " and ".join(name for name, on in (
            ("predictions", self.save_pred or self.save_every_prediction),
            ("visualizations", self.visualize)) if on)


class PredictionWriter:
    """A consumer of ``lib.evaluation.loop.evaluate``'s batches: writes the files of each image,
    and the panels also to a TensorBoard ``writer`` when one is given."""

    def __init__(self, output_dir, dataset, model, files: PredictionFiles, writer=None):
        self.output_dir, self.dataset, self.model = output_dir, dataset, model
        self.files, self.writer = files, writer
        self.to_label_id = torch.tensor(dataset.train_id_to_label, dtype=torch.uint8)
        self.count = 0

    def process(self, batch) -> None:
        """The files of every image of a ``loop.Batch``: ``save_pred`` those of the final
        prediction (``predictions.final_prediction``), ``save_every_prediction`` every
        prediction's."""
        preds = batch.preds
        final = final_prediction(preds)
        for i, (image, name) in enumerate(zip(batch.images, batch.names, strict=True)):
            if self.files.save_pred:
                self._save_prediction(preds[final][i].cpu(), name)
            if self.files.save_every_prediction:
                for field, pred in preds.items():
                    self._save_label_ids(field, pred[i].cpu(), name)
            if self.files.visualize:
                self._save_panels(image[None], name)
            self.count += 1

    def _save_prediction(self, pred, name):
        self._save_label_ids("labelIds", pred, name)
        save_png(os.path.join(self.output_dir, "predictions", "color", f"{name}.png"),
                 colorize(pred, self.dataset.palette))

    def _save_label_ids(self, folder, pred, name):
        save_png(os.path.join(self.output_dir, "predictions", folder, f"{name}.png"),
                 self.to_label_id[pred.long()].numpy())

    def _save_panels(self, image, name):
        output = scale_one_output(self.model, image, self.files.base_size,
                                  self.files.amp_dtype)
        rgb = input_normalization(self.model).to_rgb(image[0])
        panels = prediction_panels(rgb, output, self.dataset.palette,
                                   align_corners=self.files.align_corners)
        for panel, picture in panels.items():
            save_png(os.path.join(self.output_dir, "visualizations", f"{name}_{panel}.png"),
                     picture)
            if self.writer is not None:
                self.writer.add_image(f"{name}/{panel}", picture, self.count, dataformats="HWC")
