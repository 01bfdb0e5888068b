"""The ADE20K (HRNet-OCR) evaluation protocol and the choice of protocol."""
import math
import os

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib.config import ConfigError, get_cfg, load_cfg
from lib.datasets import build_dataset
from lib.evaluation.protocols import (
    InferenceSettings,
    ade20k_inference,
    padded_sliding_window,
    padded_window_boxes,
    predict,
)
from tools.make_synthetic_dataset import make_synthetic_dataset

from .toy_networks import (
    ColumnRamp,
    Pointwise,
    QuarterWindowMean,
    Recorder,
    image,
    pointwise_scores,
)

# The ImageNet statistics of DESIGN.md section 6, RGB.
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
# A black pixel in normalised units.
BLACK = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]


def ade_settings(**kwargs):
    """Settings of the ade20k protocol.  The loops are checked on float images here, whose first
    resize is the device's; the reference's 8-bit one is checked against OpenCV below."""
    return InferenceSettings(**{"protocol": "ade20k", "first_resize": "device", **kwargs})


def from_8bit(bgr):
    """1 x 3 x H x W normalised RGB of a BGR uint8 image, as the reference's input_transform."""
    rgb = (bgr[:, :, ::-1].astype(np.float64) / 255.0 - MEAN) / STD
    return torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32))[None]


def reference_first_step_8bit(bgr, base_size):
    """HRNet-OCR's resize_short_length(fit_stride=8) of the 8-bit BGR image read from disk:
    cv2.resize INTER_LINEAR of the short side to base_size, cv2.copyMakeBorder at the
    bottom/right to a multiple of 8 with the BGR mean times 255; then input_transform."""
    h, w = bgr.shape[:2]
    if h < w:
        new_h, new_w = base_size, int(w * base_size / h + 0.5)
    else:
        new_h, new_w = int(h * base_size / w + 0.5), base_size
    resized = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_h, pad_w = (8 - new_h % 8) % 8, (8 - new_w % 8) % 8
    padded = cv2.copyMakeBorder(resized, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT,
                                value=tuple(x * 255 for x in MEAN[::-1]))
    return from_8bit(padded), (new_h, new_w)


@pytest.fixture(scope="module")
def ade_image(tmp_path_factory):
    """(normalised 1 x 3 x 50 x 75 evaluation image as the ADE20K dataset gives it, the same
    JPEG as OpenCV reads it, BGR uint8) of a synthetic ADE20K scene written to disk."""
    root = str(tmp_path_factory.mktemp("ade20k_8bit"))
    make_synthetic_dataset(root, "ade20k", {"train": 1, "val": 1}, (50, 75), seed=4)
    cfg = get_cfg()
    cfg.DATASET.ROOT, cfg.DATASET.DATASET, cfg.DATASET.NUM_CLASSES = root, "ade20k", 150
    cfg.DATASET.TEST_SET = "list/ade20k/val.lst"
    dataset = build_dataset(cfg, "val")
    bgr = cv2.imread(os.path.join(dataset.data_dir, dataset.entries[0].image), cv2.IMREAD_COLOR)
    return dataset[0][0][None], bgr


def resize(x, size):
    return F.interpolate(x, size, mode="bilinear", align_corners=False)


def pad_black(x, height, width):
    canvas = torch.tensor(BLACK).view(1, 3, 1, 1).repeat(x.shape[0], 1, height, width)
    canvas[:, :, :x.shape[2], :x.shape[3]] = x
    return canvas


def reference_window(model, crop, flip):
    """exp of the (flip-averaged) logits of one crop, resized to the crop."""
    size = crop.shape[-2:]
    logits = resize(model(crop).final, size)
    if flip:
        logits = (logits + resize(model(crop.flip(-1)).final, size).flip(-1)) / 2
    return logits.exp()


