"""The input normalisation every network carries (lib.utils.normalization), checked against the
formula (x / 255 - mean) / std written out in NumPy."""
import numpy as np
import pytest
import torch

from lib.utils.normalization import IMAGENET, ImageNormalization

# ImageNet's statistics, as the HRNet papers and torchvision's model cards give them.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
OTHER = ImageNormalization(mean=(0.5, 0.25, 0.0), std=(0.5, 2.0, 1.0))


def bgr_image(seed=0, shape=(5, 7)):
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def by_formula(bgr, mean, std):
    """3 x H x W float64 RGB of (x / 255 - mean) / std."""
    rgb = bgr[:, :, ::-1].astype(np.float64) / 255.0
    return ((rgb - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1)


def test_imagenet_holds_the_published_statistics():
    np.testing.assert_array_equal(IMAGENET.mean, IMAGENET_MEAN)
    np.testing.assert_array_equal(IMAGENET.std, IMAGENET_STD)


@pytest.mark.parametrize("normalization", [IMAGENET, OTHER])
def test_normalize_is_the_formula_on_rgb(normalization):
    bgr = bgr_image()
    got = normalization.normalize(bgr)
    assert got.dtype == np.float32 and got.shape == (3, 5, 7)
    np.testing.assert_allclose(got, by_formula(bgr, normalization.mean, normalization.std),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("normalization", [IMAGENET, OTHER])
def test_to_rgb_gives_back_the_8_bit_image(normalization):
    bgr = bgr_image(seed=1)
    image = torch.from_numpy(normalization.normalize(bgr))
    rgb = normalization.to_rgb(image)
    assert rgb.dtype == np.uint8 and rgb.shape == (5, 7, 3)
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])


def test_to_rgb_rounds_and_clips_values_between_and_beyond_grey_levels():
    # 0.4 and 0.6 of a grey level round to 0 and 1; -3 and 300 clip to 0 and 255.
    levels = torch.tensor([0.4, 0.6, -3.0, 300.0]).view(1, 1, 4).expand(3, 1, 4) / 255.0
    plain = ImageNormalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    np.testing.assert_array_equal(plain.to_rgb(levels)[0, :, 0], [0, 1, 0, 255])


@pytest.mark.parametrize("normalization", [IMAGENET, OTHER])
def test_black_is_a_black_image_normalised(normalization):
    black = normalization.normalize(np.zeros((1, 1, 3), np.uint8))[:, 0, 0]
    np.testing.assert_allclose(normalization.black, black, rtol=1e-6)
    np.testing.assert_allclose(normalization.black,
                               -np.asarray(normalization.mean) / np.asarray(normalization.std))


def test_mean_in_bgr_grey_levels_is_what_the_references_pad_with():
    # HRNet-OCR pads with the BGR mean times 255, which OpenCV rounds to (104, 116, 124).
    assert np.round(IMAGENET.mean_bgr_255).tolist() == [104, 116, 124]
    np.testing.assert_allclose(OTHER.mean_bgr_255, (0.0, 63.75, 127.5))
