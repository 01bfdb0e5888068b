"""Loading official, thesis and our own weight files."""
import logging
import os
from collections import OrderedDict

import pytest
import torch

from lib.models import build_model
from lib.models.weights import CheckpointError, load_state_dict, read_state_dict

CLASSIFICATION_ONLY = {
    "incre_modules.0.0.conv1.weight": (32, 8, 1, 1),
    "downsamp_modules.0.0.weight": (64, 32, 3, 3),
    "final_layer.0.weight": (2048, 1024, 1, 1),
    "classifier.weight": (1000, 2048),
    "classifier.bias": (1000,),
}


def _imagenet_file(tmp_path, cfg, name="imagenet.pth", seed=1):
    """An HRNet classification state dict: trunk keys, no segmentation head, classifier extras."""
    torch.manual_seed(seed)
    trunk = build_model(cfg, load_pretrained=False)
    state = OrderedDict((k, torch.randn_like(v.float()).to(v.dtype) if v.dtype.is_floating_point
                         else v) for k, v in trunk.state_dict().items()
                        if k.split(".")[0] not in {"last_layer", "offset_layer"} and "_2." not in k)
    state.update((k, torch.randn(s)) for k, s in CLASSIFICATION_ONLY.items())
    path = tmp_path / name
    torch.save(state, path)
    return str(path), state


def _offset_cfg(make_tiny_cfg, pretrained="", offset_pretrained="", stage4_modules=2):
    cfg = make_tiny_cfg(stage4_modules=stage4_modules)
    cfg.MODEL.PRETRAINED, cfg.MODEL.OFFSET_PRETRAINED = pretrained, offset_pretrained
    return cfg


def test_imagenet_file_fills_every_trunk_tensor_and_both_copies_of_the_duplicated_stages(
        tmp_path, make_tiny_cfg, caplog):
    path, state = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet", stage4_modules=2))
    torch.manual_seed(0)
    fresh = build_model(_offset_cfg(make_tiny_cfg), load_pretrained=False).state_dict()
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO):
        model = build_model(_offset_cfg(make_tiny_cfg, pretrained=path))
    sd = model.state_dict()
    trunk_keys = [k for k in state if k not in CLASSIFICATION_ONLY]
    for k in trunk_keys:
        assert torch.equal(sd[k], state[k]), k
    # stage4 has two modules, stage4_2 one: module 0 is copied, module 1 (surplus) is dropped.
    copied = [k for k in sd if k.startswith(("stage4_2.", "transition3_2."))]
    assert copied
    for k in copied:
        original = k.replace("stage4_2.", "stage4.").replace("transition3_2.", "transition3.")
        assert torch.equal(sd[k], state[original]), k
    for k in sd:
        if k.startswith(("last_layer.", "offset_layer.")):
            assert torch.equal(sd[k], fresh[k]), k  # heads keep their initialisation
    assert "layer1" in caplog.text and "stage4_2" in caplog.text  # per-module report


def test_separate_offset_file_initialises_only_the_duplicated_stages(tmp_path, make_tiny_cfg):
    main_path, main = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet", stage4_modules=2))
    side_path, side = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet", stage4_modules=2),
                                     name="side.pth", seed=7)
    sd = build_model(_offset_cfg(make_tiny_cfg, main_path, side_path)).state_dict()
    assert torch.equal(sd["stage4.0.branches.0.0.conv1.weight"],
                       main["stage4.0.branches.0.0.conv1.weight"])
    assert torch.equal(sd["stage4_2.0.branches.0.0.conv1.weight"],
                       side["stage4.0.branches.0.0.conv1.weight"])
    assert not torch.equal(main["stage4.0.branches.0.0.conv1.weight"],
                           side["stage4.0.branches.0.0.conv1.weight"])


