"""Losses against NumPy re-derivations and hand-computed cases."""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib.config import get_cfg
from lib.models.losses import (
    ConfidenceLoss,
    CrossEntropy,
    OhemCrossEntropy,
    SegLoss,
    build_criterion,
)
from lib.models.output import OCROutput, SegOutput

IGNORE = 255


def random_case(seed, batch=2, classes=4, h=8, w=8, ignore_fraction=0.2, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, h, w, generator=gen) * scale
    target = torch.randint(0, classes, (batch, h, w), generator=gen)
    target[torch.rand(batch, h, w, generator=gen) < ignore_fraction] = IGNORE
    return logits, target


def np_pixel_terms(logits, target, weight):
    """Per-pixel weighted CE, true-class probability, pixel weight and validity (float64)."""
    z = logits.double().numpy()
    t = target.numpy()
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    valid = t != IGNORE
    safe = np.where(valid, t, 0)
    true_log_p = np.take_along_axis(log_p, safe[:, None], axis=1)[:, 0]
    w = np.ones(logits.shape[1]) if weight is None else np.asarray(weight, dtype=np.float64)
    pixel_w = w[safe]
    return -true_log_p * pixel_w, np.exp(true_log_p), pixel_w, valid


def np_cross_entropy(logits, target, weight=None):
    losses, _, pixel_w, valid = np_pixel_terms(logits, target, weight)
    return losses[valid].sum() / pixel_w[valid].sum()


def np_ohem(logits, target, thresh, min_kept, weight=None):
    """The reference algorithm with a full sort; returns (loss, sorted_p[k])."""
    losses, prob, _, valid = np_pixel_terms(logits, target, weight)
    p, l_valid = prob[valid], losses[valid]
    order = np.argsort(p)
    p, l_valid = p[order], l_valid[order]
    min_value = p[min(min_kept, p.size - 1)]
    kept = l_valid[p < max(min_value, thresh)]
    return kept.mean(), min_value


# --- CrossEntropy -------------------------------------------------------------------------------

def test_cross_entropy_equals_numpy_and_ignores_255():
    logits, target = random_case(0)
    loss = CrossEntropy(ignore_label=IGNORE)(logits, target)
    assert loss.item() == pytest.approx(np_cross_entropy(logits, target), rel=1e-5)

    changed = logits.clone()
    changed[(target == IGNORE)[:, None].expand_as(logits)] = 1e3
    assert CrossEntropy(ignore_label=IGNORE)(changed, target).item() == pytest.approx(
        loss.item(), rel=1e-6)


def test_cross_entropy_class_weighted_mean_equals_numpy():
    logits, target = random_case(1)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0])
    loss = CrossEntropy(ignore_label=IGNORE, weight=weight)(logits, target)
    expected = np_cross_entropy(logits, target, weight.numpy())
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    unweighted = np_cross_entropy(logits, target)
    assert abs(expected - unweighted) > 1e-3  # the weights matter in this case


def test_cross_entropy_resizes_logits_to_label_size_bilinearly():
    logits, target = random_case(2, h=4, w=6)
    target = torch.randint(0, 4, (2, 8, 12), generator=torch.Generator().manual_seed(3))
    for align_corners in (False, True):
        up = F.interpolate(logits, size=(8, 12), mode="bilinear", align_corners=align_corners)
        loss = CrossEntropy(align_corners=align_corners)(logits, target)
        assert loss.item() == pytest.approx(np_cross_entropy(up, target), rel=1e-5)


def test_cross_entropy_all_ignored_is_zero_and_backward_works():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), IGNORE)
    loss = CrossEntropy(weight=torch.ones(3))(logits, target)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_cross_entropy_computes_in_fp32_for_bf16_logits():
    logits, target = random_case(4)
    loss = CrossEntropy()(logits.bfloat16(), target)
    assert loss.dtype == torch.float32
    expected = np_cross_entropy(logits.bfloat16().float(), target)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# --- OHEM ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("thresh, min_kept, regime", [
    (0.7, 5, "threshold"),          # sorted_p[min_kept] < thresh: the threshold decides
    (0.05, 60, "min_kept"),         # sorted_p[min_kept] > thresh: min_kept decides
    (0.05, 120, "n_valid<=min_kept"),   # fewer valid pixels than min_kept + 1, min_kept < numel
    (0.05, 10_000, "min_kept>numel"),
])
def test_ohem_equals_numpy_reference(thresh, min_kept, regime):
    logits, target = random_case(5)
    n_valid = int((target != IGNORE).sum())
    expected, min_value = np_ohem(logits, target, thresh, min_kept)
    if regime == "threshold":
        assert min_value < thresh
    elif regime == "min_kept":
        assert min_value > thresh and min_kept < n_valid
    else:
        assert n_valid <= min_kept and min_value > thresh
    loss = OhemCrossEntropy(ignore_label=IGNORE, thresh=thresh, min_kept=min_kept)(logits, target)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("thresh, min_kept", [(0.7, 5), (0.05, 60), (0.05, 10_000)])
