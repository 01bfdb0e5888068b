"""Network structure, outputs and gradients."""
import pytest
import torch

from lib.config import get_cfg
from lib.models import SegOutput, build_model


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def w48_baseline():
    return build_model(get_cfg())


def test_hrnetv2_w48_has_the_official_parameter_count_and_keys(w48_baseline):
    sd = w48_baseline.state_dict()
    assert _count(w48_baseline) == 65_859_379
    assert len(sd) == 1839
    official = {  # key -> shape, from the official HRNetV2-W48 segmentation model
        "conv1.weight": (64, 3, 3, 3),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "transition1.0.0.weight": (48, 256, 3, 3),
        "transition1.1.0.0.weight": (96, 256, 3, 3),
        "transition3.3.0.0.weight": (384, 192, 3, 3),
        "stage2.0.branches.1.3.conv2.weight": (96, 96, 3, 3),
        "stage3.3.fuse_layers.0.2.0.weight": (48, 192, 1, 1),
        "stage4.2.fuse_layers.3.0.2.0.weight": (384, 48, 3, 3),
        "stage4.2.fuse_layers.3.0.1.1.running_var": (48,),
        "last_layer.0.weight": (720, 720, 1, 1),
        "last_layer.1.num_batches_tracked": (),
        "last_layer.3.weight": (19, 720, 1, 1),
        "last_layer.3.bias": (19,),
    }
    for key, shape in official.items():
        assert tuple(sd[key].shape) == shape, key
    tops = {k.split(".")[0] for k in sd}
    assert tops == {"conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2",
                    "transition2", "stage3", "transition3", "stage4", "last_layer"}


def test_w48_baseline_runs_at_small_size_and_returns_quarter_resolution_logits(w48_baseline):
    w48_baseline.eval()
    with torch.no_grad():
        out = w48_baseline(torch.randn(1, 3, 64, 128))
    assert isinstance(out, SegOutput)
    assert out.logits.shape == (1, 19, 16, 32) and out.offsets is None
    assert out.final is out.logits


@pytest.mark.parametrize("branch, millions, extra_tops", [
    (4, 98.80, {"transition3_2", "stage4_2"}),
    (3, 110.46, {"transition2_2", "stage3_2", "transition3_2", "stage4_2"}),
    (2, 111.67, {"transition1_2", "stage2_2", "transition2_2", "stage3_2", "transition3_2",
                 "stage4_2"}),
])
def test_w48_offset_network_has_the_thesis_size_and_keys(w48_baseline, branch, millions,
                                                         extra_tops):
    cfg = get_cfg()
    cfg.MODEL.NAME = "branched_seg_hrnet"
    cfg.MODEL.EXTRA.OFFSET_BRANCH = branch
    model = build_model(cfg)
    assert round(_count(model) / 1e6, 2) == millions
    sd, base = model.state_dict(), w48_baseline.state_dict()
    assert set(base) <= set(sd)
    new_tops = {k.split(".")[0] for k in set(sd) - set(base)}
    assert new_tops == extra_tops | {"offset_layer"}
    assert tuple(sd["offset_layer.3.weight"].shape) == (3, 720, 1, 1)
    assert not list(model.buffers(recurse=False))  # no coordinate grid in the state
    if branch == 4:
        assert "stage4_2.1.fuse_layers.3.0.2.0.weight" in sd
        assert "stage4_2.2.branches.0.0.conv1.weight" not in sd
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 64, 128))
        assert [tuple(t.shape) for t in out] == [(1, 19, 16, 32), (1, 2, 16, 32), (1, 19, 16, 32),
                                                 (1, 19, 16, 32), (1, 1, 16, 32)]


