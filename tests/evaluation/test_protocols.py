"""Inference: flip, sliding windows, multi-scale and score accumulation."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.evaluation.protocols import (
    PROTOCOLS,
    InferenceSettings,
    cityscapes_inference,
    forward_logits,
    predict,
    scaled_size,
    sliding_window,
    split_predictions,
    to_scores,
    window_boxes,
)
from lib.models import SegOutput, build_model

from .toy_networks import (
    ColumnRamp,
    Constant,
    Pointwise,
    QuarterWindowMean,
    Recorder,
    image,
    pointwise_scores,
)


@pytest.fixture
def tiny_branched(make_tiny_cfg):
    torch.manual_seed(0)
    model = build_model(make_tiny_cfg(num_classes=4), load_pretrained=False)
    # The networks start from N(0, 0.001^2) weights, whose outputs hardly depend on the input;
    # larger weights make mirrored inputs give clearly different outputs.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
    return model.eval()


def slow_sliding_window(model, img, window_hw, stride_ratio, flip=False):
    """The reference's loops: one window at a time, exp of (flip-averaged) logits, count map."""
    _, _, height, width = img.shape
    wh, ww = window_hw
    sh, sw = int(wh * stride_ratio), int(ww * stride_ratio)
    rows = max(math.ceil((height - wh) / sh), 0) + 1
    cols = max(math.ceil((width - ww) / sw), 0) + 1
    preds, count = None, torch.zeros(1, 1, height, width)
    for r in range(rows):
        for c in range(cols):
            h1, w1 = min(r * sh + wh, height), min(c * sw + ww, width)
            h0, w0 = max(h1 - wh, 0), max(w1 - ww, 0)
            crop = img[:, :, h0:h1, w0:w1]
            size = (h1 - h0, w1 - w0)
            logits = F.interpolate(model(crop).final, size, mode="bilinear", align_corners=False)
            if flip:
                mirrored = model(crop.flip(-1)).final
                mirrored = F.interpolate(mirrored, size, mode="bilinear", align_corners=False)
                logits = (logits + mirrored.flip(-1)) / 2
            if preds is None:
                preds = torch.zeros(1, logits.shape[1], height, width)
            preds[:, :, h0:h1, w0:w1] += logits.exp()
            count[:, :, h0:h1, w0:w1] += 1
    return preds / count


def test_flip_testing_of_a_mirrored_image_gives_the_mirrored_scores(tiny_branched):
    x = image(64, 96)
    plain = forward_logits(tiny_branched, x)
    assert not torch.allclose(forward_logits(tiny_branched, x.flip(-1)), plain.flip(-1), atol=1e-3)
    scores = forward_logits(tiny_branched, x, flip=True)
    mirrored = forward_logits(tiny_branched, x.flip(-1), flip=True)
    torch.testing.assert_close(mirrored, scores.flip(-1), atol=1e-5, rtol=1e-5)
    settings = InferenceSettings(scales=(0.5, 1.0), base_size=96, window_hw=(32, 48), flip=True)
    torch.testing.assert_close(cityscapes_inference(tiny_branched, x.flip(-1), settings),
                               cityscapes_inference(tiny_branched, x, settings).flip(-1),
                               atol=1e-5, rtol=1e-4)


def test_the_image_and_its_mirror_go_through_the_network_as_one_batch():
    model = Recorder(Pointwise())
    x = image(8, 12, n=2)
    forward_logits(model, x, flip=True)
    assert len(model.inputs) == 1
    torch.testing.assert_close(model.inputs[0], torch.cat((x, x.flip(-1))))


def test_flip_averages_logits_and_then_exponentiates():
    # Logit 0 is the column index; its mirror-averaged value is (w - 1) / 2 everywhere.
    x = image(4, 6)
    scores = cityscapes_inference(ColumnRamp(), x, InferenceSettings(
        scales=(1.0,), base_size=6, window_hw=(4, 6), flip=True))
    torch.testing.assert_close(scores[0, 0], torch.full((4, 6), math.exp(2.5)))
    torch.testing.assert_close(scores[0, 1], torch.ones(4, 6))


