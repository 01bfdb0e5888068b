"""timm's HRNet-W48 state dicts (.pth and the hub's .safetensors) initialise our W48 networks.

The reference is timm itself: its networks are made offline (pretrained=False) and filled with
random values, so that every tensor that arrives can be told apart from a fresh initialisation.
"""
import logging
import os

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from lib.config import load_cfg
from lib.models import build_model
from lib.models.hrnet import run_transition
from lib.models.weights import CheckpointError, read_state_dict
from tests.helpers import ROOT

timm = pytest.importorskip("timm")

W48 = os.path.join(ROOT, "experiments", "cityscapes",
                   "seg_hrnet_w48_train_512x1024_sgd_lr1e-2_wd5e-4_bs_12_epoch484.yaml")
W48_OFFSET = W48.replace("bs_12", "bs_8")  # branched_seg_hrnet, OFFSET_BRANCH 4
HEAD = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


def _randomised_timm(name, seed):
    """timm's ``name`` in eval mode with every floating-point tensor random (variances > 0)."""
    model = timm.create_model(name, pretrained=False).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.rand(tensor.shape, generator=generator)
                tensor.copy_(values + 0.5 if key.endswith("running_var") else values * 0.2 - 0.1)
    return model


@pytest.fixture(scope="module", params=[("hrnet_w48", ".pth"), ("hrnet_w48_ssld", ".safetensors")],
                ids=lambda p: f"{p[0]}{p[1]}")
def timm_file(request, tmp_path_factory):
    """(timm model, its state-dict file) written as timm users and the hub write it."""
    name, ext = request.param
    model = _randomised_timm(name, seed=len(name))
    path = str(tmp_path_factory.mktemp("hub") / f"{name}{ext}")
    state = model.state_dict()
    if ext == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    return model, path


def _w48(cfg_path, pretrained):
    return build_model(load_cfg(cfg_path, ["MODEL.PRETRAINED", pretrained])).eval()


def test_timm_file_fills_every_trunk_tensor_with_timms_values(timm_file, caplog):
    model, path = timm_file
    reference = model.state_dict()
    with caplog.at_level(logging.INFO):
        ours = _w48(W48, path).state_dict()
    loaded = [k for k in ours if k in reference]
    assert len(ours) == 1839 and len(loaded) == 1830
    assert sorted(set(ours) - set(loaded)) == sorted(k for k in ours if k.startswith("last_layer."))
    for k in loaded:
        assert torch.equal(ours[k], reference[k]), k
    head = [k for k in reference if k.startswith(HEAD)]
    assert len(head) + len(loaded) == len(reference)  # nothing else was left out
    assert f"ignored {len(head)} tensors" in caplog.text
    assert "stage4 " in caplog.text and "last_layer 0/9" in caplog.text


def test_offset_network_takes_both_copies_of_stage4_from_the_timm_file(timm_file):
    model, path = timm_file
    reference = model.state_dict()
    ours = _w48(W48_OFFSET, path).state_dict()
    copies = [k for k in ours if k.startswith(("stage4_2.", "transition3_2."))]
    assert copies
    for k in copies:
        original = k.replace("stage4_2.", "stage4.").replace("transition3_2.", "transition3.")
        assert torch.equal(ours[k], reference[original]), k
    assert torch.equal(ours["conv1.weight"], reference["conv1.weight"])


def test_trunk_features_equal_timms_where_the_architectures_coincide(timm_file, monkeypatch):
    model, path = timm_file
    ours = _w48(W48, path)
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        stem = model.act2(model.bn2(model.conv2(model.act1(model.bn1(model.conv1(x))))))
        timm_layer1 = model.layer1(stem)
        timm_stage2 = model.stage2([t(timm_layer1) for t in model.transition1])
        timm_out = model.stages(stem)
        our_layer1 = ours.stem_and_stage1(x)
        our_stage2 = ours.stage2(run_transition(ours.transition1, our_layer1))
        bilinear_out = ours.forward_features(x)
    torch.testing.assert_close(our_layer1[0], timm_layer1, rtol=1e-4, atol=1e-5)
    # Fused branch 1 of stage 2 only adds a strided conv of branch 0: no upsampling involved.
    torch.testing.assert_close(our_stage2[1], timm_stage2[1], rtol=1e-4, atol=1e-5)
    # The rest differs by the resize of the fusion only: nearest in timm, bilinear here.
    assert not torch.allclose(bilinear_out[0], timm_out[0], rtol=1e-3, atol=1e-3)
    interpolate = F.interpolate
    monkeypatch.setattr(F, "interpolate", lambda t, size=None, **_: interpolate(t, size=size))
    with torch.no_grad():
        nearest_out = ours.forward_features(x)
    for ours_k, timm_k in zip(nearest_out, timm_out, strict=True):
        torch.testing.assert_close(ours_k, timm_k, rtol=1e-4, atol=1e-4)


def test_damaged_safetensors_file_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        read_state_dict(str(path))