@pytest.mark.parametrize("wrap", ["model.", "module.model.", "module."])
def test_wrapped_segmentation_checkpoints_load_completely(tmp_path, make_tiny_cfg, wrap):
    source = build_model(make_tiny_cfg(), load_pretrained=False)
    state = {wrap + k: v for k, v in source.state_dict().items()}
    state[wrap.replace("model.", "") + "loss.criterion.weight"] = torch.ones(5)
    # The thesis model kept its coordinate grid (batch x h x w x 2) in the state.
    state[wrap + "grid"] = torch.zeros(2, 8, 16, 2)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    target = build_model(make_tiny_cfg(), load_pretrained=False)
    missing = load_state_dict(target, read_state_dict(str(path)), str(path))
    assert missing == []
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)


def test_wrong_shape_raises_with_the_key_and_the_file(tmp_path, make_tiny_cfg):
    path, state = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet"))
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_model(_offset_cfg(make_tiny_cfg, pretrained=path, stage4_modules=1))
    assert "layer1.0.conv1.weight" in str(err.value) and path in str(err.value)


def test_unexpected_key_raises(tmp_path, make_tiny_cfg):
    path = tmp_path / "odd.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 3, 3), "head.fc.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="head.fc.weight"):
        build_model(_offset_cfg(make_tiny_cfg, pretrained=str(path)))


def test_file_that_matches_nothing_raises(tmp_path, make_tiny_cfg):
    path = tmp_path / "empty.pth"
    torch.save({"classifier.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="no tensor"):
        build_model(_offset_cfg(make_tiny_cfg, pretrained=str(path)))


def test_missing_or_corrupt_file_is_named(tmp_path, make_tiny_cfg):
    with pytest.raises(CheckpointError, match="nowhere.pth"):
        build_model(_offset_cfg(make_tiny_cfg, pretrained=str(tmp_path / "nowhere.pth")))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pth"):
        read_state_dict(str(bad))


def test_full_load_requires_every_tensor(tmp_path, make_tiny_cfg):
    path, _ = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet"))
    model = build_model(make_tiny_cfg(name="seg_hrnet"), load_pretrained=False)
    with pytest.raises(CheckpointError, match="last_layer"):
        load_state_dict(model, read_state_dict(path), path, require_all=True)


# --- checkpoints of the original codes ----------------------------------------------------------

def _rewrite_pickle(path, old, new):
    """Rewrite names inside the pickle of a torch zip file (as another NumPy would have written)."""
    import zipfile

    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in entries:
            dst.writestr(info, data.replace(old, new) if info.filename.endswith("data.pkl")
                         else data)


@pytest.mark.parametrize("numpy_1_names", [False, True])
def test_reference_checkpoint_with_numpy_scalars_loads(tmp_path, make_tiny_cfg, numpy_1_names):
    import numpy as np

    source = build_model(make_tiny_cfg(), load_pretrained=False)
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"epoch": 3, "best_mIoU": np.float64(0.61), "step": np.int64(7),
                "state_dict": {"model." + k: v for k, v in source.state_dict().items()},
                "optimizer": {}}, path)
    if numpy_1_names:
        _rewrite_pickle(path, b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar")
        assert b"numpy.core.multiarray" in _pickle_bytes(path)
    state = read_state_dict(str(path))
    assert set(state) == set(source.state_dict())


def _pickle_bytes(path):
    import zipfile

    with zipfile.ZipFile(path) as z:
        return b"".join(z.read(n) for n in z.namelist() if n.endswith("data.pkl"))


class NotAScalar:
    pass


def test_other_python_objects_in_a_checkpoint_are_still_refused(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "extra": NotAScalar()}, path)
    with pytest.raises(CheckpointError, match="odd.pth"):
        read_state_dict(str(path))


def _ocr_cfg(make_tiny_cfg, name="branched_seg_hrnet_ocr", **kwargs):
    cfg = make_tiny_cfg(name=name, **kwargs)
    cfg.MODEL.OCR.MID_CHANNELS, cfg.MODEL.OCR.KEY_CHANNELS = 16, 8
    return cfg


