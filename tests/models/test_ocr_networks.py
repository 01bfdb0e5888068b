"""HRNet-OCR and the offset-vector HRNet-OCR: official structure, head maths, outputs, gradients."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from lib.config import get_cfg
from lib.models import OCROutput, build_model
from lib.models.losses import build_criterion
from lib.models.ocr import ObjectAttention, SpatialGather
from tests.helpers import tiny_ocr_cfg

# Key -> shape of the head tensors of the official HRNet-OCR-W48 (19 classes), written out from
# its model file: 3x3 conv with bias, attention convs without bias, BN inside (BN, ReLU) pairs.
OFFICIAL_OCR_HEAD = {
    "conv3x3_ocr.0.weight": (512, 720, 3, 3),
    "conv3x3_ocr.0.bias": (512,),
    "conv3x3_ocr.1.running_var": (512,),
    "ocr_distri_head.object_context_block.f_pixel.0.weight": (256, 512, 1, 1),
    "ocr_distri_head.object_context_block.f_pixel.1.0.weight": (256,),
    "ocr_distri_head.object_context_block.f_pixel.2.weight": (256, 256, 1, 1),
    "ocr_distri_head.object_context_block.f_pixel.3.0.num_batches_tracked": (),
    "ocr_distri_head.object_context_block.f_object.2.weight": (256, 256, 1, 1),
    "ocr_distri_head.object_context_block.f_object.3.0.bias": (256,),
    "ocr_distri_head.object_context_block.f_down.0.weight": (256, 512, 1, 1),
    "ocr_distri_head.object_context_block.f_down.1.0.running_mean": (256,),
    "ocr_distri_head.object_context_block.f_up.0.weight": (512, 256, 1, 1),
    "ocr_distri_head.object_context_block.f_up.1.0.weight": (512,),
    "ocr_distri_head.conv_bn_dropout.0.weight": (512, 1024, 1, 1),
    "ocr_distri_head.conv_bn_dropout.1.0.running_var": (512,),
    "cls_head.weight": (19, 512, 1, 1),
    "cls_head.bias": (19,),
    "aux_head.0.weight": (720, 720, 1, 1),
    "aux_head.0.bias": (720,),
    "aux_head.1.weight": (720,),
    "aux_head.3.weight": (19, 720, 1, 1),
    "aux_head.3.bias": (19,),
}
NO_BIAS = ["ocr_distri_head.object_context_block.f_pixel.0.bias",
           "ocr_distri_head.object_context_block.f_up.0.bias",
           "ocr_distri_head.conv_bn_dropout.0.bias"]
TRUNK_TOPS = {"conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2",
              "stage3", "transition3", "stage4"}
OCR_TOPS = {"conv3x3_ocr", "ocr_distri_head", "cls_head", "aux_head"}


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _w48(name):
    cfg = get_cfg()
    cfg.MODEL.NAME = name
    return build_model(cfg)


@pytest.fixture(scope="module")
def w48_ocr():
    return _w48("seg_hrnet_ocr")


@pytest.fixture(scope="module")
def w48_offset_ocr():
    return _w48("branched_seg_hrnet_ocr")


def test_hrnet_ocr_w48_has_the_official_keys_shapes_and_parameter_count(w48_ocr):
    sd = w48_ocr.state_dict()
    assert len(sd) == 1890
    assert _count(w48_ocr) == 70_372_678
    for key, shape in OFFICIAL_OCR_HEAD.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k in sd for k in NO_BIAS)
    assert {k.split(".")[0] for k in sd} == TRUNK_TOPS | OCR_TOPS  # the gather has no tensors


def test_offset_hrnet_ocr_w48_has_the_ovenet_keys_and_parameter_count(w48_ocr, w48_offset_ocr):
    sd = w48_offset_ocr.state_dict()
    assert len(sd) == 2481
    assert _count(w48_offset_ocr) == 103_309_225
    base = w48_ocr.state_dict()
    assert set(base) <= set(sd)
    assert {k.split(".")[0] for k in set(sd) - set(base)} == {"transition3_2", "stage4_2",
                                                             "aux_head_offset"}
    assert tuple(sd["aux_head_offset.0.weight"].shape) == (720, 720, 1, 1)
    assert tuple(sd["aux_head_offset.3.weight"].shape) == (3, 720, 1, 1)
    assert "stage4_2.1.fuse_layers.3.0.2.0.weight" in sd
    assert "stage4_2.2.branches.0.0.conv1.weight" not in sd
    assert not list(w48_offset_ocr.buffers(recurse=False))  # no coordinate grid in the state


def test_w48_ocr_networks_run_at_small_size(w48_ocr, w48_offset_ocr):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = w48_ocr.eval()(x)
        offset = w48_offset_ocr.eval()(x)
    assert isinstance(plain, OCROutput) and plain.offsets is None
    assert plain.logits.shape == plain.region_logits.shape == (1, 19, 16, 16)
    assert plain.final is plain.logits
    shapes = [tuple(t.shape) for t in offset]
    assert shapes == [(1, 19, 16, 16), (1, 2, 16, 16), (1, 19, 16, 16), (1, 19, 16, 16),
                      (1, 1, 16, 16), (1, 19, 16, 16), (1, 19, 16, 16), (1, 19, 16, 16)]
    assert offset.final is offset.fused_logits
    assert offset.offsets.abs().max() <= 0.5


def test_only_the_trunk_gets_the_narrow_initialisation_the_heads_keep_pytorchs(w48_offset_ocr):
    sd = w48_offset_ocr.state_dict()
    for key in ("conv1.weight", "stage4.0.branches.0.0.conv1.weight",
                "stage4_2.0.branches.0.0.conv1.weight"):
        assert sd[key].std() < 0.0015, key
    for key in ("cls_head.weight", "aux_head.3.weight", "aux_head_offset.3.weight",
                "conv3x3_ocr.0.weight"):
        assert sd[key].std() > 0.005, key


def test_gather_pools_each_class_over_its_own_pixels():
    # With region logits +100 inside a class's mask and -100 outside, the softmax over pixels is
    # uniform on the mask: the object representation is the mean feature of the mask.
    torch.manual_seed(0)
    feats = torch.randn(2, 6, 4, 5)
    masks = torch.zeros(2, 3, 4, 5)
    masks[:, 0, :2], masks[:, 1, 2:], masks[:, 2, :, 0] = 1, 1, 1
    objects = SpatialGather()(feats, (masks * 2 - 1) * 100)
    assert objects.shape == (2, 6, 3, 1)
    for k in range(3):
        expected = (feats * masks[:, k:k + 1]).sum((2, 3)) / masks[:, k:k + 1].sum((2, 3))
        torch.testing.assert_close(objects[:, :, k, 0], expected)


def test_gather_scale_multiplies_the_region_logits():
    feats, regions = torch.randn(1, 4, 3, 3), torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(SpatialGather(scale=2.0)(feats, regions),
                               SpatialGather()(feats, 2.0 * regions))


def test_object_attention_matches_a_numpy_derivation():
    torch.manual_seed(0)
    block = ObjectAttention(in_channels=6, key_channels=4).eval()
    feats, objects = torch.randn(1, 6, 3, 2), torch.randn(1, 6, 5, 1)
    with torch.no_grad():
        out = block(feats, objects).numpy()
        q = block.f_pixel(feats).numpy()[0].reshape(4, -1).T  # hw x Ck
        k = block.f_object(objects).numpy()[0].reshape(4, -1)  # Ck x K
        v = block.f_down(objects).numpy()[0].reshape(4, -1).T  # K x Ck
        sim = q @ k / 2.0  # key_channels ** 0.5
        sim = np.exp(sim - sim.max(1, keepdims=True))
        sim /= sim.sum(1, keepdims=True)  # softmax over the objects
        context = torch.from_numpy((sim @ v).T.reshape(1, 4, 3, 2).astype(np.float32))
        expected = block.f_up(context).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_zero_offset_head_gives_seeds_and_fused_maps_equal_to_both_heads():
    model = build_model(tiny_ocr_cfg()).eval()
    with torch.no_grad():
        model.aux_head_offset[3].weight.zero_()
        model.aux_head_offset[3].bias.zero_()
        out = model(torch.randn(1, 3, 32, 64))
    assert torch.equal(out.offsets, torch.zeros_like(out.offsets))
    for logits, seeds, fused in ((out.logits, out.seed_logits, out.fused_logits),
                                 (out.region_logits, out.region_seed_logits,
                                  out.region_fused_logits)):
        torch.testing.assert_close(seeds, logits, atol=1e-6, rtol=0)
        torch.testing.assert_close(fused, logits, atol=1e-6, rtol=0)


def test_both_heads_use_one_offset_field_and_one_confidence():
    # A constant offset of one pixel to the right: every seed map is its logits shifted left.
    model = build_model(tiny_ocr_cfg()).eval()
    w = 16
    with torch.no_grad():
        model.aux_head_offset[3].weight.zero_()
        bias = model.aux_head_offset[3].bias
        bias.copy_(torch.tensor([float(np.arctanh(2.0 / (w - 1) / 0.5)), 0.0, 0.0]))
        out = model(torch.randn(1, 3, 32, 4 * w))
    for logits, seeds in ((out.logits, out.seed_logits),
                          (out.region_logits, out.region_seed_logits)):
        torch.testing.assert_close(seeds[..., :-1], logits[..., 1:], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.confidence, torch.full_like(out.confidence, 0.5))
    fused = 0.5 * out.logits + 0.5 * out.seed_logits
    torch.testing.assert_close(out.fused_logits, fused)


def test_probability_mode_returns_log_probabilities_for_both_heads():
    cfg = tiny_ocr_cfg()
    cfg.MODEL.EXTRA.LOGITS = False
    with torch.no_grad():
        out = build_model(cfg).eval()(torch.randn(1, 3, 32, 64))
    for logp in (out.seed_logits, out.fused_logits, out.region_seed_logits,
                 out.region_fused_logits):
        torch.testing.assert_close(logp.logsumexp(dim=1), torch.zeros(1, 8, 16), atol=1e-5,
                                   rtol=0)


def test_total_loss_reaches_every_trainable_parameter_of_the_offset_ocr_network():
    cfg = tiny_ocr_cfg()
    cfg.LOSS.CLASS_BALANCE = False
    model = build_model(cfg).train()
    torch.manual_seed(0)
    target = torch.randint(0, 5, (2, 32, 64))
    target[:, :4] = 255
    terms = build_criterion(cfg)(model(torch.randn(2, 3, 32, 64)), target)
    assert set(terms) == {"seg_regions", "seg_ocr", "seed_regions", "seed_ocr", "fused_regions",
                          "fused_ocr", "confidence"}
    sum(terms.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and
               (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing


def test_freezed_par_trains_only_the_offset_path_of_the_ocr_network():
    cfg = tiny_ocr_cfg()
    cfg.MODEL.FREEZED_PAR = True
    model = build_model(cfg).train()
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"transition3_2", "stage4_2", "aux_head_offset"}
    assert not model.cls_head.training and not model.ocr_distri_head.training
    assert model.aux_head_offset.training


@pytest.mark.parametrize("name", ["seg_hrnet", "branched_seg_hrnet", "seg_hrnet_ocr",
                                  "branched_seg_hrnet_ocr"])
def test_classifiers_are_exactly_the_convs_with_num_classes_outputs(name):
    cfg = tiny_ocr_cfg(name=name, num_classes=7)
    model = build_model(cfg)
    convs = {n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)
             and m.out_channels == 7}
    assert set(type(model).CLASSIFIERS) == convs


def test_bn_momentum_key_sets_every_batch_norm():
    cfg = tiny_ocr_cfg()
    cfg.MODEL.BN_MOMENTUM = 0.1
    momenta = {m.momentum for m in build_model(cfg).modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {0.1}
    default = {m.momentum for m in build_model(tiny_ocr_cfg()).modules()
               if isinstance(m, nn.BatchNorm2d)}
    assert default == {0.01}