def reference_scale(model, img, window_hw, flip):
    """One scale of the HRNet-OCR loops: whole when it fits, else padded windows one by one."""
    height, width = img.shape[-2:]
    wh, ww = window_hw
    if max(height, width) <= min(wh, ww):
        return reference_window(model, pad_black(img, wh, ww), flip)[:, :, :height, :width]
    if height < wh or width < ww:
        img = pad_black(img, max(height, wh), max(width, ww))
    new_h, new_w = img.shape[-2:]
    sh, sw = int(wh * 2.0 / 3.0), int(ww * 2.0 / 3.0)
    preds, count = None, torch.zeros(1, 1, new_h, new_w)
    for r in range(math.ceil((new_h - wh) / sh) + 1):
        for c in range(math.ceil((new_w - ww) / sw) + 1):
            h0, w0 = r * sh, c * sw
            h1, w1 = min(h0 + wh, new_h), min(w0 + ww, new_w)
            crop = img[:, :, h0:h1, w0:w1]
            if h1 == new_h or w1 == new_w:
                crop = pad_black(crop, wh, ww)
            pred = reference_window(model, crop, flip)
            if preds is None:
                preds = torch.zeros(1, pred.shape[1], new_h, new_w)
            preds[:, :, h0:h1, w0:w1] += pred[:, :, :h1 - h0, :w1 - w0]
            count[:, :, h0:h1, w0:w1] += 1
    return (preds / count)[:, :, :height, :width]


def reference_ade20k(model, img, base_size, scales, window_hw, flip, crop_padding=False,
                     bgr=None):
    """The HRNet-OCR ADE20K test procedure as its code runs it, written out step by step.

    Its ADE20K ``testval`` items carry no border padding, so the padded score map is resized to
    the label size whole; its PASCAL-Context and COCO-Stuff items do, and ``crop_padding`` cuts
    it off first.  The first resize is the reference's of the 8-bit image ``bgr`` when it is
    given (``img`` is then its normalised version), else bilinear on the float ``img``."""
    height, width = img.shape[-2:]
    if bgr is not None:
        x, (h, w) = reference_first_step_8bit(bgr, base_size)
    else:
        if height < width:
            h, w = base_size, int(width * base_size / height + 0.5)
        else:
            h, w = int(height * base_size / width + 0.5), base_size
        x = resize(img, (h, w))
        x = F.pad(x, (0, (-w) % 8, 0, (-h) % 8), value=0.0)  # the mean colour
    ph, pw = x.shape[-2:]
    total = 0
    for scale in scales:
        long_side = int(base_size * scale + 0.5)
        if ph > pw:
            size = (long_side, int(pw * long_side / ph + 0.5))
        else:
            size = (int(ph * long_side / pw + 0.5), long_side)
        total = total + resize(reference_scale(model, resize(x, size), window_hw, flip), (ph, pw))
    if crop_padding:
        total = total[:, :, :h, :w]
    return resize(total, (height, width))


def test_windows_start_every_two_thirds_of_a_window_and_run_past_the_edge():
    # Height 30, window 12: stride int(12 * 2 / 3) = 8, rows ceil(18 / 8) + 1 = 4.
    assert padded_window_boxes(30, 16, (12, 16)) == [(0, 12, 0, 16), (8, 20, 0, 16),
                                                     (16, 28, 0, 16), (24, 36, 0, 16)]
    # Window 9 x 20: strides 6 and 13; 15 x 40 -> rows at 0, 6; columns at 0, 13, 26.
    assert padded_window_boxes(15, 40, (9, 20)) == [
        (h0, h0 + 9, w0, w0 + 20) for h0 in (0, 6) for w0 in (0, 13, 26)]
    # An image no larger than the window is one window.
    assert padded_window_boxes(5, 7, (12, 16)) == [(0, 12, 0, 16)]


def test_each_pixel_averages_the_windows_that_cover_it():
    # Logit 0 = column index inside the window: column c of the image gets the mean of
    # exp(c - w0) over the windows [w0, w0 + 12) holding it, w0 in 0, 8, 16, 24.
    x = image(4, 30)
    got = padded_sliding_window(ColumnRamp(), x, ade_settings(window_hw=(4, 12), batch_size=3))
    assert got.shape == (1, 2, 4, 30)
    for c in range(30):
        starts = [w0 for w0 in (0, 8, 16, 24) if w0 <= c < w0 + 12]
        expected = sum(math.exp(c - w0) for w0 in starts) / len(starts)
        torch.testing.assert_close(got[0, 0, :, c], torch.full((4,), expected))
    torch.testing.assert_close(got[0, 1], torch.ones(4, 30))