@pytest.mark.parametrize("name", ["seg_hrnet_ocr", "branched_seg_hrnet_ocr"])
def test_official_and_ovenet_ocr_checkpoints_load_for_evaluation(tmp_path, make_tiny_cfg, name):
    from lib.models import build_eval_model

    cfg = _ocr_cfg(make_tiny_cfg, name=name)
    source = build_model(cfg, load_pretrained=False)
    state = {"model." + k: v for k, v in source.state_dict().items()}
    state["loss.criterion.weight"] = torch.ones(5)
    if name == "branched_seg_hrnet_ocr":
        state["model.coords"] = torch.zeros(2, 16, 32, 2)  # OVeNet's batch x h x w x 2 grid
    path = tmp_path / "best.pth"
    torch.save(state, path)
    model = build_eval_model(cfg, str(path), torch.device("cpu"))
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_hrnetv2_segmentation_checkpoint_initialises_the_soft_region_head(tmp_path, make_tiny_cfg,
                                                                           caplog):
    hrnet = build_model(make_tiny_cfg(name="seg_hrnet"), load_pretrained=False)
    path = tmp_path / "hrnet_cs.pth"
    torch.save({"model." + k: v for k, v in hrnet.state_dict().items()}, path)
    cfg = _ocr_cfg(make_tiny_cfg, name="seg_hrnet_ocr")
    cfg.MODEL.PRETRAINED = str(path)
    with caplog.at_level(logging.INFO):
        sd = build_model(cfg).state_dict()
    for k, v in hrnet.state_dict().items():
        assert torch.equal(sd[k.replace("last_layer.", "aux_head.")], v), k
    assert "last_layer initialises aux_head" in caplog.text
    assert "aux_head 9/9" in caplog.text and "cls_head 0/2" in caplog.text


def test_imagenet_file_initialises_the_trunk_and_the_offset_copies_of_the_ocr_network(
        tmp_path, make_tiny_cfg):
    path, state = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet", stage4_modules=2))
    torch.manual_seed(0)
    fresh = build_model(_ocr_cfg(make_tiny_cfg, stage4_modules=2),
                        load_pretrained=False).state_dict()
    cfg = _ocr_cfg(make_tiny_cfg, stage4_modules=2)
    cfg.MODEL.PRETRAINED = path
    torch.manual_seed(0)
    sd = build_model(cfg).state_dict()
    for k in state:
        if k not in CLASSIFICATION_ONLY:
            assert torch.equal(sd[k], state[k]), k
    for k in sd:
        if k.startswith(("stage4_2.", "transition3_2.")):
            original = k.replace("stage4_2.", "stage4.").replace("transition3_2.", "transition3.")
            assert torch.equal(sd[k], state[original]), k
        if k.startswith(("aux_head", "cls_head", "conv3x3_ocr", "ocr_distri_head")):
            assert torch.equal(sd[k], fresh[k]), k


def _thesis_checkpoint(tmp_path, make_tiny_cfg):
    """A thesis-style offset-network checkpoint (``model.`` prefix, random values): its path and
    its tensors as read back."""
    torch.manual_seed(3)
    trained = build_model(make_tiny_cfg(), load_pretrained=False).state_dict()
    path = tmp_path / "offset_ckpt.pth"
    torch.save({"model." + k: torch.randn_like(v.float()).to(v.dtype) for k, v in trained.items()},
               path)
    return path, read_state_dict(str(path))


@pytest.mark.parametrize("name, head", [("branched_seg_hrnet", "offset_layer"),
                                        ("branched_seg_hrnet_ocr", "aux_head_offset")])
@pytest.mark.parametrize("take", [False, True])
def test_offset_head_of_an_offset_checkpoint_is_taken_only_behind_the_key(
        tmp_path, make_tiny_cfg, caplog, name, head, take):
    main_path, _ = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet"))
    # A thesis offset-network checkpoint (offset_layer) serves both networks.
    offset_path, trained = _thesis_checkpoint(tmp_path, make_tiny_cfg)
    cfg = _ocr_cfg(make_tiny_cfg, name=name)
    cfg.MODEL.PRETRAINED, cfg.MODEL.OFFSET_PRETRAINED = main_path, str(offset_path)
    cfg.MODEL.FREEZED_PAR = True
    cfg.MODEL.OFFSET_PRETRAINED_HEAD = take
    torch.manual_seed(0)
    fresh = build_model(cfg, load_pretrained=False).state_dict()
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO):
        sd = build_model(cfg).state_dict()
    assert torch.equal(sd["stage4_2.0.branches.0.0.conv1.weight"],
                       trained["stage4_2.0.branches.0.0.conv1.weight"])
    for k in (f"{head}.0.weight", f"{head}.3.bias"):
        expected = trained[k.replace(head, "offset_layer")] if take else fresh[k]
        assert torch.equal(sd[k], expected), k
    assert (f"{head} taken from offset_layer" if take
            else f"{head} left at its initialisation") in caplog.text