@pytest.mark.parametrize("align_corners", [False, True])
def test_quarter_resolution_logits_are_resized_bilinearly_to_the_input(align_corners):
    model = QuarterWindowMean()
    x = image(16, 24)
    logits = forward_logits(model, x, align_corners=align_corners)
    assert logits.shape == (1, 3, 16, 24) and logits.dtype == torch.float32
    expected = F.interpolate(model(x).logits, (16, 24), mode="bilinear",
                             align_corners=align_corners)
    torch.testing.assert_close(logits, expected)


def test_full_resolution_logits_are_returned_unchanged():
    model = Pointwise()
    x = image(10, 14)
    torch.testing.assert_close(forward_logits(model, x), model(x).logits)


def test_a_batch_of_images_gives_each_image_its_own_logits(tiny_branched):
    x = image(32, 64, n=3)
    batch = forward_logits(tiny_branched, x, flip=True)
    for i in range(3):
        torch.testing.assert_close(batch[i:i + 1], forward_logits(tiny_branched, x[i:i + 1],
                                                                  flip=True),
                                   atol=1e-5, rtol=1e-5)


def test_single_scale_without_flip_is_exp_of_the_fused_logits_resized_to_the_image(tiny_branched):
    x = image(64, 96)
    scores = cityscapes_inference(tiny_branched, x, InferenceSettings(
        scales=(1.0,), base_size=96, window_hw=(64, 96)))
    # base_size is the long side, so scale 1 keeps the image; S_f comes at 16 x 24.
    with torch.no_grad():
        fused = tiny_branched(x).fused_logits
    expected = F.interpolate(fused, (64, 96), mode="bilinear", align_corners=False).exp()
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize("window_hw", [(16, 24), (40, 40)])
def test_a_window_as_large_as_the_image_equals_whole_image_inference(window_hw):
    model = QuarterWindowMean()
    x = image(16, 24)
    whole = slow_sliding_window(model, x, (16, 24), 1.0, flip=True)  # one window: the image
    torch.testing.assert_close(sliding_window(
        model, x, InferenceSettings(window_hw=window_hw, flip=True)), whole)


@pytest.mark.parametrize("stride_ratio", [1.0, 2 / 3, 0.5, 0.3])
def test_windows_of_a_pointwise_model_agree_with_whole_image_inference(stride_ratio):
    model = Pointwise()
    x = image(23, 37)
    got = sliding_window(model, x, InferenceSettings(window_hw=(8, 12), stride_ratio=stride_ratio))
    torch.testing.assert_close(got, pointwise_scores(model, x))


@pytest.mark.parametrize("stride_ratio,batch_size,flip",
                         [(1.0, 4, False), (2 / 3, 3, False), (0.5, 1, True), (0.5, 100, True)])
def test_overlapping_windows_average_to_the_count_weighted_mean(stride_ratio, batch_size, flip):
    model = QuarterWindowMean()
    x = image(30, 45)
    got = sliding_window(model, x, InferenceSettings(
        window_hw=(12, 16), stride_ratio=stride_ratio, flip=flip, batch_size=batch_size))
    torch.testing.assert_close(got, slow_sliding_window(model, x, (12, 16), stride_ratio, flip))


@pytest.mark.parametrize("height,width,window_hw,stride_ratio",
                         [(30, 45, (12, 16), 1.0), (30, 45, (12, 16), 0.5), (24, 32, (12, 16), 1.0),
                          (7, 45, (12, 16), 0.25), (5, 5, (12, 16), 0.1)])
def test_windows_past_the_edge_are_moved_back_inside(height, width, window_hw, stride_ratio):
    boxes = window_boxes(height, width, window_hw, stride_ratio)
    count = torch.zeros(height, width)
    for h0, h1, w0, w1 in boxes:
        assert 0 <= h0 < h1 <= height and 0 <= w0 < w1 <= width
        assert (h1 - h0, w1 - w0) == (min(window_hw[0], height), min(window_hw[1], width))
        count[h0:h1, w0:w1] += 1
    assert count.min() >= 1
    assert len(set(boxes)) == len(boxes)
    assert max(b[1] for b in boxes) == height and max(b[3] for b in boxes) == width