def test_flip_mirrors_each_padded_window_in_the_same_batch():
    # Mirrored inside each 12-wide window, the ramp averages to 5.5 at every pixel.
    model = Recorder(ColumnRamp())
    x = image(4, 30)
    got = padded_sliding_window(model, x, ade_settings(window_hw=(4, 12), flip=True,
                                                       batch_size=4))
    torch.testing.assert_close(got[0, 0], torch.full((4, 30), math.exp(5.5)))
    assert [tuple(batch.shape) for batch in model.inputs] == [(8, 3, 4, 12)]
    torch.testing.assert_close(model.inputs[0][4:], model.inputs[0][:4].flip(-1))


def test_resizes_and_padding_follow_the_reference():
    model = Recorder(Pointwise())
    x = image(50, 75)
    ade20k_inference(model, x, ade_settings(scales=(0.5, 1.0), base_size=40, window_hw=(24, 24),
                                            flip=True, batch_size=100))
    # Short side 50 -> 40, long 75 -> int(75 * 40 / 50 + 0.5) = 60, padded to 40 x 64 with the
    # mean colour (0).
    padded = F.pad(resize(x, (40, 60)), (0, 4, 0, 0), value=0.0)
    # Scale 0.5: long side 20, 13 x 20, no larger than the window: one window padded with black.
    whole, windows = model.inputs
    assert whole.shape == (2, 3, 24, 24)
    torch.testing.assert_close(whole[:1], pad_black(resize(padded, (13, 20)), 24, 24))
    # Scale 1.0: 25 x 40; windows 24 x 24 at stride 16: rows 0, 16 and columns 0, 16, all in one
    # batch with their mirrors; the canvas is padded with black to 40 x 40.
    assert windows.shape == (8, 3, 24, 24)
    canvas = pad_black(resize(padded, (25, 40)), 40, 40)
    expected = torch.cat([canvas[:, :, h0:h0 + 24, w0:w0 + 24] for h0 in (0, 16) for w0 in (0, 16)])
    torch.testing.assert_close(windows[:4], expected)
    torch.testing.assert_close(windows[4:], expected.flip(-1))


@pytest.mark.parametrize("height,width,window_hw,scales", [
    (50, 75, (24, 24), (0.5, 1.0, 1.75)),
    (61, 45, (24, 32), (0.75, 1.5)),
    (20, 20, (16, 16), (1.0, 2.0)),
])
def test_the_protocol_equals_the_reference_loops(height, width, window_hw, scales):
    # The model's logits depend on the mean of its whole input: windows, padding and scales
    # all change them.
    model = QuarterWindowMean()
    x = image(height, width, seed=3)
    settings = ade_settings(scales=scales, base_size=40, window_hw=window_hw, flip=True,
                            batch_size=3)
    got = predict(model, x, settings)
    assert got.shape == (1, 3, height, width)
    torch.testing.assert_close(got, reference_ade20k(model, x, 40, scales, window_hw, True),
                               rtol=1e-4, atol=1e-5)


def test_the_dataset_chooses_the_protocol_unless_test_protocol_is_set():
    cfg = get_cfg()
    assert InferenceSettings.from_config(cfg).protocol == "cityscapes"
    cfg.DATASET.DATASET = "ade20k"
    assert InferenceSettings.from_config(cfg).protocol == "ade20k"
    cfg.TEST.PROTOCOL = "cityscapes"
    cfg.TEST.BASE_SIZE = 30
    settings = InferenceSettings.from_config(cfg)
    assert settings.protocol == "cityscapes"
    # The Cityscapes procedure keeps an image whose long side is TEST.BASE_SIZE (at scale 1) and
    # scores it whole: exp(W x + b) of a pointwise network.  The ade20k procedure would resize
    # its short side to TEST.BASE_SIZE first, the lip one the whole image to the window.
    model, x = Pointwise(), image(20, 30)
    torch.testing.assert_close(predict(model, x, settings), pointwise_scores(model, x))
    cfg.TEST.PROTOCOL = "pascal"
    with pytest.raises(ValueError, match=r"'pascal'.*\['ade20k', 'cityscapes', 'lip'\]"):
        InferenceSettings.from_config(cfg)


def test_stride_ratio_is_reported_as_without_effect_under_the_ade20k_protocol(caplog):
    cfg = get_cfg()
    cfg.DATASET.DATASET = "ade20k"
    cfg.TEST.STRIDE_RATIO = 0.5
    assert InferenceSettings.from_config(cfg).protocol == "ade20k"
    assert "TEST.STRIDE_RATIO 0.5 has no effect" in caplog.text