def test_ovenet_acdc_fine_tuning_hrnet_ocr_weights_plus_imagenet_offset_path(tmp_path,
                                                                             make_tiny_cfg):
    # The OVeNet ACDC recipe: MODEL.PRETRAINED an HRNet-OCR checkpoint, MODEL.OFFSET_PRETRAINED
    # the ImageNet file, MODEL.FREEZED_PAR true.
    ocr = build_model(_ocr_cfg(make_tiny_cfg, name="seg_hrnet_ocr", stage4_modules=2),
                      load_pretrained=False)
    ocr_path = tmp_path / "acdc_hrnet_ocr.pth"
    torch.save({"model." + k: v for k, v in ocr.state_dict().items()}, ocr_path)
    imagenet_path, imagenet = _imagenet_file(tmp_path, make_tiny_cfg(name="seg_hrnet",
                                                                     stage4_modules=2))
    cfg = _ocr_cfg(make_tiny_cfg, stage4_modules=2)
    cfg.MODEL.PRETRAINED, cfg.MODEL.OFFSET_PRETRAINED = str(ocr_path), imagenet_path
    cfg.MODEL.FREEZED_PAR = True
    torch.manual_seed(0)
    fresh = build_model(cfg, load_pretrained=False).state_dict()
    torch.manual_seed(0)
    sd = build_model(cfg).state_dict()
    for k, v in ocr.state_dict().items():
        assert torch.equal(sd[k], v), k
    assert torch.equal(sd["stage4_2.0.branches.0.0.conv1.weight"],
                       imagenet["stage4.0.branches.0.0.conv1.weight"])
    assert torch.equal(sd["aux_head_offset.3.weight"], fresh["aux_head_offset.3.weight"])


def test_the_report_says_when_model_pretrained_itself_supplies_the_offset_head(
        tmp_path, make_tiny_cfg, caplog):
    # The same thesis checkpoint as MODEL.PRETRAINED and MODEL.OFFSET_PRETRAINED: its
    # offset_layer comes in through MODEL.PRETRAINED, and the report must say so.
    path, trained = _thesis_checkpoint(tmp_path, make_tiny_cfg)
    cfg = make_tiny_cfg()
    cfg.MODEL.PRETRAINED = cfg.MODEL.OFFSET_PRETRAINED = str(path)
    with caplog.at_level(logging.INFO):
        sd = build_model(cfg).state_dict()
    assert torch.equal(sd["offset_layer.3.weight"], trained["offset_layer.3.weight"])
    assert f"offset_layer taken from {path}" in caplog.text
    assert "left at its initialisation" not in caplog.text


@pytest.mark.parametrize("name", ["seg_hrnet", "seg_hrnet_ocr"])
def test_a_baseline_initialised_from_an_offset_checkpoint_takes_the_trunk_and_skips_the_path(
        tmp_path, make_tiny_cfg, caplog, name):
    path, trained = _thesis_checkpoint(tmp_path, make_tiny_cfg)
    cfg = _ocr_cfg(make_tiny_cfg, name=name) if name == "seg_hrnet_ocr" else make_tiny_cfg(
        name=name)
    cfg.MODEL.PRETRAINED = str(path)
    with caplog.at_level(logging.INFO):
        sd = build_model(cfg).state_dict()
    for k, v in sd.items():
        if k.startswith(("conv1.", "layer1.", "stage2.", "stage3.", "stage4.")):
            assert torch.equal(v, trained[k]), k
    offset_keys = [k for k in trained if k.startswith(("transition3_2.", "stage4_2.",
                                                       "offset_layer."))]
    assert f"{len(offset_keys)} tensors of the offset path are unused" in caplog.text
    assert "offset_layer, stage4_2, transition3_2" in caplog.text


