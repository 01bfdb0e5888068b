"""How a network wants its input image: ``ImageNormalization``, and ``IMAGENET``.

Every network carries its own (``lib.models.input_normalization(model)``, the ``normalization``
attribute of the networks, as timm's models carry theirs in ``pretrained_cfg``): the datasets,
the evaluation protocols, the Predictor and the pictures take it from there, so a network
trained with other statistics needs one change, in the network.

Images on disk are 8-bit BGR H x W x 3 (as OpenCV reads them); the networks take float32 RGB
3 x H x W tensors ``(x / 255 - mean) / std``.
"""
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ImageNormalization", "IMAGENET"]


@dataclass(frozen=True)
class ImageNormalization:
    """Per-channel statistics of RGB values in [0, 1]: an input is ``(x / 255 - mean) / std``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def normalize(self, bgr: np.ndarray) -> np.ndarray:
        """float32 3 x H x W RGB ``(x / 255 - mean) / std`` from a BGR uint8 H x W x 3 image."""
        h, w = bgr.shape[:2]
        out = np.empty((3, h, w), dtype=np.float32)
        for c in range(3):  # RGB channel c is BGR channel 2 - c
            np.multiply(bgr[:, :, 2 - c], np.float32(1.0 / (255.0 * self.std[c])), out=out[c])
            out[c] -= np.float32(self.mean[c] / self.std[c])
        return out

    def to_rgb(self, image: torch.Tensor) -> np.ndarray:
        """H x W x 3 uint8 RGB of a normalised 3 x H x W tensor: (x * std + mean) * 255, rounded
        to whole grey levels (the inverse of ``normalize`` for 8-bit images)."""
        mean = image.new_tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = image.new_tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        rgb = (image.detach().float() * std + mean).mul(255.0).round().clamp(0, 255)
        return rgb.to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    @property
    def black(self) -> tuple[float, float, float]:
        """A black pixel (RGB 0, 0, 0) in normalised units."""
        return tuple(-m / s for m, s in zip(self.mean, self.std, strict=True))

    @property
    def mean_bgr_255(self) -> tuple[float, float, float]:
        """The mean colour in BGR grey levels (not rounded), what the references pad with."""
        return tuple(255.0 * m for m in reversed(self.mean))


# The ImageNet statistics, which the ImageNet-pretrained HRNet weights were trained with.
IMAGENET = ImageNormalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
