"""Visualisation: class colours, confidence and offset images, PNG writing, panels."""
import cv2
import numpy as np
import pytest
import torch

from lib.models import SegOutput, build_model
from lib.models.seed import pixels_to_offsets
from lib.utils.visualize import (
    colorize,
    confidence_image,
    offset_image,
    offsets_to_pixels,
    overlay,
    prediction_panels,
    save_png,
)

PALETTE = np.array([[128, 64, 128], [244, 35, 232], [70, 70, 70]], dtype=np.uint8)


def luminance(rgb):
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_colorize_maps_ids_to_the_palette_and_ignored_or_unknown_ids_to_black():
    labels = np.array([[0, 1, 2], [255, 3, -2]])
    rgb = colorize(labels, PALETTE)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0], PALETTE)
    np.testing.assert_array_equal(rgb[1], np.zeros((3, 3), np.uint8))
    np.testing.assert_array_equal(colorize(torch.tensor(labels), PALETTE), rgb)


def test_overlay_blends_image_and_colours_by_alpha():
    image = np.full((2, 2, 3), 100, np.uint8)
    color = np.full((2, 2, 3), 200, np.uint8)
    np.testing.assert_array_equal(overlay(image, color, 0.0), image)
    np.testing.assert_array_equal(overlay(image, color, 1.0), color)
    np.testing.assert_array_equal(overlay(image, color, 0.25), np.full((2, 2, 3), 125, np.uint8))


def test_offsets_to_pixels_inverts_the_normalisation():
    h, w = 9, 17
    dx, dy = pixels_to_offsets(torch.tensor(3.0), torch.tensor(-2.0), h, w)
    field = torch.stack((dx, dy)).view(2, 1, 1).expand(2, 4, 5)
    pixels = offsets_to_pixels(field, h, w)
    torch.testing.assert_close(pixels[:, 1, 2], torch.tensor([3.0, -2.0]))
    # From the first pixel centre (-1) to the last (+1) is w - 1 pixels.
    corner = offsets_to_pixels(torch.full((1, 2, 1, 1), 2.0), h, w)
    torch.testing.assert_close(corner.flatten(), torch.tensor([w - 1.0, h - 1.0]))


@pytest.mark.parametrize("max_magnitude", [None, 4.0])
def test_offset_image_of_a_zero_field_is_uniformly_white(max_magnitude):
    rgb = offset_image(torch.zeros(2, 5, 7), max_magnitude)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    assert (rgb == 255).all()


def test_offset_image_colours_are_comparable_across_images_with_a_fixed_maximum():
    field = torch.zeros(2, 4, 6)
    field[0, :, :3] = 1.0   # right, 1 unit
    field[0, :, 3:] = -2.0  # left, 2 units
    other = torch.zeros(2, 4, 6)
    other[0] = 1.0
    rgb = offset_image(field, max_magnitude=4.0)
    np.testing.assert_array_equal(offset_image(other, max_magnitude=4.0)[0, 0], rgb[0, 0])
    assert not np.array_equal(rgb[0, 0], rgb[0, 5])
    # Longer vectors are more saturated (further from white); per-image scaling changes colours.
    assert rgb[0, 5].astype(int).sum() < 3 * 255 and rgb[0, 0].astype(int).sum() < 3 * 255
    white = 3 * 255
    assert white - rgb[0, 5].astype(int).sum() > white - rgb[0, 0].astype(int).sum()
    assert not np.array_equal(offset_image(other)[0, 0], rgb[0, 0])
    # Vectors beyond the maximum are clipped to it and leave the others' colours alone.
    long = field.clone()
    long[0, :, 3:] = -10.0
    clipped = field.clone()
    clipped[0, :, 3:] = -4.0
    np.testing.assert_array_equal(offset_image(long, max_magnitude=4.0),
                                  offset_image(clipped, max_magnitude=4.0))


def test_confidence_image_has_a_colour_bar_and_colours_that_brighten_with_confidence():
    ramp = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (40, 1))
    rgb = confidence_image(ramp)
    assert rgb.dtype == np.uint8 and rgb.shape[0] == 40 and rgb.shape[1] > 64
    plain = confidence_image(ramp, with_colorbar=False)
    assert plain.shape == (40, 64, 3)
    np.testing.assert_array_equal(rgb[:, :64], plain)
    lum = luminance(plain[0])
    assert (np.diff(lum) >= -1e-9).all() and lum[-1] > lum[0] + 100
    # The bar holds the colour of 1 at the top and of 0 at the bottom.
    bar = rgb[:, 64:]
    assert (bar[0] == plain[0, -1]).all(axis=1).any()
    assert (bar[-1] == plain[0, 0]).all(axis=1).any()


def test_save_png_writes_rgb_that_cv2_reads_back_as_bgr(tmp_path):
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    rgb[1, 2] = (10, 20, 30)
    path = tmp_path / "nested" / "folder" / "red.png"
    save_png(path, rgb)
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_COLOR), rgb[..., ::-1])
    ids = np.array([[7, 26], [255, 0]], np.uint8)
    save_png(tmp_path / "ids.png", ids)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "ids.png"), cv2.IMREAD_UNCHANGED), ids)


