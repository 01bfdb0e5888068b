"""The LIP protocol, flip testing with left/right classes, and the protocols the new datasets
choose, against loop-by-loop re-derivations of the reference."""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.config import get_cfg
from lib.evaluation.protocols import (
    InferenceSettings,
    ade20k_inference,
    forward_logits,
    lip_inference,
    predict,
)
from lib.models import SegOutput

from .toy_networks import Recorder

K = 20
# The reference LIP flip (lib/datasets/lip.py of HRNet-OCR): channel 14 of the mirrored
# prediction takes channel 15, 15 takes 14, and so for 16/17 and 18/19.
SWAPPED = list(range(14)) + [15, 14, 17, 16, 19, 18]
# A black pixel in normalised units (ImageNet statistics).
BLACK = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]


class Asymmetric(nn.Module):
    """Quarter-resolution logits that depend on the window's content, its mean and the column:
    nothing about them is mirror-symmetric, and the 20 channels differ."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(K, 3, generator=g) * 0.5)
        self.ramp = nn.Parameter(torch.randn(K, generator=g))

    def forward(self, x):
        pooled = F.avg_pool2d(x, 4, ceil_mode=True)
        n, _, h, w = pooled.shape
        columns = torch.linspace(-1, 1, w).view(1, 1, 1, w)
        logits = (torch.einsum("kc,nchw->nkhw", self.weight, pooled)
                  + self.ramp.view(1, K, 1, 1) * columns + x.mean(dim=(1, 2, 3)).view(n, 1, 1, 1))
        return SegOutput(logits)


def image(h, w, seed=0):
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def resize(x, size):
    return F.interpolate(x, size, mode="bilinear", align_corners=False)


def pad_black(x, height, width):
    canvas = torch.tensor(BLACK).view(1, 3, 1, 1).repeat(1, 1, height, width)
    canvas[:, :, :x.shape[2], :x.shape[3]] = x
    return canvas


def reference_lip_window(model, crop, flip):
    """The reference's LIP inference of one crop: logits, and with flip the mirrored image's
    logits with the left/right channels swapped, mirrored back, averaged; then exp."""
    size = crop.shape[-2:]
    pred = resize(model(crop).final, size)
    if flip:
        mirrored = resize(model(crop.flip(-1)).final, size)
        pred = (pred + mirrored[:, SWAPPED].flip(-1)) * 0.5
    return pred.exp()


def reference_lip(model, img, window, base_size, scales, flip):
    """The reference's LIP ``testval``: the image resized to the window (its crop size), the
    base class's multi-scale loop on it, the sum resized to the label size."""
    height, width = img.shape[-2:]
    x = resize(img, (window, window))
    total = 0
    for scale in scales:
        side = int(base_size * scale + 0.5)  # the square image's long side
        new = resize(x, (side, side))
        if side <= window:
            preds = reference_lip_window(model, pad_black(new, window, window), flip)
            preds = preds[:, :, :side, :side]
        else:
            stride = int(window * 2.0 / 3.0)
            steps = math.ceil((side - window) / stride) + 1
            preds, count = torch.zeros(1, K, side, side), torch.zeros(1, 1, side, side)
            for r in range(steps):
                for c in range(steps):
                    h0, w0 = r * stride, c * stride
                    h1, w1 = min(h0 + window, side), min(w0 + window, side)
                    crop = new[:, :, h0:h1, w0:w1]
                    if h1 == side or w1 == side:
                        crop = pad_black(crop, window, window)
                    pred = reference_lip_window(model, crop, flip)
                    preds[:, :, h0:h1, w0:w1] += pred[:, :, :h1 - h0, :w1 - w0]
                    count[:, :, h0:h1, w0:w1] += 1
            preds = preds / count
        total = total + resize(preds, (window, window))
    return resize(total, (height, width))


def lip_settings(**kwargs):
    """The LIP dataset's settings.  The loops are checked on float images here, whose first
    resize is the device's; the reference's 8-bit one is checked against OpenCV below."""
    cfg = get_cfg()
    cfg.DATASET.DATASET, cfg.DATASET.NUM_CLASSES = "lip", K
    settings = InferenceSettings.from_config(cfg)
    return InferenceSettings(**{**settings.__dict__, "first_resize": "device", **kwargs})


@pytest.mark.parametrize("height, width, scales, flip", [
    (30, 45, (0.75, 1.0, 1.5), True),
    (50, 20, (1.0, 1.75), True),
    (24, 24, (0.5, 1.25), False),
])
def test_the_lip_protocol_equals_the_reference_loops(height, width, scales, flip):
    model = Asymmetric()
    x = image(height, width, seed=1)
    settings = lip_settings(scales=scales, base_size=24, window_hw=(24, 24), flip=flip,
                            batch_size=3)
    assert settings.protocol == "lip"
    got = predict(model, x, settings)
    assert got.shape == (1, K, height, width)
    torch.testing.assert_close(got, reference_lip(model, x, 24, 24, scales, flip),
                               rtol=1e-4, atol=1e-5)


