"""tools/infer.py end to end: pictures and label ids of one image of an unseen size, of a folder,
a folder with a damaged file, a video round trip, and errors."""
import os

import cv2
import numpy as np
import pytest
import torch

from lib.config import load_cfg
from lib.evaluation.protocols import InferenceSettings, predict
from lib.models import build_eval_model, input_normalization
from tests.helpers import (
    CITYSCAPES_LABEL_IDS,
    CITYSCAPES_PALETTE,
    OFFSET_CFG,
    run_tool,
    small_opts,
    spread_last_layer,
)

PICTURES = ("color", "overlay", "confidence", "offsets")
OUTPUTS = PICTURES + ("labelIds",)


@pytest.fixture(scope="module")
def opts(synthetic_root, trained_run, tmp_path_factory):
    """Overrides with TEST.MODEL_FILE: the trained network with a last layer that predicts
    several classes (``spread_last_layer``), so that the colours are checked for more than one."""
    _, _, folder = trained_run
    opts = small_opts(synthetic_root, str(tmp_path_factory.mktemp("infer")))
    weights = spread_last_layer(load_cfg(OFFSET_CFG, opts),
                                os.path.join(folder, "final_state.pth"),
                                tmp_path_factory.mktemp("spread") / "spread.pth")
    return opts + ["TEST.MODEL_FILE", weights]


@pytest.fixture(scope="module")
def inputs(synthetic_root, tmp_path_factory):
    """A folder with a 70 x 150 image (resized from a synthetic one), a 64 x 128 test image and
    a text file."""
    folder = tmp_path_factory.mktemp("inputs")
    source = os.path.join(synthetic_root, "cityscapes", "leftImg8bit")
    val = sorted(os.listdir(os.path.join(source, "val", "synthvale")))[0]
    image = cv2.imread(os.path.join(source, "val", "synthvale", val), cv2.IMREAD_COLOR)
    assert cv2.imwrite(str(folder / "wide.png"), cv2.resize(image, (150, 70)))
    test_dir = os.path.join(source, "test", "synthburg")
    test = cv2.imread(os.path.join(test_dir, sorted(os.listdir(test_dir))[0]), cv2.IMREAD_COLOR)
    assert cv2.imwrite(str(folder / "street.png"), test)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _infer(opts, source, output, check=True):
    return run_tool(["tools/infer.py", "--cfg", OFFSET_CFG, "--input", str(source),
                     "--output", str(output), *opts], check=check)


def _predict_array(opts, bgr):
    cfg = load_cfg(OFFSET_CFG, opts)
    model = build_eval_model(cfg, cfg.TEST.MODEL_FILE, torch.device("cpu"))
    image = torch.from_numpy(input_normalization(model).normalize(bgr))[None]
    settings = InferenceSettings.from_config(cfg)
    return predict(model, image, settings).argmax(dim=1)[0].numpy()


def _expected_prediction(opts, path):
    return _predict_array(opts, cv2.imread(path, cv2.IMREAD_COLOR))


