"""Evaluate a trained network: multi-scale and flip testing, metrics, prediction files.

    python tools/test.py --cfg <yaml> TEST.MODEL_FILE <pth> \\
        TEST.MULTI_SCALE True TEST.SCALE_LIST 0.5,0.75,1.0,1.25,1.5,1.75 TEST.FLIP_TEST True
    python tools/test.py --cfg <yaml> --save-pred DATASET.TEST_SET list/cityscapes/test.lst ...
    torchrun --nproc_per_node=4 tools/test.py --cfg <yaml> ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import json
import logging

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from lib.core.inference import InferenceSettings, predict, rescale
from lib.core.metrics import SegEvaluator, format_table, json_safe
from lib.datasets import build_dataset
from lib.datasets.transforms import MEAN, STD
from lib.models import build_eval_model
from lib.utils import distributed as dist
from lib.utils.logger import create_writer, setup_logging
from lib.utils.run import amp_dtype, configure_cudnn, init_process, make_writable_dir, run_dirs
from lib.utils.visualize import colorize, denormalize, prediction_panels, save_png

logger = logging.getLogger("test")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate a segmentation network.")
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("--save-pred", "--save_pred", action="store_true",
                        help="write label-id and colour PNGs of every image (also TEST.SAVE_PRED)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs="*", help="KEY VALUE overrides of the config")
    return parser.parse_intermixed_args(argv)


class PredictionWriter:
    """Writes predictions/labelIds, predictions/color and visualizations/ under the output folder."""

    def __init__(self, output_dir, dataset, save_pred, visualize, align_corners, base_size,
                 writer=None):
        self.output_dir, self.dataset, self.base_size = output_dir, dataset, base_size
        self.save_pred, self.visualize = save_pred, visualize
        self.align_corners, self.writer = align_corners, writer
        self.to_label_id = torch.tensor(dataset.train_id_to_label, dtype=torch.uint8)

    def __call__(self, index, name, image, pred, model):
        if self.save_pred:
            pred = pred.cpu()
            ids = self.to_label_id[pred.long()].numpy()
            save_png(os.path.join(self.output_dir, "predictions", "labelIds", f"{name}.png"), ids)
            save_png(os.path.join(self.output_dir, "predictions", "color", f"{name}.png"),
                     colorize(pred, self.dataset.palette))
        if self.visualize:
            with torch.no_grad():  # the maps at scale 1
                output = model(rescale(image, self.base_size))
            rgb = denormalize(image[0].cpu(), MEAN, STD)
            for panel, picture in prediction_panels(rgb, output, self.dataset.palette,
                                                    align_corners=self.align_corners).items():
                save_png(os.path.join(self.output_dir, "visualizations", f"{name}_{panel}.png"),
                         picture)
                if self.writer is not None:
                    self.writer.add_image(f"{name}/{panel}", picture, index, dataformats="HWC")


def evaluate(model, dataset, device, settings, num_classes, ignore_label, workers, on_image=None):
    """Predict this rank's exact shard of ``dataset``; returns the reduced SegEvaluator or None.

    Collective when labels exist: the confusion matrices are all-reduced.
    """
    shard = Subset(dataset, dist.shard_indices(len(dataset)))
    loader = DataLoader(shard, batch_size=1, shuffle=False, num_workers=min(workers, len(shard)))
    evaluator = SegEvaluator(num_classes, ignore_label=ignore_label, device=device) \
        if dataset.has_labels else None
    show = dist.is_main_process() and sys.stderr.isatty()
    for i, batch in enumerate(tqdm(loader, disable=not show, desc="evaluating")):
        image, name = batch[0].to(device), batch[-1][0]
        pred = predict(model, image, settings).argmax(dim=1)[0]
        if evaluator is not None:
            evaluator.update(pred, batch[1][0].to(device), group=dataset.condition(name))
        if on_image is not None:
            on_image(shard.indices[i], name, image, pred, model)
    if evaluator is not None:
        evaluator.reduce()
    return evaluator


def main(argv=None):
    args = parse_args(argv)
    cfg, device, rank, _ = init_process(args.cfg, args.opts, args.local_rank)
    try:
        output_dir, log_dir = run_dirs(cfg, args.cfg)
        make_writable_dir(output_dir, "OUTPUT_DIR")
        setup_logging(output_dir, rank, "test")
        configure_cudnn(cfg.CUDNN)
        model_file = cfg.TEST.MODEL_FILE or os.path.join(output_dir, "final_state.pth")
        if not cfg.TEST.MODEL_FILE and not os.path.isfile(model_file):
            raise FileNotFoundError(f"TEST.MODEL_FILE is not set and the run's {model_file} does "
                                    f"not exist: train first or give TEST.MODEL_FILE")
        model = build_eval_model(cfg, model_file, device)
        dataset = build_dataset(cfg, "test")
        settings = InferenceSettings.from_config(cfg, amp_dtype(cfg.TRAIN.AMP))
        logger.info("evaluating %s on %d images of %s: scales %s, flip %s, accumulate %s",
                    model_file, len(dataset), cfg.DATASET.TEST_SET, list(settings.scales),
                    settings.flip, settings.accumulate)
        writer = create_writer(log_dir, rank) if cfg.TEST.VISUALIZATION else None
        on_image = None
        if args.save_pred or cfg.TEST.SAVE_PRED or cfg.TEST.VISUALIZATION:
            on_image = PredictionWriter(output_dir, dataset, args.save_pred or cfg.TEST.SAVE_PRED,
                                        cfg.TEST.VISUALIZATION, cfg.MODEL.ALIGN_CORNERS,
                                        cfg.TEST.BASE_SIZE, writer)
        evaluator = evaluate(model, dataset, device, settings, cfg.DATASET.NUM_CLASSES,
                             cfg.TRAIN.IGNORE_LABEL, cfg.WORKERS, on_image)
        if rank == 0:
            if evaluator is None:
                logger.info("%s has no labels: predictions written, no metrics", cfg.DATASET.TEST_SET)
            else:
                results = evaluator.results(dataset.class_names)
                results.update(model_file=model_file, test_set=cfg.DATASET.TEST_SET,
                               scales=list(settings.scales), flip=settings.flip,
                               num_images=len(dataset),
                               confusion_matrix=evaluator.overall.cpu().tolist())
                with open(os.path.join(output_dir, "results.json"), "w") as f:
                    json.dump(json_safe(results), f, indent=2)
                logger.info("results:\n%s", format_table(results))
            logger.info("output folder: %s", os.path.abspath(output_dir))
        if writer is not None:
            writer.close()
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main()
