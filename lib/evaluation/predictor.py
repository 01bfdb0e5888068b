"""Segment one image with one call: ``Predictor(cfg)(image)``.

    from ovenet.config import load_cfg          # installed; "lib" in the checkout's scripts
    from ovenet.evaluation.predictor import Predictor

    predictor = Predictor(load_cfg("experiments/<...>.yaml"), model_file="best.pth")
    result = predictor("street.png")            # a path, an RGB uint8 array or a PIL image
    result.labels                               # H x W train ids at the image's size

The network is built once; every call runs the evaluation procedure of ``tools/test.py``
(TEST.SCALE_LIST, TEST.FLIP_TEST, sliding windows above scale 1: ``lib.evaluation.protocols``) on
the image normalised as the network says (``input_normalization``, as the datasets do), so a
file and its pixels give the same labels as ``tools/test.py --save-pred`` does for that file.
"""
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..datasets import dataset_tables
from ..datasets.files import read_image
from ..models import SegOutput, build_eval_model, input_normalization
from ..utils.device import select_device
from .predictions import label_size_offsets
from .protocols import InferenceSettings, predict, scale_one_output

__all__ = ["Predictor", "Prediction"]


@dataclass(frozen=True)
class Prediction:
    """What ``Predictor`` returns for an H x W image; NumPy arrays on the CPU.

    labels:     H x W int64 train ids 0..K-1: the argmax of the scores.
    label_ids:  H x W dataset label ids (the dataset's ``train_id_to_label``; Cityscapes label
                ids for Cityscapes and ACDC), what the benchmark servers take.
    scores:     K x H x W float32 scores added over scales and windows (TEST.ACCUMULATE), when
                asked for (``return_scores=True``), else None.
    offsets:    2 x H x W float32 offset field in pixels of the input image, channel 0 = x (to
                the right), 1 = y (downwards): the seed of pixel (x, y) is (x + offsets[0, y, x],
                y + offsets[1, y, x]).  Offset networks only, else None.
    confidence: H x W float32 confidence F in [0, 1] of the seed over the pixel's own logits
                (S_f = (1 - F) S_i + F S_s).  Offset networks only, else None.
    output:     the network's ``SegOutput`` at scale 1 (the image resized to the long side
                TEST.BASE_SIZE; maps at 1/4 of that, batch of one), from which ``offsets`` and
                ``confidence`` are made; for pictures (``lib.utils.visualize.prediction_panels``).

    ``offsets``, ``confidence`` and ``output`` come from one extra forward at scale 1, resized
    bilinearly (MODEL.ALIGN_CORNERS) to H x W; they are None with ``return_maps=False``.
    """

    labels: np.ndarray
    label_ids: np.ndarray
    scores: np.ndarray | None = None
    offsets: np.ndarray | None = None
    confidence: np.ndarray | None = None
    output: SegOutput | None = None


def image_to_bgr(image) -> np.ndarray:
    """H x W x 3 uint8 BGR (the datasets' order) from a path, an RGB uint8 array or a PIL image.

    A path is read as the datasets read it (``read_image``, which names the file when it cannot
    be decoded); a PIL image of any mode is converted to RGB first.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(os.fspath(image))
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        return image[..., ::-1]
    shape = getattr(image, "shape", None)
    raise TypeError(f"Predictor takes an image path, an H x W x 3 uint8 RGB array or a PIL image; "
                    f"got {type(image).__name__}"
                    + (f" of shape {tuple(shape)} and dtype {image.dtype}" if shape else ""))


class Predictor:
    """A network built once from a loaded config, for one call per image.

    Args:
        cfg: a loaded config (``lib.config.load_cfg``): MODEL.* builds the network, TEST.* and
            MODEL.ALIGN_CORNERS set the inference (``InferenceSettings.from_config``),
            TRAIN.AMP the autocast, DATASET.DATASET the label-id table.
        model_file: the weights; empty or None takes TEST.MODEL_FILE.
        device: where the network runs ("cpu", "cuda", "cuda:1" or a torch.device); None = the
            first CUDA device when there is one, else the CPU (``lib.utils.device``).
    """

    def __init__(self, cfg, model_file: str | None = None, device=None):
        self.device = select_device(None if device is None else str(device))
        tables = dataset_tables(cfg)  # checks DATASET.NUM_CLASSES against the class table
        self.train_id_to_label = np.asarray(tables.train_id_to_label)
        self.class_names, self.palette = tables.class_names, tables.palette
        self.model = build_eval_model(cfg, model_file or cfg.TEST.MODEL_FILE, self.device)
        self.normalization = input_normalization(self.model)
        self.settings = InferenceSettings.from_config(cfg, self.normalization)

    def __call__(self, image, return_scores: bool = False,
                 return_maps: bool = True) -> Prediction:
        """The ``Prediction`` of one image (path, H x W x 3 uint8 RGB array or PIL image).

        ``return_maps=False`` skips the scale-1 forward of the offset and confidence maps (the
        labels do not need it).
        """
        bgr = image_to_bgr(image)
        x = torch.from_numpy(self.normalization.normalize(bgr))[None].to(self.device)
        scores = predict(self.model, x, self.settings)[0]
        labels = scores.argmax(dim=0).cpu().numpy()
        maps = self._maps(x) if return_maps else {}
        return Prediction(labels=labels, label_ids=self.train_id_to_label[labels],
                          scores=scores.cpu().numpy() if return_scores else None, **maps)

    @torch.inference_mode()
    def _maps(self, x):
        """``output`` at scale 1, and its offsets (input pixels) and confidence at x's size."""
        output = scale_one_output(self.model, x, self.settings.base_size,
                                  self.settings.amp_dtype)
        if output.offsets is None:
            return {"output": output}
        maps = label_size_offsets(output, x.shape[-2:], self.settings.align_corners)
        return {"output": output, "offsets": maps["offsets"][0].cpu().numpy(),
                "confidence": maps["confidence"][0, 0].cpu().numpy()}
