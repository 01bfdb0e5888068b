"""lib.evaluation.Predictor: the same labels from a file, its RGB pixels and a PIL image, equal to
tools/test.py --save-pred's; maps at the input size in input pixels; clear errors."""
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from lib.config import load_cfg
from lib.evaluation import Predictor
from lib.models import build_model
from tests.helpers import (
    BASELINE_CFG,
    CITYSCAPES_LABEL_IDS,
    OFFSET_CFG,
    TO_TRAIN_ID,
    experiment_folder,
    only_evaluation,
    run_tool,
    small_opts,
    spread_last_layer,
)

# Two whole-image scales and one of sliding windows, flipped: every branch of the procedure.
SETTINGS = ["TEST.SCALE_LIST", "0.75,1.0,1.5", "TEST.FLIP_TEST", "True"]


@pytest.fixture(scope="module")
def opts(synthetic_root, trained_run, tmp_path_factory):
    """Overrides with the multi-scale settings and weights that predict several classes."""
    _, _, folder = trained_run
    opts = small_opts(synthetic_root, str(tmp_path_factory.mktemp("predictor"))) + SETTINGS
    weights = spread_last_layer(load_cfg(OFFSET_CFG, opts),
                                os.path.join(folder, "final_state.pth"),
                                tmp_path_factory.mktemp("spread") / "spread.pth")
    return opts + ["TEST.MODEL_FILE", weights]


@pytest.fixture(scope="module")
def predictor(opts):
    return Predictor(load_cfg(OFFSET_CFG, opts), device="cpu")


@pytest.fixture(scope="module")
def saved_predictions(opts, synthetic_root):
    """{image path: label ids} written by tools/test.py --save-pred for the validation list."""
    run_tool(["tools/test.py", "--cfg", OFFSET_CFG, "--save-pred", *opts])
    out = os.path.dirname(load_cfg(OFFSET_CFG, opts).OUTPUT_DIR)  # small_opts' <out>/output
    folder = os.path.join(only_evaluation(experiment_folder(out)), "predictions", "labelIds")
    images = os.path.join(synthetic_root, "cityscapes", "leftImg8bit", "val")
    saved = {}
    for city in os.listdir(images):
        for name in os.listdir(os.path.join(images, city)):
            stem = name[:-len("_leftImg8bit.png")]
            saved[os.path.join(images, city, name)] = cv2.imread(
                os.path.join(folder, f"{stem}.png"), cv2.IMREAD_UNCHANGED)
    assert len(saved) == 4
    return saved


def test_path_rgb_array_and_pil_image_give_the_labels_of_tools_test(predictor, saved_predictions):
    classes = set()
    for path, saved_ids in saved_predictions.items():
        rgb = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]
        results = [predictor(path), predictor(np.ascontiguousarray(rgb)),
                   predictor(Image.open(path))]
        for result in results:
            assert result.labels.shape == result.label_ids.shape == rgb.shape[:2]
            np.testing.assert_array_equal(result.label_ids, saved_ids)
            np.testing.assert_array_equal(result.labels, TO_TRAIN_ID[saved_ids])
        classes |= set(np.unique(results[0].labels))
    assert len(classes) >= 3, "the weights should predict several classes"
    assert {CITYSCAPES_LABEL_IDS[c] for c in classes} == set(
        np.unique(np.concatenate([ids.ravel() for ids in saved_predictions.values()])))


def test_scores_are_k_maps_whose_argmax_is_the_labels(predictor, saved_predictions):
    path = next(iter(saved_predictions))
    result = predictor(path, return_scores=True)
    assert result.scores.shape == (19, *result.labels.shape)
    assert result.scores.dtype == np.float32 and (result.scores > 0).all()  # exp of logits
    np.testing.assert_array_equal(result.scores.argmax(axis=0), result.labels)
    assert predictor(path).scores is None


def test_maps_come_at_the_input_size_in_input_pixels_x_then_y(predictor, synthetic_root):
    path = os.path.join(synthetic_root, "cityscapes", "leftImg8bit", "test", "synthburg")
    path = os.path.join(path, sorted(os.listdir(path))[0])
    rgb = cv2.resize(cv2.imread(path, cv2.IMREAD_COLOR), (150, 70))[..., ::-1]
    result = predictor(np.ascontiguousarray(rgb))
    assert result.labels.shape == (70, 150)
    assert result.offsets.shape == (2, 70, 150) and result.confidence.shape == (70, 150)
    assert 0 <= result.confidence.min() and result.confidence.max() <= 1
    # Re-derived with OpenCV: the network's normalised field (align_corners=True units: the map
    # spans 2) resized to 150 x 70 (cv2 bilinear = align_corners False) and scaled to pixels.
    field = result.output.offsets[0].float().numpy()
    # 1/4 of the image at scale 1: long side TEST.BASE_SIZE 128, so 60 x 128.
    assert field.shape == (2, 15, 32)
    for channel, extent in ((0, 150), (1, 70)):
        resized = cv2.resize(field[channel], (150, 70), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(result.offsets[channel], resized * (extent - 1) / 2,
                                   atol=1e-4)
    assert np.abs(result.offsets).max() > 0.1  # a field, not zeros
    no_maps = predictor(np.ascontiguousarray(rgb), return_maps=False)
    assert no_maps.offsets is None and no_maps.output is None
    np.testing.assert_array_equal(no_maps.labels, result.labels)


def test_baseline_network_has_labels_and_no_offset_maps(synthetic_root, tmp_path):
    cfg = load_cfg(BASELINE_CFG, small_opts(synthetic_root, str(tmp_path)))
    torch.save(build_model(cfg, load_pretrained=False).state_dict(), tmp_path / "w.pth")
    result = Predictor(cfg, model_file=str(tmp_path / "w.pth"), device="cpu")(
        np.zeros((40, 60, 3), np.uint8))
    assert result.labels.shape == (40, 60) and result.output.offsets is None
    assert result.offsets is None and result.confidence is None


@pytest.mark.parametrize("image, message", [
    (np.zeros((8, 8), np.uint8), r"shape \(8, 8\)"),
    (np.zeros((8, 8, 4), np.uint8), r"shape \(8, 8, 4\)"),
    (np.zeros((8, 8, 3), np.float32), "float32"),
    ([[0, 0, 0]], "list"),
])
def test_unsupported_image_is_a_type_error_saying_what_it_got(predictor, image, message):
    with pytest.raises(TypeError, match=message):
        predictor(image)


def test_unreadable_file_is_named(predictor, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(Exception, match="broken.jpg"):
        predictor(str(broken))
    with pytest.raises(Exception, match="missing.png"):
        predictor(tmp_path / "missing.png")
