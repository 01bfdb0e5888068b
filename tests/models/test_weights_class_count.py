"""Initialisation from weights trained for another number of classes (fine-tuning)."""
import logging

import pytest
import torch

from lib.models import build_eval_model, build_model
from lib.models.weights import CheckpointError


def _file_with_classes(tmp_path, make_tiny_cfg, name, num_classes, seed=1, **cfg_kwargs):
    """A state dict of a ``num_classes`` network with random (non-initial) values, saved."""
    torch.manual_seed(seed)
    model = build_model(make_tiny_cfg(name=name, num_classes=num_classes, **cfg_kwargs),
                        load_pretrained=False)
    state = {k: torch.randn_like(v) if v.dtype.is_floating_point else v
             for k, v in model.state_dict().items()}
    path = tmp_path / f"{name}_{num_classes}.pth"
    torch.save(state, path)
    return str(path), state


@pytest.mark.parametrize("name", ["seg_hrnet", "branched_seg_hrnet"])
def test_19_class_file_initialises_a_3_class_network_but_its_classifier(
        tmp_path, make_tiny_cfg, caplog, name):
    path, state = _file_with_classes(tmp_path, make_tiny_cfg, name, 19)
    cfg = make_tiny_cfg(name=name, num_classes=3)
    torch.manual_seed(0)
    fresh = build_model(cfg, load_pretrained=False).state_dict()
    cfg.MODEL.PRETRAINED = path
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO):
        sd = build_model(cfg).state_dict()
    class_dependent = {"last_layer.3.weight", "last_layer.3.bias"}
    assert sd["last_layer.3.weight"].shape[0] == 3 and state["last_layer.3.weight"].shape[0] == 19
    for k in sd:
        if k in class_dependent:
            assert torch.equal(sd[k], fresh[k]), k
        else:
            assert torch.equal(sd[k], state[k]), k
    report = caplog.text
    c = sum(cfg.MODEL.EXTRA.STAGE4.NUM_CHANNELS)  # the head's input channels
    assert f"last_layer.3.weight file (19, {c}, 1, 1) vs model (3, {c}, 1, 1)" in report
    assert "last_layer.3.bias file (19,) vs model (3,)" in report
    assert "last_layer 7/9" in report  # per-module report: all of last_layer but conv 3


def test_separate_offset_file_with_another_class_count_fills_the_offset_path(
        tmp_path, make_tiny_cfg):
    main_path, main = _file_with_classes(tmp_path, make_tiny_cfg, "branched_seg_hrnet", 19)
    side_path, side = _file_with_classes(tmp_path, make_tiny_cfg, "branched_seg_hrnet", 8, seed=5)
    cfg = make_tiny_cfg(num_classes=3)
    cfg.MODEL.PRETRAINED, cfg.MODEL.OFFSET_PRETRAINED = main_path, side_path
    sd = build_model(cfg).state_dict()
    for k in sd:
        if k.startswith(("stage4_2.", "transition3_2.")):
            assert torch.equal(sd[k], side[k]), k
        elif not k.startswith(("last_layer.3.", "offset_layer.")):  # the offset head has its own rule
            assert torch.equal(sd[k], main[k]), k


def test_other_shape_mismatches_stay_errors(tmp_path, make_tiny_cfg):
    # FINAL_CONV_KERNEL 3 in the file: the classifier differs beyond its class count.
    cfg3 = make_tiny_cfg(name="seg_hrnet", num_classes=19)
    cfg3.MODEL.EXTRA.FINAL_CONV_KERNEL = 3
    torch.save(build_model(cfg3, load_pretrained=False).state_dict(), tmp_path / "k3.pth")
    cfg = make_tiny_cfg(name="seg_hrnet", num_classes=3)
    cfg.MODEL.PRETRAINED = str(tmp_path / "k3.pth")
    with pytest.raises(CheckpointError, match=r"last_layer.3.weight: file \(19, \d+, 3, 3\)"):
        build_model(cfg)
    # A trunk tensor of another width is an error even with another class count.
    path, state = _file_with_classes(tmp_path, make_tiny_cfg, "seg_hrnet", 19)
    state["last_layer.0.weight"] = torch.zeros(7, 7, 1, 1)
    torch.save(state, path)
    cfg.MODEL.PRETRAINED = path
    with pytest.raises(CheckpointError, match="last_layer.0.weight"):
        build_model(cfg)


def test_evaluation_weights_must_match_the_class_count(tmp_path, make_tiny_cfg):
    path, _ = _file_with_classes(tmp_path, make_tiny_cfg, "seg_hrnet", 19)
    with pytest.raises(CheckpointError, match=r"last_layer.3.weight: file \(19,"):
        build_eval_model(make_tiny_cfg(name="seg_hrnet", num_classes=3), path,
                         torch.device("cpu"))


@pytest.mark.parametrize("name", ["seg_hrnet_ocr", "branched_seg_hrnet_ocr"])
def test_a_150_class_ocr_file_initialises_a_3_class_ocr_network_but_its_two_classifiers(
        tmp_path, make_tiny_cfg, caplog, name):
    def ocr_cfg(num_classes):
        cfg = make_tiny_cfg(name=name, num_classes=num_classes)
        cfg.MODEL.OCR.MID_CHANNELS, cfg.MODEL.OCR.KEY_CHANNELS = 16, 8
        return cfg

    torch.manual_seed(1)
    state = {k: torch.randn_like(v) if v.dtype.is_floating_point else v
             for k, v in build_model(ocr_cfg(150), load_pretrained=False).state_dict().items()}
    path = tmp_path / "ocr_150.pth"
    torch.save(state, path)
    cfg = ocr_cfg(3)
    torch.manual_seed(0)
    fresh = build_model(cfg, load_pretrained=False).state_dict()
    cfg.MODEL.PRETRAINED = str(path)
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO):
        sd = build_model(cfg).state_dict()
    # The class-count convs: the soft-region classifier (aux_head.3) and the OCR classifier.
    class_dependent = {"aux_head.3.weight", "aux_head.3.bias", "cls_head.weight", "cls_head.bias"}
    for k in sd:
        if k in class_dependent:
            assert torch.equal(sd[k], fresh[k]), k
        else:
            assert torch.equal(sd[k], state[k]), k
    for k in class_dependent:
        assert f"{k} file (150" in caplog.text, k