def test_prediction_panels_show_what_each_network_has(make_tiny_cfg):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 96)
    rgb = np.zeros((64, 96, 3), np.uint8)
    for name, keys in (("seg_hrnet", {"logits", "overlay"}),
                       ("branched_seg_hrnet", {"logits", "seed", "fused", "confidence",
                                               "offsets", "overlay"})):
        model = build_model(make_tiny_cfg(name, num_classes=3), load_pretrained=False).eval()
        with torch.no_grad():
            output = model(x)
        panels = prediction_panels(rgb, output, PALETTE, index=1)
        assert set(panels) == keys
        for key, panel in panels.items():
            assert panel.dtype == np.uint8 and panel.shape[0] == 64, key
            assert panel.shape[1] == 96 or key == "confidence", key


def test_prediction_panels_colour_the_argmax_of_the_chosen_image_at_the_image_size():
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 1] = 1.0
    logits[1, 2, :, 1] = 1.0  # image 1: right half class 2, left half class 0
    rgb = np.full((8, 8, 3), 50, np.uint8)
    panels = prediction_panels(rgb, SegOutput(logits), PALETTE, index=1, alpha=1.0)
    np.testing.assert_array_equal(panels["logits"][:, 0], np.tile(PALETTE[0], (8, 1)))
    np.testing.assert_array_equal(panels["logits"][:, -1], np.tile(PALETTE[2], (8, 1)))
    np.testing.assert_array_equal(panels["overlay"], panels["logits"])


def test_the_overlay_of_the_offset_network_shows_the_fused_prediction():
    def one_hot(k):
        logits = torch.zeros(1, 3, 2, 2)
        logits[0, k] = 1.0
        return logits

    output = SegOutput(one_hot(0), torch.zeros(1, 2, 2, 2), one_hot(1), one_hot(2),
                       torch.full((1, 1, 2, 2), 0.5))
    rgb = np.zeros((4, 4, 3), np.uint8)
    panels = prediction_panels(rgb, output, PALETTE, alpha=1.0)
    for key, k in (("logits", 0), ("seed", 1), ("fused", 2), ("overlay", 2)):
        assert (panels[key] == PALETTE[k]).all(), key
    assert (panels["offsets"] == 255).all()


def test_prediction_panels_reject_an_image_that_is_not_uint8_rgb():
    with pytest.raises(TypeError, match="to_rgb"):
        prediction_panels(torch.zeros(3, 4, 4), SegOutput(torch.zeros(1, 3, 1, 1)), PALETTE)


@pytest.mark.parametrize("max_magnitude", [None, 2.0])
def test_offset_image_of_a_field_with_nan_and_inf_draws_them_black_and_the_rest_as_without_them(
        max_magnitude):
    torch.manual_seed(0)
    field = torch.randn(2, 5, 7)
    bad = torch.zeros(5, 7, dtype=torch.bool)
    bad[0, 0] = bad[2, 3] = bad[4, 6] = True
    broken = field.clone()
    broken[0, 0, 0], broken[1, 2, 3], broken[0, 4, 6] = float("nan"), float("inf"), -float("inf")
    image = offset_image(broken, max_magnitude)
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8
    assert (image[bad.numpy()] == 0).all()
    # The bad vectors replaced by zero vectors: the same longest vector, so the same colours.
    reference = offset_image(torch.where(bad, 0.0, field), max_magnitude)
    np.testing.assert_array_equal(image[~bad.numpy()], reference[~bad.numpy()])
    assert (reference.reshape(-1, 3).max(axis=1) > 0).all()  # black is not a wheel colour
    assert (offset_image(torch.full((2, 3, 4), float("nan"))) == 0).all()


def test_confidence_image_reads_nan_as_zero_and_infinities_as_the_ends_of_the_scale():
    conf = torch.tensor([[float("nan"), float("inf"), -float("inf")]])
    expected = confidence_image(torch.tensor([[0.0, 1.0, 0.0]]), with_colorbar=False)
    np.testing.assert_array_equal(confidence_image(conf, with_colorbar=False), expected)


def test_prediction_panels_of_a_diverged_offset_network_output_are_images():
    nan = float("nan")
    output = SegOutput(torch.full((1, 3, 2, 2), nan), torch.full((1, 2, 2, 2), nan),
                       torch.full((1, 3, 2, 2), nan), torch.full((1, 3, 2, 2), nan),
                       torch.full((1, 1, 2, 2), nan))
    panels = prediction_panels(np.zeros((4, 4, 3), np.uint8), output, PALETTE)
    assert set(panels) == {"logits", "seed", "fused", "confidence", "offsets", "overlay"}
    assert all(p.dtype == np.uint8 and p.shape[0] == 4 for p in panels.values())
    assert (panels["offsets"] == 0).all()
