"""The input normalisation travels with the network: a network that says it takes other statistics
is fed images normalised with them by the datasets of testing, the Predictor and the protocols'
padding.  The expected inputs are written out in NumPy from the image files."""
import os

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn

from lib.config import load_cfg
from lib.datasets import build_dataset
from lib.engine.tester import run_test
from lib.evaluation.loop import predict_by_protocol
from lib.evaluation.predictor import Predictor
from lib.evaluation.protocols import InferenceSettings
from lib.models import MODELS, build_model, input_normalization
from lib.models.hrnet import HRNetTrunk
from lib.utils.normalization import IMAGENET, ImageNormalization
from tests.helpers import OFFSET_CFG, small_opts, tiny_cfg

OTHER = ImageNormalization(mean=(0.5, 0.25, 0.0), std=(0.5, 2.0, 1.0))


def by_formula(bgr, mean, std):
    """1 x 3 x H x W float32 RGB (x / 255 - mean) / std of a BGR uint8 image."""
    rgb = (bgr[:, :, ::-1].astype(np.float64) / 255.0 - np.asarray(mean)) / np.asarray(std)
    return torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32))[None]


class FirstInputs:
    """Records the input of every forward of the HRNet networks (a global forward pre-hook)."""

    def __init__(self):
        self.inputs = []

    def __enter__(self):
        def record(module, args):
            if isinstance(module, HRNetTrunk):
                self.inputs.append(args[0].detach().clone())
        self.handle = nn.modules.module.register_module_forward_pre_hook(record)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.fixture
def other_statistics(monkeypatch):
    """Every network built in the test says it takes ``OTHER``."""
    monkeypatch.setattr(HRNetTrunk, "normalization", OTHER)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_network_takes_imagenet_statistics_through_its_wrappers(name):
    model = build_model(tiny_cfg(name), load_pretrained=False)
    assert input_normalization(model) == IMAGENET
    assert input_normalization(torch.compile(model)) == IMAGENET  # not run: attributes only

    class DataParallelLike(nn.Module):  # DistributedDataParallel keeps the network as .module
        def __init__(self, module):
            super().__init__()
            self.module = module
    assert input_normalization(DataParallelLike(model)) == IMAGENET


def test_a_module_that_does_not_say_how_it_is_fed_is_named():
    with pytest.raises(TypeError, match="Conv2d does not say how its input is normalised"):
        input_normalization(nn.Conv2d(3, 3, 1))


def test_the_datasets_normalise_with_the_statistics_they_are_given(synthetic_root):
    cfg = load_cfg(OFFSET_CFG, ["DATASET.ROOT", synthetic_root])
    dataset = build_dataset(cfg, "val", normalization=OTHER)
    bgr = cv2.imread(os.path.join(dataset.data_dir, dataset.entries[0].image), cv2.IMREAD_COLOR)
    torch.testing.assert_close(dataset[0][0][None], by_formula(bgr, OTHER.mean, OTHER.std))


def _weights(cfg, folder):
    path = os.path.join(folder, "weights.pth")
    torch.save(build_model(cfg, load_pretrained=False).state_dict(), path)
    return path


def test_testing_feeds_the_network_images_normalised_with_its_statistics(
        other_statistics, synthetic_root, tmp_path):
    opts = small_opts(synthetic_root, str(tmp_path)) + [
        "TEST.SCALE_LIST", "1.0", "TEST.FLIP_TEST", "False", "TEST.EVAL_DIR", str(tmp_path / "ev")]
    cfg = load_cfg(OFFSET_CFG, opts)
    cfg.defrost()
    cfg.TEST.MODEL_FILE = _weights(cfg, str(tmp_path))
    cfg.freeze()
    with FirstInputs() as seen:
        run_test(cfg, OFFSET_CFG, torch.device("cpu"), rank=0)
    dataset = build_dataset(cfg, "test")
    bgr = cv2.imread(os.path.join(dataset.data_dir, dataset.entries[0].image), cv2.IMREAD_COLOR)
    assert bgr.shape[1] == cfg.TEST.BASE_SIZE  # scale 1 is the image as read
    torch.testing.assert_close(seen.inputs[0], by_formula(bgr, OTHER.mean, OTHER.std))


def assert_padded_with_black(window, image, normalization):
    """``window`` is ``image`` at its top left, the rest black in ``normalization``'s units."""
    h, w = image.shape[-2:]
    black = (-torch.tensor(normalization.mean) / torch.tensor(normalization.std)).view(3, 1, 1)
    torch.testing.assert_close(window[:, :, :h, :w], image)
    torch.testing.assert_close(window[0, :, h:, :], black.expand(3, window.shape[2] - h,
                                                                 window.shape[3]))
    torch.testing.assert_close(window[0, :, :, w:], black.expand(3, window.shape[2],
                                                                 window.shape[3] - w))


def test_the_predictor_feeds_the_network_images_normalised_with_its_statistics(
        other_statistics, tmp_path):
    # The ADE20K protocol at scale 1 on a square image of side TEST.BASE_SIZE, which no resize
    # changes: its one window is the 8-bit image (through OpenCV's first resize) padded with
    # black.
    cfg = load_cfg(OFFSET_CFG, ["TEST.SCALE_LIST", "1.0", "TEST.FLIP_TEST", "False",
                                "TEST.PROTOCOL", "ade20k", "TEST.BASE_SIZE", "32",
                                "TEST.IMAGE_SIZE", "[64,64]"])
    predictor = Predictor(cfg, _weights(cfg, str(tmp_path)), device="cpu")
    bgr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with FirstInputs() as seen:
        predictor(np.ascontiguousarray(bgr[:, :, ::-1]), return_maps=False)
    assert seen.inputs[0].shape[-2:] == (64, 64)
    assert_padded_with_black(seen.inputs[0], by_formula(bgr, OTHER.mean, OTHER.std), OTHER)


def test_windows_of_the_ade20k_protocol_are_padded_with_the_network_s_black(other_statistics):
    # A 16 x 16 image in 32 x 32 windows: the window is the image padded with black, whatever
    # the network's statistics make of black: (0 - mean) / std, not ImageNet's.
    model = build_model(tiny_cfg("seg_hrnet"), load_pretrained=False).eval()
    settings = InferenceSettings(protocol="ade20k", base_size=16, window_hw=(32, 32),
                                 first_resize="device")
    assert settings.normalization == IMAGENET
    image = by_formula(np.full((16, 16, 3), 200, np.uint8), OTHER.mean, OTHER.std)
    with FirstInputs() as seen:
        predict_by_protocol(model, settings)(image)
    assert seen.inputs[0].shape[-2:] == (32, 32)
    assert_padded_with_black(seen.inputs[0], image, OTHER)