def test_the_settings_defaults_are_the_config_defaults():
    assert InferenceSettings.from_config(get_cfg()) == InferenceSettings()


def test_the_multiple_of_8_padding_is_resized_with_the_prediction_as_in_the_reference():
    # Short side 40 = TEST.BASE_SIZE, so 40 x 60 is not resized; it is padded to 40 x 64, and at
    # scale 1.6 the long side is 64 again.  A pointwise model gives exp(W x + b) at every pixel
    # of the padded 40 x 64 map (padding pixels are 0, so they give exp(b)); the reference
    # resizes that map, padding included, to 40 x 60.
    model = Pointwise()
    x = image(40, 60, seed=5)
    settings = ade_settings(scales=(1.6,), base_size=40, window_hw=(64, 64))
    got = ade20k_inference(model, x, settings)
    padded = F.pad(x, (0, 4, 0, 0), value=0.0)
    torch.testing.assert_close(got, resize(model(padded).final.exp(), (40, 60)))
    assert not torch.allclose(got, model(x).final.exp(), rtol=1e-4, atol=1e-5)


def test_crop_padding_cuts_the_multiple_of_8_padding_off_before_the_resize():
    # As above; with the padding cut off first every resize is the identity.
    model = Pointwise()
    x = image(40, 60, seed=5)
    settings = ade_settings(scales=(1.6,), base_size=40, window_hw=(64, 64), crop_padding=True)
    torch.testing.assert_close(ade20k_inference(model, x, settings), model(x).final.exp())


@pytest.mark.parametrize("crop_padding", [False, True])
def test_crop_padding_equals_the_reference_loops_either_way(crop_padding):
    model = QuarterWindowMean()
    x = image(50, 75, seed=3)
    settings = ade_settings(scales=(0.5, 1.0, 1.75), base_size=40, window_hw=(24, 24),
                            flip=True, batch_size=3, crop_padding=crop_padding)
    expected = reference_ade20k(model, x, 40, (0.5, 1.0, 1.75), (24, 24), True, crop_padding)
    torch.testing.assert_close(predict(model, x, settings), expected, rtol=1e-4, atol=1e-5)


def test_crop_padding_is_read_from_the_config():
    cfg = get_cfg()
    assert InferenceSettings.from_config(cfg).crop_padding is False
    cfg.TEST.CROP_PADDING = True
    assert InferenceSettings.from_config(cfg).crop_padding is True


def benchmark_settings(dataset, classes, **test_keys):
    """``InferenceSettings.from_config`` of dataset ``dataset`` with the TEST keys given."""
    cfg = get_cfg()
    cfg.DATASET.DATASET, cfg.DATASET.NUM_CLASSES = dataset, classes
    for key, value in test_keys.items():
        cfg.TEST[key] = value
    return InferenceSettings.from_config(cfg)


def test_the_first_resize_is_opencvs_on_the_8bit_image_by_default(ade_image):
    # 50 x 75 -> short side 40: 40 x 60, padded to 40 x 64; at scale 1.6 the long side is 64
    # again and the 64 x 64 window takes the image whole: its first 40 rows are step 1.
    x, bgr = ade_image
    expected, size = reference_first_step_8bit(bgr, 40)
    assert size == (40, 60) and expected.shape[-2:] == (40, 64)
    settings = benchmark_settings("ade20k", 150, BASE_SIZE=40, IMAGE_SIZE=[64, 64],
                                  SCALE_LIST=[1.6])
    assert settings.first_resize == "opencv"
    seen = {}
    for mode in ("opencv", "device"):
        model = Recorder(Pointwise())
        predict(model, x, InferenceSettings(**{**settings.__dict__, "first_resize": mode}))
        [whole] = model.inputs
        assert whole.shape == (1, 3, 64, 64)
        seen[mode] = whole[:, :, :40, :]
    torch.testing.assert_close(seen["opencv"], expected, rtol=0, atol=1e-5)
    # The padding is the mean as OpenCV rounds it: BGR (103.53, 116.28, 123.675) -> (104, 116,
    # 124) grey levels.
    pad = from_8bit(np.full((40, 4, 3), (104, 116, 124), np.uint8))
    torch.testing.assert_close(seen["opencv"][:, :, :, 60:], pad, rtol=0, atol=1e-6)
    # The float image resized on the device is not the reference's (it misses the rounding to
    # whole grey levels, and pads with the exact mean).
    grey_levels = (seen["device"] - expected).abs() * torch.tensor(STD * 255).view(1, 3, 1, 1)
    assert grey_levels.max() > 0.25