def test_evaluation_weights_of_an_offset_network_stay_strict_for_a_baseline(tmp_path,
                                                                             make_tiny_cfg):
    from lib.models import build_eval_model

    path, _ = _thesis_checkpoint(tmp_path, make_tiny_cfg)
    with pytest.raises(CheckpointError, match="keys the model does not have"):
        build_eval_model(make_tiny_cfg(name="seg_hrnet"), str(path), "cpu")


def test_weights_of_another_network_are_described_in_words_with_what_the_config_builds(
        tmp_path, make_tiny_cfg):
    from lib.models import build_eval_model

    path, _ = _thesis_checkpoint(tmp_path, make_tiny_cfg)
    with pytest.raises(CheckpointError) as info:
        build_eval_model(make_tiny_cfg(name="seg_hrnet"), str(path), "cpu")
    assert str(info.value).startswith(
        f"{path} holds an offset network: offset_layer, stage4_2, transition3_2, but the config "
        f"builds an HRNetV2 network (no offset path, no OCR): last_layer: ")
    # The other way round: the offset network misses its offset path in a baseline's file.
    baseline = tmp_path / "baseline.pth"
    torch.save(build_model(make_tiny_cfg(name="seg_hrnet"), load_pretrained=False).state_dict(),
               baseline)
    with pytest.raises(CheckpointError) as info:
        build_eval_model(make_tiny_cfg(), str(baseline), "cpu")
    assert str(info.value).startswith(
        f"{baseline} holds an HRNetV2 network (no offset path, no OCR): last_layer, but the "
        f"config builds an offset network: offset_layer, stage4_2, transition3_2: ")


@pytest.mark.parametrize("keys, words", [
    (["conv1.weight", "conv3x3_ocr.0.weight", "ocr_distri_head.x", "cls_head.weight",
      "aux_head.0.weight"], "an OCR network: aux_head, cls_head, conv3x3_ocr, ocr_distri_head"),
    (["cls_head.weight", "stage4_2.0.x", "transition3_2.0.x", "aux_head_offset.0.weight"],
     "an OCR network with an offset path: aux_head_offset, stage4_2, transition3_2, cls_head"),
    (["layer1.0.conv1.weight", "classifier.weight", "final_layer.0.weight"],
     "an ImageNet classification network: classifier, final_layer"),
    (["conv1.weight", "layer1.0.x"], "no network of this project: conv1, layer1"),
])
def test_network_kind_names_the_modules_that_show_it(keys, words):
    from lib.models.weights import network_kind

    assert network_kind(keys) == words


def test_same_kind_of_network_keeps_the_plain_message(tmp_path, make_tiny_cfg):
    path, _ = _thesis_checkpoint(tmp_path, make_tiny_cfg)
    model = build_model(make_tiny_cfg(stage4_modules=2), load_pretrained=False)
    with pytest.raises(CheckpointError) as info:  # another depth: keys, not kinds, differ
        load_state_dict(model, read_state_dict(str(path)), str(path))
    assert str(info.value).startswith(f"{path}: ") and "holds" not in str(info.value)


@pytest.mark.parametrize("key", ["PRETRAINED", "OFFSET_PRETRAINED"])
def test_missing_initialisation_file_points_to_the_weights_readme(tmp_path, make_tiny_cfg, key):
    cfg = make_tiny_cfg()
    cfg.MODEL[key] = str(tmp_path / "hrnetv2_w48_imagenet_pretrained.pth")
    with pytest.raises(CheckpointError) as info:
        build_model(cfg)
    message = str(info.value)
    assert message.startswith(f"MODEL.{key}: weight file not found: {cfg.MODEL[key]}")
    assert "pretrained_models/README.md" in message
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "pretrained_models", "README.md")
    assert os.path.isfile(readme)