def test_offsets_are_bounded_by_the_threshold_and_confidence_is_a_probability(make_tiny_cfg):
    cfg = make_tiny_cfg()
    cfg.MODEL.EXTRA.OFFSET_THRESHOLD = 0.25
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.offset_layer[3].weight.normal_(std=10.0)
        out = model(torch.randn(2, 3, 32, 64))
    assert out.offsets.abs().max() <= 0.25 and out.offsets.abs().max() > 0.2
    assert 0 <= out.confidence.min() and out.confidence.max() <= 1
    assert out.final is out.fused_logits


def test_zero_offset_head_gives_seed_and_fused_logits_equal_to_the_logits(make_tiny_cfg):
    model = build_model(make_tiny_cfg()).eval()
    with torch.no_grad():
        model.offset_layer[3].weight.zero_()
        model.offset_layer[3].bias.zero_()
        out = model(torch.randn(1, 3, 32, 64))
    assert torch.equal(out.offsets, torch.zeros_like(out.offsets))
    assert torch.allclose(out.seed_logits, out.logits, atol=1e-6)
    assert torch.allclose(out.fused_logits, out.logits, atol=1e-6)


def test_probability_mode_returns_log_probabilities(make_tiny_cfg):
    cfg = make_tiny_cfg()
    cfg.MODEL.EXTRA.LOGITS = False
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 64))
    for logp in (out.seed_logits, out.fused_logits):
        assert torch.allclose(logp.logsumexp(dim=1), torch.zeros(1, 8, 16), atol=1e-5)


def _total(out):
    return out.logits.sum() + out.seed_logits.sum() + out.fused_logits.pow(2).sum() + \
        out.confidence.sum() + out.offsets.sum()


@pytest.mark.parametrize("branch", [2, 3, 4])
def test_every_trainable_parameter_receives_a_gradient(make_tiny_cfg, branch):
    model = build_model(make_tiny_cfg(offset_branch=branch)).train()
    _total(model(torch.randn(2, 3, 32, 64))).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and
               (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing


def test_freezed_par_trains_only_the_offset_path_and_keeps_the_rest_in_eval_mode(make_tiny_cfg):
    cfg = make_tiny_cfg()
    cfg.MODEL.FREEZED_PAR = True
    model = build_model(cfg).train()
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"transition3_2", "stage4_2", "offset_layer"}
    assert not model.layer1.training and not model.last_layer.training
    assert model.stage4_2.training and model.offset_layer.training
    stats = model.layer1[0].bn1.running_mean.clone()
    _total(model(torch.randn(2, 3, 32, 64))).backward()
    assert torch.equal(model.layer1[0].bn1.running_mean, stats)
    got = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None}
    assert got == trainable


@pytest.mark.parametrize("name", ["branched_seg_hrnet", "branched_seg_hrnet_ocr"])
def test_the_frozen_part_is_in_eval_mode_as_built(make_tiny_cfg, name):
    # The step parts of training and the benchmark use the network as built, before any
    # train() call: its frozen batch norms must not move in their first step.
    cfg = make_tiny_cfg(name=name)
    cfg.MODEL.FREEZED_PAR = True
    model = build_model(cfg)
    assert model.training and model.stage4_2.training
    assert not model.layer1.training and not model.stage4.training
    stats = model.layer1[0].bn1.running_mean.clone()
    model(torch.randn(2, 3, 32, 64))
    assert torch.equal(model.layer1[0].bn1.running_mean, stats)


def test_unknown_model_name_lists_the_valid_ones():
    cfg = get_cfg()
    cfg.MODEL.NAME = "unet"
    with pytest.raises(KeyError, match="branched_seg_hrnet"):
        build_model(cfg)


def test_a_grid_made_during_inference_serves_training_afterwards(make_tiny_cfg):
    model = build_model(make_tiny_cfg())
    with torch.inference_mode():
        model.eval()(torch.randn(1, 3, 32, 64))
    assert len(model._grids) == 1
    _total(model.train()(torch.randn(2, 3, 32, 64))).backward()  # same map size: cached grid
    assert model.offset_layer[3].weight.grad is not None