@pytest.mark.parametrize("crop_padding", [False, True])
def test_the_protocol_equals_the_reference_loops_on_an_8bit_image(ade_image, crop_padding):
    model = QuarterWindowMean()
    x, bgr = ade_image
    scales = (0.5, 1.0, 1.75)
    settings = ade_settings(first_resize="opencv", scales=scales, base_size=40,
                            window_hw=(24, 24), flip=True, batch_size=3,
                            crop_padding=crop_padding)
    expected = reference_ade20k(model, x, 40, scales, (24, 24), True, crop_padding, bgr=bgr)
    torch.testing.assert_close(predict(model, x, settings), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dataset, classes, crops", [
    ("pascal_ctx", 59, True), ("pascal_ctx", 60, True), ("cocostuff", 171, True),
    ("pascal_voc", 21, True), ("ade20k", 150, False)])
def test_pascal_context_and_coco_stuff_crop_the_padding_and_ade20k_does_not(dataset, classes,
                                                                            crops):
    # A 40 x 60 8-bit image with TEST.BASE_SIZE 40 is not resized; it is padded to 40 x 64 with
    # the rounded mean, and at scale 1.6 the long side is 64 again.  A pointwise model gives
    # exp(W x + b) per pixel.  Cropped, every resize is the identity: exp(W x + b) of the image
    # itself.  Not cropped, the 40 x 64 map, padding included, is resized to 40 x 60.
    bgr = np.random.default_rng(8).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    x = from_8bit(bgr)
    padded = torch.cat([x, from_8bit(np.full((40, 4, 3), (104, 116, 124), np.uint8))], dim=3)
    model = Pointwise()
    expected = {True: model(x).final.exp(), False: resize(model(padded).final.exp(), (40, 60))}
    keys = dict(BASE_SIZE=40, IMAGE_SIZE=[64, 64], SCALE_LIST=[1.6])
    for crop_key, crop in (("", crops), ("auto", crops), (not crops, not crops)):
        settings = benchmark_settings(dataset, classes, CROP_PADDING=crop_key, **keys)
        assert settings.protocol == "ade20k" and settings.crop_padding is crop
        torch.testing.assert_close(predict(model, x, settings), expected[crop], rtol=1e-5,
                                   atol=1e-5)
    assert not torch.allclose(expected[True], expected[False], rtol=1e-3)


def test_crop_padding_files_old_and_new_load_and_an_invalid_value_names_the_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    for value, crop in (("false", False), ("true", True), ("", True), ("''", True),
                        ("auto", True)):
        path.write_text(f"DATASET: {{DATASET: pascal_ctx, NUM_CLASSES: 59}}\n"
                        f"TEST:\n  CROP_PADDING: {value}\n")
        assert InferenceSettings.from_config(load_cfg(str(path))).crop_padding is crop
    # The command line overrides the file's value, whatever its type.
    for file_value in ("false", "auto"):
        path.write_text(f"DATASET: {{DATASET: pascal_ctx, NUM_CLASSES: 59}}\n"
                        f"TEST:\n  CROP_PADDING: {file_value}\n")
        for value, crop in (("False", False), ("True", True), ("auto", True), ("", True)):
            cfg = load_cfg(str(path), ["TEST.CROP_PADDING", value])
            assert InferenceSettings.from_config(cfg).crop_padding is crop
    with pytest.raises(ConfigError, match=r"TEST.CROP_PADDING = 'yes' is not True, False"):
        load_cfg(str(path), ["TEST.CROP_PADDING", "yes"])


def test_the_first_resize_is_read_from_the_config():
    assert InferenceSettings.from_config(get_cfg()).first_resize == "opencv"
    cfg = load_cfg(None, ["TEST.FIRST_RESIZE", "device"])
    assert InferenceSettings.from_config(cfg).first_resize == "device"
    with pytest.raises(ConfigError, match=r"TEST.FIRST_RESIZE = 'cubic' is not one of"):
        load_cfg(None, ["TEST.FIRST_RESIZE", "cubic"])