def test_image_of_another_size_gives_four_pictures_at_its_size(opts, inputs, tmp_path):
    path = str(inputs / "wide.png")
    _infer(opts, path, tmp_path)
    pictures = {name: cv2.imread(str(tmp_path / f"wide_{name}.png"), cv2.IMREAD_COLOR)[..., ::-1]
                for name in PICTURES}
    rgb = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]
    assert rgb.shape == (70, 150, 3)
    for name in ("color", "overlay", "offsets"):
        assert pictures[name].shape == rgb.shape, name
    assert pictures["confidence"].shape[0] == 70 and pictures["confidence"].shape[1] > 150
    expected = _expected_prediction(opts, path)
    assert len(np.unique(expected)) >= 2, "the test needs several predicted classes"
    np.testing.assert_array_equal(pictures["color"], CITYSCAPES_PALETTE[expected])
    blend = (rgb.astype(np.float64) + CITYSCAPES_PALETTE[expected]) / 2
    assert np.abs(pictures["overlay"] - blend).max() <= 1.0
    label_ids = cv2.imread(str(tmp_path / "wide_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert label_ids.dtype == np.uint8 and label_ids.shape == (70, 150)
    np.testing.assert_array_equal(label_ids, np.array(CITYSCAPES_LABEL_IDS)[expected])


def test_folder_gives_pictures_of_every_image_in_it(opts, inputs, tmp_path):
    proc = _infer(opts, inputs, tmp_path)
    expected = {f"{stem}_{name}.png" for stem in ("wide", "street") for name in OUTPUTS}
    assert set(os.listdir(tmp_path)) == expected
    street = cv2.imread(str(tmp_path / "street_color.png"), cv2.IMREAD_COLOR)
    assert street.shape == (64, 128, 3)
    assert "2 of 2 files" in proc.stdout + proc.stderr


def test_damaged_file_in_a_folder_is_skipped_named_and_fails_the_run(opts, inputs, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("street.png", "wide.png"):
        (folder / name).write_bytes((inputs / name).read_bytes())
    data = (inputs / "street.png").read_bytes()
    (folder / "cut.png").write_bytes(data[:len(data) // 2])  # a PNG truncated in transfer
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "clip.mp4").write_bytes(b"no video in here" * 64)
    proc = _infer(opts, folder, tmp_path / "out", check=False)
    assert proc.returncode == 1
    summary = proc.stderr[proc.stderr.index("could not read"):]
    assert "3 of 5 files" in summary
    for name in ("cut.png", "empty.jpg", "clip.mp4"):
        assert str(folder / name) in summary
    assert str(folder / "street.png") not in summary
    expected = {f"{stem}_{name}.png" for stem in ("wide", "street") for name in OUTPUTS}
    assert set(os.listdir(tmp_path / "out")) == expected


def test_video_gives_an_overlay_video_of_every_frame(opts, inputs, tmp_path):
    """Round trip through mp4v: the frames come back lossy, so each written frame is compared
    with the overlay of the frame as decoded, predicted in this process."""
    street = cv2.imread(str(inputs / "street.png"), cv2.IMREAD_COLOR)
    frames = [np.roll(street, 16 * i, axis=1) for i in range(4)]  # a camera panning
    video = str(tmp_path / "pan.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (128, 64))
    for frame in frames:
        writer.write(frame)
    writer.release()
    _infer(opts, video, tmp_path / "out")
    capture = cv2.VideoCapture(video)
    decoded = [capture.read()[1] for _ in frames]
    result = cv2.VideoCapture(str(tmp_path / "out" / "pan_overlay.mp4"))
    assert result.get(cv2.CAP_PROP_FPS) == 8.0
    written = []
    while True:
        ok, frame = result.read()
        if not ok:
            break
        written.append(frame)
    assert len(written) == len(frames)
    for frame, out in zip(decoded, written, strict=True):
        assert out.shape == frame.shape
        labels = _predict_array(opts, frame)
        expected = (frame.astype(np.float64) + CITYSCAPES_PALETTE[labels][..., ::-1]) / 2
        error = np.abs(out - expected).mean()  # about 7 grey levels from mp4v
        assert error < 12
        # Far from the frame itself, and from the overlay of labels moved by 8 pixels.
        assert np.abs(out - frame.astype(np.float64)).mean() > 3 * error
        moved = (frame.astype(np.float64) + CITYSCAPES_PALETTE[np.roll(labels, 8, axis=1)][..., ::-1]) / 2
        assert np.abs(out - moved).mean() > 3 * error


def test_missing_input_is_named(opts, tmp_path):
    missing = tmp_path / "no_such_images"
    proc = _infer(opts, missing, tmp_path / "out", check=False)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_montage_puts_the_image_and_the_four_maps_on_two_rows(opts, inputs, tmp_path):
    path = str(inputs / "street.png")
    _infer(opts + ["--montage"], path, tmp_path)
    montage = cv2.imread(str(tmp_path / "street_montage.png"), cv2.IMREAD_COLOR)
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    confidence = cv2.imread(str(tmp_path / "street_confidence.png"), cv2.IMREAD_COLOR)
    # Tiles as wide as the widest one (the confidence map with its colour bar), 4-pixel gaps.
    tile_w = confidence.shape[1]
    assert montage.shape == (2 * h + 4, 3 * tile_w + 2 * 4, 3)
    np.testing.assert_array_equal(montage[:h, :w], image)  # the input, top left
    np.testing.assert_array_equal(montage[h + 4:, :tile_w], confidence)  # first tile, 2nd row
    assert (montage[h + 4:, 2 * (tile_w + 4):] == 255).all()  # five tiles: the sixth is blank