def test_ohem_with_class_weights_equals_numpy_reference(thresh, min_kept):
    logits, target = random_case(6)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0])
    expected, _ = np_ohem(logits, target, thresh, min_kept, weight.numpy())
    loss = OhemCrossEntropy(thresh=thresh, min_kept=min_kept, weight=weight)(logits, target)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_ohem_gradient_reaches_kept_pixels_only():
    logits, target = random_case(7)
    logits.requires_grad_(True)
    OhemCrossEntropy(thresh=0.7, min_kept=5)(logits, target).backward()
    _, prob, _, valid = np_pixel_terms(logits.detach(), target, None)
    kept = torch.from_numpy(valid & (prob < 0.7))
    grad_norm = logits.grad.abs().sum(dim=1)
    assert kept.any() and (~kept).any()
    assert (grad_norm[kept] > 0).all()
    assert (grad_norm[~kept] == 0).all()


def test_ohem_all_ignored_is_zero_and_backward_works():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), IGNORE)
    loss = OhemCrossEntropy(min_kept=7, weight=torch.ones(3))(logits, target)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


# --- ConfidenceLoss -----------------------------------------------------------------------------

def hand_case():
    """A 2 x 3 label map, whole-pixel offsets, and the expected losses worked out by hand.

    labels      offsets (dx, dy) in pixels     seed         seed label (ref / raw)
    0   1   2   (+1, 0) ( 0, 0) (+1, 0)        (0,1) (0,1) (0,2)*   1    1    2
    0 255   2   ( 0,-1) (-1, 0) (-1, 0)        (0,0) (1,0) (1,1)    0    0    0 / 255
    * x = 3 lies outside the map: border padding reads column 2.

    Reference mode (255 -> 0): positives (0,1) (0,2) (1,0) (1,1); negatives (0,0) (1,2).
    Masked mode: (1,1) is ignored and the seed of (1,2) is ignored, both left out.
    """
    labels = torch.tensor([[[0, 1, 2], [0, IGNORE, 2]]])
    dx = torch.tensor([[1.0, 0.0, 1.0], [0.0, -1.0, -1.0]])
    dy = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    h, w = 2, 3
    offsets = torch.stack((dx * 2 / (w - 1), dy * 2 / (h - 1)))[None]
    conf = torch.tensor([[[[0.2, 0.7, 0.9], [0.6, 0.3, 0.4]]]])
    reference = -(math.log(0.7) + math.log(0.9) + math.log(0.6) + math.log(0.3)
                  + math.log(1 - 0.2) + math.log(1 - 0.4)) / (h * w)
    masked = -(math.log(1 - 0.2) + math.log(0.7) + math.log(0.9) + math.log(0.6)) / 4
    return conf, offsets, labels, reference, masked


def test_confidence_loss_reference_mode_matches_hand_computation():
    conf, offsets, labels, reference, _ = hand_case()
    loss = ConfidenceLoss("reference", ignore_label=IGNORE)(conf, offsets, labels)
    assert loss.item() == pytest.approx(reference, rel=1e-5)


def test_confidence_loss_masked_mode_matches_hand_computation():
    conf, offsets, labels, _, masked = hand_case()
    loss = ConfidenceLoss("masked", ignore_label=IGNORE)(conf, offsets, labels)
    assert loss.item() == pytest.approx(masked, rel=1e-5)


def test_confidence_loss_reference_sums_over_batch_masked_averages():
    conf, offsets, labels, reference, masked = hand_case()
    conf2, offsets2 = conf.repeat(2, 1, 1, 1), offsets.repeat(2, 1, 1, 1)
    labels2 = labels.repeat(2, 1, 1)
    assert ConfidenceLoss("reference")(conf2, offsets2, labels2).item() == pytest.approx(
        2 * reference, rel=1e-5)
    assert ConfidenceLoss("masked")(conf2, offsets2, labels2).item() == pytest.approx(
        masked, rel=1e-5)


