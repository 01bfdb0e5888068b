"""The speed flags keep the results: bf16 autocast, channels_last and torch.compile, on the model
itself and through ``build_eval_model`` (TRAIN.AMP, TRAIN.CHANNELS_LAST, TRAIN.COMPILE)."""
import copy
import dataclasses
import os
import shutil

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.evaluation.protocols import InferenceSettings, forward_logits, predict
from lib.models import build_eval_model, build_model
from tests.helpers import tiny_cfg

HEIGHT, WIDTH, BLOCK = 64, 128, 16
TRAIN_STEPS = 40
ATOL = 1e-4


def _block_image(generator, num_classes):
    """1 x 3 x H x W image of 16 x 16 blocks, each of a random class drawn in that class's colour
    plus noise, and its 1 x H x W label."""
    blocks = torch.randint(0, num_classes, (HEIGHT // BLOCK, WIDTH // BLOCK), generator=generator)
    label = blocks.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[None]
    colours = torch.randn(num_classes, 3, generator=generator)
    image = colours[label[0]].permute(2, 0, 1)[None]
    return image + 0.3 * torch.randn(1, 3, HEIGHT, WIDTH, generator=generator), label


@pytest.fixture(scope="module")
def confident():
    """(model, image): the tiny offset network with 19 classes, trained on one image, eval mode.

    With its initial weights (convolutions N(0, 0.001^2)) the network predicts one class at every
    pixel by a margin of about 1e-3: bf16 agreement would hold trivially and a 1e-4 tolerance on
    logits would say nothing.  A few Adam steps on an image of coloured blocks, then batch-norm
    statistics re-estimated on that image, give logits of order 10 and confident predictions of
    many classes.
    """
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = build_model(tiny_cfg(num_classes=19), load_pretrained=False)
    image, label = _block_image(generator, 19)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(TRAIN_STEPS):
        logits = F.interpolate(model(image).final, size=(HEIGHT, WIDTH), mode="bilinear")
        loss = F.cross_entropy(logits, label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: one batch gives exact statistics
    with torch.no_grad():
        model(image)
    return model.eval(), image


@pytest.fixture(scope="module")
def reference(confident):
    """fp32 logits of the confident model on its image: 1 x 19 x H x W."""
    model, image = confident
    logits = forward_logits(model, image)
    assert logits.argmax(dim=1).unique().numel() >= 5, "the model should predict many classes"
    return logits


def _agreement(a, b):
    return (a.argmax(dim=1) == b.argmax(dim=1)).float().mean().item()


def _is_channels_last(model):
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    return all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)


def _compiled_logits(model, image):
    """forward_logits of a compiled model; skips when this machine cannot compile."""
    if not any(shutil.which(c) for c in (os.environ.get("CXX", "c++"), "g++", "clang++")):
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    try:
        return forward_logits(model, image)
    except torch._dynamo.exc.BackendCompilerFailed as e:
        pytest.skip(f"the inductor backend cannot compile here: {e}")


def test_bf16_autocast_keeps_99_percent_of_the_fp32_predictions(confident, reference):
    model, image = confident
    logits = forward_logits(model, image, amp_dtype=torch.bfloat16)
    assert logits.dtype == torch.float32
    assert not torch.equal(logits, reference), "bf16 autocast did not change a single logit"
    assert _agreement(logits, reference) >= 0.99


def test_channels_last_model_gives_the_fp32_logits(confident, reference):
    model, image = confident
    model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    assert _is_channels_last(model)
    torch.testing.assert_close(forward_logits(model, image), reference, atol=ATOL, rtol=0)


@pytest.mark.slow
def test_compiled_model_gives_the_fp32_logits(confident, reference):
    model, image = confident
    logits = _compiled_logits(torch.compile(model), image)
    torch.testing.assert_close(logits, reference, atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def weights_file(confident, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny_offset.pth"
    torch.save(confident[0].state_dict(), path)
    return str(path)


def _eval_cfg(**train):
    cfg = tiny_cfg(num_classes=19)
    cfg.TEST.BASE_SIZE = WIDTH
    cfg.TEST.IMAGE_SIZE = [WIDTH // 2, HEIGHT // 2]
    for key, value in train.items():
        cfg.TRAIN[key] = value
    return cfg


def test_build_eval_model_with_train_amp_keeps_99_percent_of_the_predictions(
        confident, reference, weights_file):
    _, image = confident
    cfg = _eval_cfg(AMP=True)
    model = build_eval_model(cfg, weights_file, torch.device("cpu"))
    settings = InferenceSettings.from_config(cfg)
    assert settings.amp_dtype == torch.bfloat16
    scores = predict(model, image, settings)
    fp32 = predict(model, image, dataclasses.replace(settings, amp_dtype=None))
    assert not torch.equal(scores, fp32)
    torch.testing.assert_close(fp32.log(), reference, atol=ATOL, rtol=0)
    assert _agreement(scores, fp32) >= 0.99


def test_build_eval_model_with_channels_last_gives_the_fp32_logits(confident, reference,
                                                                    weights_file):
    _, image = confident
    model = build_eval_model(_eval_cfg(CHANNELS_LAST=True), weights_file, torch.device("cpu"))
    assert not model.training and _is_channels_last(model)
    torch.testing.assert_close(forward_logits(model, image), reference, atol=ATOL, rtol=0)


@pytest.mark.slow
def test_build_eval_model_with_compile_gives_the_fp32_logits(confident, reference, weights_file):
    _, image = confident
    model = build_eval_model(_eval_cfg(COMPILE=True), weights_file, torch.device("cpu"))
    assert hasattr(model, "_orig_mod"), "TRAIN.COMPILE did not compile the model"
    torch.testing.assert_close(_compiled_logits(model, image), reference, atol=ATOL, rtol=0)
