"""Predict any images and write colour predictions, overlays, offset and confidence pictures.

    python tools/infer.py --cfg <yaml> TEST.MODEL_FILE <pth> --input <image or folder> \\
        --output <folder> [KEY VALUE ...]

Images of any size are resized so that their long side is TEST.BASE_SIZE at scale 1, as in
evaluation; TEST.MULTI_SCALE / SCALE_LIST / FLIP_TEST apply.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import logging

import cv2
import numpy as np
import torch

from lib.config import load_cfg
from lib.core.inference import InferenceSettings, predict, rescale
from lib.core.precision import amp_dtype
from lib.datasets import dataset_class
from lib.datasets.base_dataset import normalize, read_image
from lib.models import build_eval_model
from lib.utils.launch import select_device
from lib.utils.visualize import colorize, overlay, prediction_panels, save_png

logger = logging.getLogger("infer")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Predict images with a trained network.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the pictures")
    parser.add_argument("--montage", action="store_true",
                        help="also write <stem>_montage.png: image, S_i, offsets, confidence, S_f")
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


def find_images(path):
    """The image files at ``path`` (a file, or a folder searched recursively), sorted."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--input {path} is neither an image nor a folder")
    found = sorted(os.path.join(folder, f) for folder, _, files in os.walk(path) for f in files
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise FileNotFoundError(f"--input {path} holds no image ({', '.join(IMAGE_SUFFIXES)})")
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


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_cfg(args.cfg, args.opts)
    device = select_device(0)
    model = build_eval_model(cfg, cfg.TEST.MODEL_FILE, device)
    settings = InferenceSettings.from_config(cfg, amp_dtype(cfg.TRAIN.AMP))
    palette = dataset_class(cfg.DATASET.DATASET).palette
    paths = find_images(args.input)
    root = args.input if os.path.isdir(args.input) else os.path.dirname(args.input)
    for path in paths:
        bgr = read_image(path)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        image = torch.from_numpy(normalize(bgr))[None].to(device)
        pred = predict(model, image, settings).argmax(dim=1)[0].cpu()
        stem = os.path.splitext(os.path.relpath(path, root))[0]
        color = colorize(pred, palette)
        save_png(os.path.join(args.output, f"{stem}_color.png"), color)
        save_png(os.path.join(args.output, f"{stem}_overlay.png"), overlay(rgb, color))
        with torch.no_grad():  # the maps at scale 1, where the network sees the image size it knows
            output = model(rescale(image, cfg.TEST.BASE_SIZE))
        panels = prediction_panels(rgb, output, palette, align_corners=cfg.MODEL.ALIGN_CORNERS)
        for panel in ("confidence", "offsets"):
            if panel in panels:
                save_png(os.path.join(args.output, f"{stem}_{panel}.png"), panels[panel])
        if args.montage:
            save_png(os.path.join(args.output, f"{stem}_montage.png"), montage(rgb, panels))
        logger.info("%s -> %s", path, os.path.join(args.output, stem + "_*.png"))
    logger.info("wrote pictures of %d images to %s", len(paths), os.path.abspath(args.output))


if __name__ == "__main__":
    main()
