"""Prediction files of an evaluation: label-id and colour PNGs, and the image panels."""
import os
from dataclasses import dataclass

import torch

from ..datasets.transforms import MEAN, STD
from ..utils.visualize import colorize, denormalize, prediction_panels, save_png
from .protocols import scale_one_output


@dataclass(frozen=True)
class PredictionFiles:
    """What to write under an output folder."""

    save_pred: bool  # predictions/labelIds/<name>.png (dataset label ids) and predictions/color/
    visualize: bool  # visualizations/<name>_<panel>.png of the network's maps at scale 1
    base_size: int  # long side of an image at scale 1 (TEST.BASE_SIZE)
    align_corners: bool
    amp_dtype: torch.dtype | None = None  # autocast of the scale-1 forward (TRAIN.AMP)


class PredictionWriter:
    """``on_batch`` of ``lib.evaluation.loop.evaluate``: writes the files of each image, and
    the panels also to a TensorBoard ``writer`` when one is given."""

    def __init__(self, output_dir, dataset, model, files: PredictionFiles, writer=None):
        self.output_dir, self.dataset, self.model = output_dir, dataset, model
        self.files, self.writer = files, writer
        self.to_label_id = torch.tensor(dataset.train_id_to_label, dtype=torch.uint8)
        self.count = 0

    def __call__(self, images, preds, names):
        for image, pred, name in zip(images, preds, names, strict=True):
            if self.files.save_pred:
                self._save_prediction(pred.cpu(), name)
            if self.files.visualize:
                self._save_panels(image[None], name)
            self.count += 1

    def _save_prediction(self, pred, name):
        folder = os.path.join(self.output_dir, "predictions")
        save_png(os.path.join(folder, "labelIds", f"{name}.png"),
                 self.to_label_id[pred.long()].numpy())
        save_png(os.path.join(folder, "color", f"{name}.png"),
                 colorize(pred, self.dataset.palette))

    def _save_panels(self, image, name):
        output = scale_one_output(self.model, image, self.files.base_size,
                                  self.files.amp_dtype)
        rgb = denormalize(image[0].cpu(), MEAN, STD)
        panels = prediction_panels(rgb, output, self.dataset.palette,
                                   align_corners=self.files.align_corners)
        for panel, picture in panels.items():
            save_png(os.path.join(self.output_dir, "visualizations", f"{name}_{panel}.png"),
                     picture)
            if self.writer is not None:
                self.writer.add_image(f"{name}/{panel}", picture, self.count, dataformats="HWC")