def test_window_positions_follow_the_reference_stride():
    # 30 rows, window 12, stride 12: rows start at 0, 12 and 24 -> moved back to 18.
    assert window_boxes(30, 16, (12, 16), 1.0) == [(0, 12, 0, 16), (12, 24, 0, 16),
                                                   (18, 30, 0, 16)]
    # Stride int(16 * 0.5) = 8 over 40 columns: 0, 8, 16, 24 (ceil(24 / 8) + 1 = 4 windows).
    assert [b[2:] for b in window_boxes(12, 40, (12, 16), 0.5)] == [(0, 16), (8, 24), (16, 32),
                                                                    (24, 40)]


def test_windows_are_batched_and_keep_the_window_size():
    model = Recorder(Pointwise())
    x = image(30, 45)
    sliding_window(model, x, InferenceSettings(window_hw=(12, 16), stride_ratio=0.5, flip=True,
                                               batch_size=4))
    n_windows = len(window_boxes(30, 45, (12, 16), 0.5))
    assert len(model.inputs) == math.ceil(n_windows / 4)
    assert sum(batch.shape[0] for batch in model.inputs) == 2 * n_windows
    assert all(batch.shape[-2:] == (12, 16) for batch in model.inputs)


def test_softmax_and_exp_logits_accumulation_give_the_documented_values():
    model = Constant([0.0, math.log(2.0), math.log(3.0)])
    x = image(6, 8)
    kwargs = dict(base_size=8, window_hw=(6, 8))
    exp = cityscapes_inference(model, x, InferenceSettings(
        scales=(1.0,), accumulate="exp_logits", **kwargs))
    soft = cityscapes_inference(model, x, InferenceSettings(
        scales=(1.0,), accumulate="softmax", **kwargs))
    torch.testing.assert_close(exp[0, :, 2, 3], torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(soft[0, :, 2, 3], torch.tensor([1.0, 2.0, 3.0]) / 6)
    both = cityscapes_inference(model, x, InferenceSettings(
        scales=(0.5, 1.5), accumulate="softmax", **kwargs))
    torch.testing.assert_close(both[0, :, 2, 3], torch.tensor([1.0, 2.0, 3.0]) / 3)
    with pytest.raises(ValueError, match="exp_logits"):
        to_scores(torch.zeros(1, 3, 2, 2), "probabilities")


def test_each_scale_resizes_the_long_side_to_base_size_times_scale():
    model = Recorder(Pointwise())
    x = image(40, 60)
    cityscapes_inference(model, x, InferenceSettings(
        scales=(0.5, 1.0, 1.25), base_size=64, window_hw=(32, 48), batch_size=4))
    # Long side int(64 s + 0.5) = 32, 64, 80; short side int(40 * long / 60 + 0.5).  Scales up
    # to 1 run the whole image, even when it is larger than the window.
    assert [tuple(b.shape) for b in model.inputs[:2]] == [(1, 3, 21, 32), (1, 3, 43, 64)]
    # Scale 1.25 is 53 x 80: windows of 32 x 48, stride 1.0 -> 2 x 2 windows in one batch.
    assert [tuple(b.shape) for b in model.inputs[2:]] == [(4, 3, 32, 48)]
    # 20 * 34 / 30 = 22.67 rounds to 23.
    assert scaled_size(30, 20, 34) == (34, 23)
    assert scaled_size(20, 30, 34) == (23, 34)
    assert scaled_size(50, 50, 32) == (32, 32)


def test_multi_scale_adds_the_scores_of_every_scale_at_the_original_size():
    model = Pointwise()
    x = image(40, 60)
    got = cityscapes_inference(model, x, InferenceSettings(
        scales=(0.5, 1.0), base_size=60, window_hw=(40, 60)))
    small = F.interpolate(x, (20, 30), mode="bilinear", align_corners=False)
    expected = F.interpolate(model(small).logits.exp(), (40, 60), mode="bilinear",
                             align_corners=False) + model(x).logits.exp()
    torch.testing.assert_close(got, expected)


def test_cityscapes_inference_rejects_more_than_one_image():
    with pytest.raises(ValueError, match="1 x 3 x H x W"):
        cityscapes_inference(Pointwise(), image(8, 8, n=2), InferenceSettings(
            scales=(1.0,), base_size=8, window_hw=(8, 8)))


def test_autocast_forwards_return_float32_close_to_fp32(tiny_branched):
    x = image(32, 64)
    amp = forward_logits(tiny_branched, x, flip=True, amp_dtype=torch.bfloat16)
    assert amp.dtype == torch.float32
    fp32 = forward_logits(tiny_branched, x, flip=True)
    assert (amp - fp32).abs().max() < 0.1 * fp32.abs().max()


def test_settings_from_config_translate_test_keys(make_tiny_cfg):
    cfg = make_tiny_cfg()
    cfg.TEST.IMAGE_SIZE = [48, 32]
    cfg.TEST.BASE_SIZE = 64
    cfg.TEST.SCALE_LIST = [0.5, 1.5]
    cfg.TEST.FLIP_TEST = True
    cfg.TEST.ACCUMULATE = "softmax"
    # As in the reference, SCALE_LIST applies whatever TEST.MULTI_SCALE says.
    settings = InferenceSettings.from_config(cfg)
    assert settings == InferenceSettings(scales=(0.5, 1.5), base_size=64, window_hw=(32, 48),
                                         flip=True, stride_ratio=1.0, accumulate="softmax",
                                         align_corners=False, batch_size=1)
    # What those settings compute, derived for a pointwise model (which a flip and windows leave
    # unchanged): softmax scores of the image resized to long sides 32 and 96, each resized
    # back to 40 x 64, added.
    x, model = image(40, 64), Pointwise()

    def scores_at(h, w):
        logits = model(F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)).final
        return F.interpolate(logits.softmax(dim=1), size=(40, 64), mode="bilinear",
                             align_corners=False)

    torch.testing.assert_close(predict(model, x, settings), scores_at(20, 32) + scores_at(60, 96))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_results_stay_on_the_input_device():
    model = QuarterWindowMean().cuda()
    x = image(30, 45).cuda()
    for protocol in PROTOCOLS:
        settings = InferenceSettings(protocol=protocol, scales=(0.5, 1.5), base_size=45,
                                     window_hw=(16, 24), flip=True, batch_size=3)
        scores = predict(model, x, settings)
        assert scores.device == x.device
        torch.testing.assert_close(scores.cpu(), predict(model.cpu(), x.cpu(), settings))
        model.cuda()