def test_confidence_loss_resizes_maps_and_offsets_keep_their_units():
    # Columns 0..3 of a 4 x 4 label map; a constant shift of one label pixel to the right given at
    # 2 x 2 resolution: only the last column (border) keeps its own label.
    labels = torch.arange(4).repeat(4, 1)[None]
    offsets = torch.zeros(1, 2, 2, 2)
    offsets[:, 0] = 2.0 / 3.0
    conf = torch.full((1, 1, 2, 2), 0.8)
    loss = ConfidenceLoss("reference", align_corners=True)(conf, offsets, labels)
    expected = (4 * -math.log(0.8) + 12 * -math.log(0.2)) / 16
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_confidence_loss_gradient_reaches_confidence_only():
    conf, offsets, labels, _, _ = hand_case()
    conf.requires_grad_(True)
    offsets.requires_grad_(True)
    for mode in ("reference", "masked"):
        conf.grad = None
        ConfidenceLoss(mode)(conf, offsets, labels).backward()
        assert conf.grad is not None and conf.grad.abs().sum() > 0
        assert offsets.grad is None


def test_confidence_loss_masked_with_nothing_left_is_zero_with_gradient_path():
    conf = torch.full((1, 1, 2, 2), 0.5, requires_grad=True)
    labels = torch.full((1, 2, 2), IGNORE)
    loss = ConfidenceLoss("masked")(conf, torch.zeros(1, 2, 2, 2), labels)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(conf.grad, torch.zeros_like(conf))


def test_confidence_loss_rejects_unknown_mode():
    with pytest.raises(ValueError, match="masked"):
        ConfidenceLoss("mean")


# --- SegLoss and the builder --------------------------------------------------------------

def offset_output(seed=8):
    gen = torch.Generator().manual_seed(seed)
    b, k, h, w = 2, 4, 4, 4
    return SegOutput(logits=torch.randn(b, k, h, w, generator=gen),
                     offsets=torch.rand(b, 2, h, w, generator=gen) - 0.5,
                     seed_logits=torch.randn(b, k, h, w, generator=gen),
                     fused_logits=torch.randn(b, k, h, w, generator=gen),
                     confidence=torch.rand(b, 1, h, w, generator=gen))


def test_offset_seg_loss_returns_four_weighted_named_terms():
    output = offset_output()
    _, target = random_case(9, h=8, w=8)
    seg, conf = CrossEntropy(), ConfidenceLoss("masked")
    terms = SegLoss(seg, conf, term_weights=(0.1, 0.2, 0.3, 0.4))(output, target)
    assert list(terms) == ["seg", "seed", "fused", "confidence"]
    expected = {"seg": 0.1 * seg(output.logits, target),
                "seed": 0.2 * seg(output.seed_logits, target),
                "fused": 0.3 * seg(output.fused_logits, target),
                "confidence": 0.4 * conf(output.confidence, output.offsets, target)}
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-6), name


def test_offset_seg_loss_baseline_returns_unweighted_seg_only():
    output = SegOutput(logits=offset_output().logits)
    _, target = random_case(10, h=8, w=8)
    seg = CrossEntropy()
    terms = SegLoss(seg, ConfidenceLoss(), term_weights=(0.1, 0.2, 0.3, 0.4))(output, target)
    assert list(terms) == ["seg"]
    assert terms["seg"].item() == pytest.approx(seg(output.logits, target).item(), rel=1e-6)


def test_offset_seg_loss_rejects_wrong_number_of_term_weights():
    with pytest.raises(ValueError, match="4 values"):
        SegLoss(CrossEntropy(), ConfidenceLoss(), term_weights=(1.0, 1.0))