def test_flip_testing_averages_the_mirrored_prediction_with_left_and_right_swapped():
    model = Asymmetric(seed=2)
    x = image(16, 20, seed=3)
    got = forward_logits(model, x, flip=True, flip_pairs=((14, 15), (16, 17), (18, 19)))
    direct = resize(model(x).final, (16, 20))
    mirrored = resize(model(x.flip(-1)).final, (16, 20)).flip(-1)
    torch.testing.assert_close(got, 0.5 * (direct + mirrored[:, SWAPPED]))
    assert not torch.allclose(got, 0.5 * (direct + mirrored))


def test_flip_testing_an_asymmetric_model_predicts_the_mirror_with_left_and_right_swapped():
    # With the swap, the prediction of the mirrored image is the mirrored prediction with the
    # left/right classes exchanged; without it (plain flip testing) that fails for this model.
    # (Settings whose resizes and windows are mirror-symmetric themselves: whole images, widths
    # that the model's 4x pooling divides; padded windows are not.)
    model = Asymmetric(seed=4)
    x = image(28, 36, seed=5)
    for protocol, scales in (("lip", (1.0,)), ("cityscapes", (0.5, 1.0))):
        settings = lip_settings(protocol=protocol, scales=scales, base_size=24,
                                window_hw=(24, 24), flip=True, batch_size=4)
        of_mirror = predict(model, x.flip(-1), settings)
        torch.testing.assert_close(of_mirror, predict(model, x, settings).flip(-1)[:, SWAPPED],
                                   rtol=1e-4, atol=1e-6)
        plain = InferenceSettings(**{**settings.__dict__, "flip_pairs": ()})
        assert not torch.allclose(predict(model, x.flip(-1), plain),
                                  predict(model, x, plain).flip(-1)[:, SWAPPED], rtol=1e-3)


def test_the_lip_protocol_resizes_to_the_window_whatever_the_aspect_ratio():
    # A pointwise model sees the same pixels whatever the windows: at scale 1 with the window as
    # base size, the result is exp of the logits of the image resized to the window and back.
    class Pointwise(nn.Module):
        def forward(self, x):
            return SegOutput(torch.cat([x, -x, x * 0.5], dim=1))

    x = image(18, 40, seed=6)
    settings = lip_settings(scales=(1.0,), base_size=16, window_hw=(16, 16), flip_pairs=())
    expected = resize(Pointwise()(resize(x, (16, 16))).final.exp(), (18, 40))
    torch.testing.assert_close(lip_inference(Pointwise(), x, settings), expected)


@pytest.mark.parametrize("dataset, classes, protocol, pairs", [
    ("pascal_ctx", 59, "ade20k", ()),
    ("pascal_ctx", 60, "ade20k", ()),
    ("cocostuff", 171, "ade20k", ()),
    ("pascal_voc", 21, "ade20k", ()),
    ("lip", 20, "lip", ((14, 15), (16, 17), (18, 19))),
])
def test_each_dataset_chooses_its_protocol_and_flip_pairs(dataset, classes, protocol, pairs):
    cfg = get_cfg()
    cfg.DATASET.DATASET, cfg.DATASET.NUM_CLASSES = dataset, classes
    settings = InferenceSettings.from_config(cfg)
    assert (settings.protocol, settings.flip_pairs) == (protocol, pairs)
    cfg.TEST.PROTOCOL = "cityscapes"
    assert InferenceSettings.from_config(cfg).protocol == "cityscapes"


def test_pascal_context_is_evaluated_as_the_hrnet_ocr_testval():
    # The HRNet-OCR testval of PASCAL-Context and COCO-Stuff is the ADE20K one: the same call.
    cfg = get_cfg()
    cfg.DATASET.DATASET, cfg.DATASET.NUM_CLASSES = "pascal_ctx", 59
    cfg.TEST.IMAGE_SIZE, cfg.TEST.BASE_SIZE = [24, 24], 24
    settings = InferenceSettings.from_config(cfg)
    x = image(20, 30, seed=7)
    torch.testing.assert_close(predict(Asymmetric(), x, settings),
                               ade20k_inference(Asymmetric(), x, settings))


def test_the_lip_protocol_resizes_the_8bit_image_with_opencv_by_default():
    # The reference's testval: cv2.resize(image, crop_size, INTER_LINEAR) of the image as read,
    # then input_transform.  At scale 1 with the window as base size nothing else is resized,
    # and the window takes the image whole.
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])

    def from_8bit(bgr):
        rgb = (bgr[:, :, ::-1].astype(np.float64) / 255.0 - mean) / std
        return torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32))[None]

    yy, xx = np.mgrid[:37, :53]
    bgr = np.stack([(xx * 7 + yy * 3) % 256, (xx * yy) % 256, (255 - xx * 4) % 256],
                   axis=2).astype(np.uint8)
    cfg = get_cfg()
    cfg.DATASET.DATASET, cfg.DATASET.NUM_CLASSES = "lip", K
    cfg.TEST.IMAGE_SIZE, cfg.TEST.BASE_SIZE = [24, 16], 24
    settings = InferenceSettings.from_config(cfg)
    assert (settings.protocol, settings.first_resize) == ("lip", "opencv")
    model = Recorder(Asymmetric())
    predict(model, from_8bit(bgr), settings)
    expected = from_8bit(cv2.resize(bgr, (24, 16), interpolation=cv2.INTER_LINEAR))
    [whole] = model.inputs
    torch.testing.assert_close(whole[:, :, :16, :24], expected, rtol=0, atol=1e-5)