class _OnePrediction(nn.Module):
    """``model`` whose ``final`` is its output field ``prediction``: the protocol run for one
    prediction."""

    def __init__(self, model, field):
        super().__init__()
        self.model, self.field = model, field

    def forward(self, x):
        output = self.model(x)
        return SegOutput(logits=getattr(output, self.field))


PREDICTIONS = ("logits", "seed_logits", "fused_logits")


@pytest.mark.parametrize("protocol, accumulate, flip_pairs", [
    ("cityscapes", "exp_logits", ()), ("ade20k", "softmax", ()), ("lip", "softmax", ((0, 2),))])
def test_every_prediction_from_one_pass_equals_the_protocol_run_for_it_alone(
        tiny_branched, protocol, accumulate, flip_pairs):
    x = image(40, 56, seed=4)
    settings = InferenceSettings(protocol=protocol, scales=(0.75, 1.5), base_size=56,
                                 window_hw=(32, 32), flip=True, accumulate=accumulate,
                                 batch_size=2, flip_pairs=flip_pairs)
    together = split_predictions(
        predict(tiny_branched, x, replace(settings, predictions=PREDICTIONS)), PREDICTIONS)
    for field in PREDICTIONS:
        alone = predict(_OnePrediction(tiny_branched, field), x, settings)
        torch.testing.assert_close(together[field], alone, rtol=1e-5, atol=1e-6)
    final = predict(tiny_branched, x, settings)
    torch.testing.assert_close(together["fused_logits"], final, rtol=1e-5, atol=1e-6)