def test_build_criterion_translates_config():
    cfg = get_cfg()
    cfg.DATASET.NUM_CLASSES = 4
    cfg.LOSS.USE_OHEM = True
    cfg.LOSS.OHEMTHRES = 0.8
    cfg.LOSS.OHEMKEEP = 1234
    cfg.LOSS.CONFIDENCE_MODE = "masked"
    cfg.LOSS.TERM_WEIGHTS = [0.1, 0.2, 0.3, 0.4]
    cfg.TRAIN.IGNORE_LABEL = 250
    cfg.MODEL.ALIGN_CORNERS = True
    criterion = build_criterion(cfg, class_weights=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    seg = criterion.seg_loss
    assert isinstance(seg, OhemCrossEntropy)
    assert (seg.thresh, seg.min_kept, seg.ignore_label, seg.align_corners) == (0.8, 1234, 250, True)
    assert seg.weight.tolist() == [1.0, 2.0, 3.0, 4.0]
    conf = criterion.confidence_loss
    # The confidence term resizes with align_corners False whatever MODEL.ALIGN_CORNERS says.
    assert (conf.mode, conf.ignore_label, conf.align_corners) == ("masked", 250, False)
    assert criterion.term_weights == (0.1, 0.2, 0.3, 0.4)


@pytest.mark.parametrize("align_corners", [False, True])
def test_confidence_term_resizes_with_align_corners_false_as_the_ovenet_code(align_corners):
    # Zero offsets: every seed is its own pixel, so every pixel is a positive and the term is
    # -sum log(F + 1e-7) / (H W) of F resized to the label size.  OpenCV's INTER_LINEAR is the
    # half-pixel (align_corners False) bilinear upsampling.
    cfg = get_cfg()
    cfg.DATASET.NUM_CLASSES = 3
    cfg.MODEL.ALIGN_CORNERS = align_corners
    cfg.LOSS.CLASS_BALANCE = False
    conf = torch.tensor([[[[0.1, 0.9, 0.5], [0.7, 0.2, 0.6]]]])
    labels = torch.zeros(1, 8, 12, dtype=torch.int64)
    up = cv2.resize(conf[0, 0].numpy(), (12, 8), interpolation=cv2.INTER_LINEAR)
    expected = -np.log(up.astype(np.float64) + 1e-7).sum() / (8 * 12)
    loss = build_criterion(cfg).confidence_loss(conf, torch.zeros(1, 2, 2, 3), labels)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_build_criterion_uses_class_weights_only_with_class_balance():
    cfg = get_cfg()
    cfg.DATASET.NUM_CLASSES = 4
    cfg.LOSS.CLASS_BALANCE = False
    criterion = build_criterion(cfg, class_weights=torch.ones(4))
    assert isinstance(criterion.seg_loss, CrossEntropy) and criterion.seg_loss.weight is None
    cfg.LOSS.CLASS_BALANCE = True
    with pytest.raises(ValueError, match="CLASS_BALANCE"):
        build_criterion(cfg)
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        build_criterion(cfg, class_weights=torch.ones(19))


# --- the two heads of the OCR networks ----------------------------------------------------------

def ocr_output(seed=11, offsets=True):
    gen = torch.Generator().manual_seed(seed)
    b, k, h, w = 2, 4, 4, 4
    maps = [torch.randn(b, k, h, w, generator=gen) * 3 for _ in range(6)]
    if not offsets:
        return OCROutput(logits=maps[0], region_logits=maps[3])
    return OCROutput(maps[0], torch.rand(b, 2, h, w, generator=gen) - 0.5, maps[1], maps[2],
                     torch.rand(b, 1, h, w, generator=gen), maps[3], maps[4], maps[5])


def test_ocr_terms_are_balance_weighted_pairs_inside_the_term_weights():
    output = ocr_output()
    _, target = random_case(12, h=4, w=4)
    conf = ConfidenceLoss()
    loss = SegLoss(CrossEntropy(), conf, term_weights=(0.1, 0.2, 0.3, 0.4),
                         balance_weights=(0.4, 1.0))
    terms = loss(output, target)
    assert list(terms) == ["seg_regions", "seg_ocr", "seed_regions", "seed_ocr", "fused_regions",
                           "fused_ocr", "confidence"]
    maps = {"seg": (output.region_logits, output.logits),
            "seed": (output.region_seed_logits, output.seed_logits),
            "fused": (output.region_fused_logits, output.fused_logits)}
    for (term, (regions, ocr)), w in zip(maps.items(), (0.1, 0.2, 0.3)):
        assert terms[term + "_regions"].item() == pytest.approx(
            w * 0.4 * np_cross_entropy(regions, target), rel=1e-5), term
        assert terms[term + "_ocr"].item() == pytest.approx(
            w * 1.0 * np_cross_entropy(ocr, target), rel=1e-5), term
    expected_conf = 0.4 * conf(output.confidence, output.offsets, target)
    assert terms["confidence"].item() == pytest.approx(expected_conf.item(), rel=1e-6)


@pytest.mark.parametrize("region_mean", ["all_pixels", "labelled"])
def test_plain_hrnet_ocr_loss_is_the_balance_weighted_pair_with_ohem_on_the_ocr_head_only(
        region_mean):
    cfg = get_cfg()
    cfg.DATASET.NUM_CLASSES = 4
    cfg.LOSS.USE_OHEM = True
    cfg.LOSS.OHEMTHRES, cfg.LOSS.OHEMKEEP = 0.7, 20
    cfg.LOSS.REGION_MEAN = region_mean
    weight = [0.5, 1.0, 1.5, 2.0]
    output = ocr_output(offsets=False)
    _, target = random_case(13, h=8, w=8)
    terms = build_criterion(cfg, class_weights=torch.tensor(weight))(output, target)
    assert list(terms) == ["seg_regions", "seg_ocr"]
    up = [F.interpolate(m, size=(8, 8), mode="bilinear", align_corners=False)
          for m in (output.region_logits, output.logits)]
    if region_mean == "labelled":
        regions = np_cross_entropy(up[0], target, weight)
    else:  # the reference: weighted per-pixel losses averaged over every pixel, ignored as 0
        losses, _, _, valid = np_pixel_terms(up[0], target, weight)
        regions = losses[valid].sum() / target.numel()
    assert terms["seg_regions"].item() == pytest.approx(0.4 * regions, rel=1e-5)
    ohem, _ = np_ohem(up[1], target, 0.7, 20, weight)
    assert terms["seg_ocr"].item() == pytest.approx(ohem, rel=1e-5)


def test_unknown_region_mean_is_named():
    cfg = get_cfg()
    cfg.DATASET.NUM_CLASSES = 4
    cfg.LOSS.CLASS_BALANCE = False
    cfg.LOSS.USE_OHEM = True
    cfg.LOSS.REGION_MEAN = "mean"
    with pytest.raises(ValueError, match="LOSS.REGION_MEAN"):
        build_criterion(cfg)


def test_zero_offsets_give_equal_seed_and_initial_terms_for_both_heads(make_tiny_cfg):
    from lib.models import build_model

    cfg = make_tiny_cfg(name="branched_seg_hrnet_ocr")
    cfg.MODEL.OCR.MID_CHANNELS, cfg.MODEL.OCR.KEY_CHANNELS = 16, 8
    cfg.LOSS.CLASS_BALANCE = False
    cfg.LOSS.TERM_WEIGHTS = [1.0, 1.0, 1.0, 1.0]
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.aux_head_offset[3].weight.zero_()
        model.aux_head_offset[3].bias.zero_()
        terms = build_criterion(cfg)(model(torch.randn(2, 3, 32, 64)),
                                     torch.randint(0, 5, (2, 32, 64)))
    for head in ("regions", "ocr"):
        assert terms[f"seed_{head}"].item() == pytest.approx(terms[f"seg_{head}"].item(),
                                                             rel=1e-5)
        assert terms[f"fused_{head}"].item() == pytest.approx(terms[f"seg_{head}"].item(),
                                                              rel=1e-5)
    assert terms["seg_regions"].item() != pytest.approx(terms["seg_ocr"].item(), rel=1e-3)


def test_ocr_loss_needs_two_balance_weights():
    loss = SegLoss(CrossEntropy(), ConfidenceLoss(), balance_weights=(1.0,))
    with pytest.raises(ValueError, match="BALANCE_WEIGHTS"):
        loss(ocr_output(), random_case(14, h=8, w=8)[1])
    # One-head networks do not read them (published HRNetV2 files say [1]).
    assert list(loss(offset_output(), random_case(14, h=8, w=8)[1])) == ["seg", "seed", "fused",
                                                                         "confidence"]


def test_build_criterion_reads_the_balance_weights():
    cfg = get_cfg()
    cfg.DATASET.NUM_CLASSES = 4
    cfg.LOSS.CLASS_BALANCE = False
    assert build_criterion(cfg).balance_weights == (0.4, 1.0)
    cfg.LOSS.BALANCE_WEIGHTS = [0.5, 2.0]
    assert build_criterion(cfg).balance_weights == (0.5, 2.0)
