"""Segment images and videos: colour predictions, overlays, label ids, offset and confidence
pictures, overlay videos.

    python tools/infer.py --cfg <yaml> TEST.MODEL_FILE <pth> --input <image, video or folder> \\
        --output <folder> [--montage] [KEY VALUE ...]

For an image <stem> (in a folder: its path below the folder) the tool writes <stem>_color.png,
<stem>_overlay.png and <stem>_labelIds.png (the dataset's label ids, e.g. Cityscapes ids, as the
benchmark servers take them), and for the offset network <stem>_offsets.png and
<stem>_confidence.png (the maps at scale 1); --montage adds <stem>_montage.png (image, S_i,
offsets, confidence, S_f).  A video gives <stem>_overlay.mp4 at its frame rate.

Every image or frame is predicted as tools/test.py predicts (``lib.evaluation.Predictor``): resized
so that its long side is TEST.BASE_SIZE times each scale of TEST.SCALE_LIST (windows of
TEST.IMAGE_SIZE above 1), with TEST.FLIP_TEST.  A file that cannot be read is reported and skipped;
the tool goes on with the others and exits with status 1 at the end, naming the skipped files.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import logging
import math

import cv2
import numpy as np
from tqdm import tqdm

from lib.config import load_cfg
from lib.datasets import DatasetError
from lib.datasets.files import read_image
from lib.evaluation import Predictor
from lib.utils.atomic import atomic_path
from lib.utils.device import select_device
from lib.utils.errors import RunError
from lib.utils.visualize import colorize, overlay, prediction_panels, save_png
from tools.cli import run

logger = logging.getLogger("infer")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# Frame rate of the overlay video when the input does not state one.
DEFAULT_FPS = 25.0


class UnreadableVideo(RuntimeError):
    """A video file OpenCV cannot open or that holds no frame."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Segment images and videos with a trained network.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--input", required=True, help="an image, a video or a folder of them")
    parser.add_argument("--output", required=True, help="folder for the pictures and videos")
    parser.add_argument("--montage", action="store_true",
                        help="also write <stem>_montage.png: image, S_i, offsets, confidence, S_f")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


def find_inputs(path):
    """The image and video files at ``path`` (a file, or a folder searched recursively), sorted."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise RunError(f"--input {path} is neither a file nor a folder")
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    found = sorted(os.path.join(folder, f) for folder, _, files in os.walk(path) for f in files
                   if f.lower().endswith(suffixes))
    if not found:
        raise RunError(f"--input {path} holds no image or video ({', '.join(suffixes)})")
    return found


def montage(rgb, panels, gap=4):
    """The image and the network's maps side by side, two rows, on white."""
    names = ["logits", "offsets", "confidence", "fused"]
    tiles = [rgb] + [panels[n] for n in names if n in panels]
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    cols = (len(tiles) + 1) // 2
    canvas = np.full((2 * h + gap, cols * w + (cols - 1) * gap, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = r * (h + gap), c * (w + gap)
        canvas[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return canvas


def write_image_outputs(predictor, path, prefix, with_montage):
    """Predict the image at ``path`` and write ``<prefix>_<picture>.png`` files."""
    rgb = np.ascontiguousarray(read_image(path)[..., ::-1])
    result = predictor(rgb)
    color = colorize(result.labels, predictor.palette)
    save_png(f"{prefix}_color.png", color)
    save_png(f"{prefix}_overlay.png", overlay(rgb, color))
    save_png(f"{prefix}_labelIds.png", result.label_ids)
    panels = prediction_panels(rgb, result.output, predictor.palette,
                               align_corners=predictor.settings.align_corners)
    for panel in ("confidence", "offsets"):
        if panel in panels:
            save_png(f"{prefix}_{panel}.png", panels[panel])
    if with_montage:
        save_png(f"{prefix}_montage.png", montage(rgb, panels))


def write_overlay_video(predictor, path, out_path):
    """Predict every frame of the video at ``path``; write the overlays to ``out_path`` (mp4v,
    under a temporary name until the last frame, so that an interrupted video never takes the
    final name).

    Returns the number of frames.
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise UnreadableVideo(f"cannot open video {path}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # 0 or less when unknown
    writer, frames = None, 0
    with atomic_path(out_path) as tmp:
        try:
            for bgr in tqdm(_frames(capture), total=total if total > 0 else None, unit="frame",
                            desc=os.path.basename(path), disable=None):
                rgb = np.ascontiguousarray(bgr[..., ::-1])
                labels = predictor(rgb, return_maps=False).labels
                if writer is None:
                    writer = _video_writer(tmp, fps, bgr.shape[1], bgr.shape[0])
                picture = overlay(rgb, colorize(labels, predictor.palette))
                writer.write(np.ascontiguousarray(picture[..., ::-1]))
                frames += 1
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if frames == 0:
            raise UnreadableVideo(f"no frame could be read from video {path}")
    return frames


def _frames(capture):
    """The BGR frames of an opened cv2.VideoCapture, until the first one it cannot read."""
    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        yield bgr


def _video_writer(tmp, fps, width, height):
    """An mp4v writer into ``tmp`` (the temporary file of ``atomic_path``, which names the final
    file in its error)."""
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot open an mp4v writer of {width}x{height} at {fps} fps")
    return writer


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paths = find_inputs(args.input)
    predictor = Predictor(load_cfg(args.cfg, args.opts), device=select_device())
    root = args.input if os.path.isdir(args.input) else os.path.dirname(args.input)
    failed = []
    for path in paths:
        prefix = os.path.join(args.output, os.path.splitext(os.path.relpath(path, root))[0])
        try:
            if path.lower().endswith(VIDEO_SUFFIXES):
                frames = write_overlay_video(predictor, path, f"{prefix}_overlay.mp4")
                logger.info("%s -> %s_overlay.mp4 (%d frames)", path, prefix, frames)
            else:
                write_image_outputs(predictor, path, prefix, args.montage)
                logger.info("%s -> %s_*.png", path, prefix)
        except (DatasetError, UnreadableVideo) as error:
            logger.error("skipped: %s", error)
            failed.append(path)
    done = len(paths) - len(failed)
    logger.info("wrote the outputs of %d of %d files to %s", done, len(paths),
                os.path.abspath(args.output))
    if failed:
        sys.exit(f"could not read {len(failed)} of {len(paths)} files:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    sys.exit(run(main))
