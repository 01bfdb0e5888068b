"""Object-contextual representations (OCR, Yuan et al. 2020), the head of HRNet-OCR.

Module and attribute names follow the official HRNet-OCR code so that its checkpoints load:
``ocr_gather_head`` is ``SpatialGather`` (no parameters) and ``ocr_distri_head`` is
``SpatialOCR`` with ``object_context_block`` (``f_pixel``, ``f_object``, ``f_down``, ``f_up``) and
``conv_bn_dropout``.  Every batch norm is followed by a ReLU inside a two-module Sequential, which
is what gives the official keys their ``.1.0.`` parts.

Shapes: features B x C x h x w, soft object regions B x K x h x w, object representations
B x C x K x 1 (one C-vector per class).
"""
from dataclasses import dataclass

import torch
import torch.nn as nn

from .hrnet import BN_MOMENTUM, head


@dataclass(frozen=True)
class OCRSettings:
    """Widths and constants of the OCR head (MODEL.OCR.*); the defaults are the published ones."""

    mid_channels: int = 512
    key_channels: int = 256
    dropout: float = 0.05
    scale: float = 1.0


DEFAULT_OCR = OCRSettings()


def _bn_relu(channels):
    return nn.Sequential(nn.BatchNorm2d(channels, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))


def _conv1x1(in_channels, out_channels):
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class SpatialGather(nn.Module):
    """Object representations: the features averaged over pixels, weighted per class.

    forward(feats B x C x h x w, regions B x K x h x w logits) -> B x C x K x 1.  The weights of
    class k are softmax over all h*w pixels of ``scale * regions[:, k]``.
    """

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, feats, regions):
        weights = (self.scale * regions.flatten(2)).softmax(dim=2)  # B x K x hw
        objects = weights @ feats.flatten(2).transpose(1, 2)  # B x K x C
        return objects.transpose(1, 2).unsqueeze(3)


class ObjectAttention(nn.Module):
    """Pixel-to-object attention: each pixel reads the object representations it resembles.

    forward(feats B x C x h x w, objects B x C x K x 1) -> context B x C x h x w.
    Queries f_pixel(feats) and keys f_object(objects) have ``key_channels``; the similarity is
    scaled by key_channels^-1/2 and normalised by a softmax over the K objects.
    """

    def __init__(self, in_channels: int, key_channels: int):
        super().__init__()
        self.key_channels = key_channels
        self.f_pixel = nn.Sequential(_conv1x1(in_channels, key_channels), _bn_relu(key_channels),
                                     _conv1x1(key_channels, key_channels), _bn_relu(key_channels))
        self.f_object = nn.Sequential(_conv1x1(in_channels, key_channels), _bn_relu(key_channels),
                                      _conv1x1(key_channels, key_channels), _bn_relu(key_channels))
        self.f_down = nn.Sequential(_conv1x1(in_channels, key_channels), _bn_relu(key_channels))
        self.f_up = nn.Sequential(_conv1x1(key_channels, in_channels), _bn_relu(in_channels))

    def forward(self, feats, objects):
        b, _, h, w = feats.shape
        query = self.f_pixel(feats).flatten(2).transpose(1, 2)  # B x hw x Ck
        key = self.f_object(objects).flatten(2)  # B x Ck x K
        value = self.f_down(objects).flatten(2).transpose(1, 2)  # B x K x Ck
        attention = ((query @ key) * self.key_channels ** -0.5).softmax(dim=-1)  # B x hw x K
        context = (attention @ value).transpose(1, 2).reshape(b, self.key_channels, h, w)
        return self.f_up(context)


class SpatialOCR(nn.Module):
    """The augmented representation: [object context, features] -> 1x1 conv, BN, ReLU, dropout.

    forward(feats B x C x h x w, objects B x C x K x 1) -> B x out_channels x h x w.
    """

    def __init__(self, in_channels: int, key_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.object_context_block = ObjectAttention(in_channels, key_channels)
        self.conv_bn_dropout = nn.Sequential(_conv1x1(2 * in_channels, out_channels),
                                             _bn_relu(out_channels), nn.Dropout2d(dropout))

    def forward(self, feats, objects):
        context = self.object_context_block(feats, objects)
        return self.conv_bn_dropout(torch.cat([context, feats], dim=1))


def ocr_modules(in_channels: int, num_classes: int, settings: OCRSettings) -> dict[str, nn.Module]:
    """The OCR head of HRNet-OCR under its official names, in the official order.

    ``conv3x3_ocr`` (3x3 conv with bias, BN, ReLU) reduces the trunk features to mid_channels;
    ``aux_head`` is the soft-region classifier (the HRNetV2 head); ``cls_head`` the final 1x1
    classifier (with bias).  ``SegHRNetOCR.regions_and_ocr_logits`` runs them.
    """
    mid = settings.mid_channels
    return {
        "conv3x3_ocr": nn.Sequential(nn.Conv2d(in_channels, mid, kernel_size=3, padding=1),
                                     nn.BatchNorm2d(mid, momentum=BN_MOMENTUM),
                                     nn.ReLU(inplace=True)),
        "ocr_gather_head": SpatialGather(settings.scale),
        "ocr_distri_head": SpatialOCR(mid, settings.key_channels, mid, settings.dropout),
        "cls_head": nn.Conv2d(mid, num_classes, kernel_size=1),
        "aux_head": head(in_channels, num_classes),
    }
