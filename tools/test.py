"""Evaluate a trained network: multi-scale and flip testing, metrics, prediction files.

    python tools/test.py --cfg <yaml> TEST.MODEL_FILE <pth> \\
        TEST.SCALE_LIST 0.5,0.75,1.0,1.25,1.5,1.75 TEST.FLIP_TEST True
    python tools/test.py --cfg <yaml> --save-pred DATASET.TEST_SET list/cityscapes/test.lst ...
    torchrun --nproc_per_node=4 tools/test.py --cfg <yaml> ...
    srun python tools/test.py --cfg <yaml> ...        (one task per GPU, see tools/slurm/)

A list without labels (a test split) gives no metrics: pass --save-pred to write predictions.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import json
import logging

from lib.datasets import build_dataset
from lib.datasets.loaders import eval_loader
from lib.engine.launch import RunError, configure_cudnn, init_process, make_writable_dir, run_dirs
from lib.evaluation.loop import evaluate, multi_scale
from lib.evaluation.metrics import format_table, json_safe
from lib.evaluation.prediction_files import PredictionFiles, PredictionWriter
from lib.evaluation.protocols import InferenceSettings
from lib.models import build_eval_model
from lib.utils import distributed as dist
from lib.utils.logger import create_writer, setup_logging
from lib.utils.precision import amp_dtype

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


def write_results(evaluator, dataset, cfg, model_file, settings, output_dir):
    results = evaluator.results(dataset.class_names)
    results.update(model_file=model_file, test_set=cfg.DATASET.TEST_SET,
                   scales=list(settings.scales), flip=settings.flip, num_images=len(dataset),
                   confusion_matrix=evaluator.overall.cpu().tolist())
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(json_safe(results), f, indent=2)
    logger.info("results:\n%s", format_table(results))


def main(argv=None):
    args = parse_args(argv)
    cfg, device, rank, _ = init_process(args.cfg, args.opts, args.local_rank)
    try:
        output_dir, log_dir = run_dirs(cfg, args.cfg)
        make_writable_dir(output_dir, "OUTPUT_DIR")
        setup_logging(output_dir, rank, "test")
        configure_cudnn(cfg.CUDNN)
        files = PredictionFiles(args.save_pred or cfg.TEST.SAVE_PRED, cfg.TEST.VISUALIZATION,
                                cfg.TEST.BASE_SIZE, cfg.MODEL.ALIGN_CORNERS)
        dataset = build_dataset(cfg, "test")
        if not dataset.has_labels and not (files.save_pred or files.visualize):
            raise RunError(f"{cfg.DATASET.TEST_SET} has no labels, so there is nothing to measure "
                           f"and nothing would be written: pass --save-pred (or TEST.SAVE_PRED "
                           f"True) to write the predictions")
        model_file = cfg.TEST.MODEL_FILE or os.path.join(output_dir, "final_state.pth")
        if not cfg.TEST.MODEL_FILE and not os.path.isfile(model_file):
            raise FileNotFoundError(f"TEST.MODEL_FILE is not set and the run's {model_file} does "
                                    f"not exist: train first or give TEST.MODEL_FILE")
        model = build_eval_model(cfg, model_file, device)
        settings = InferenceSettings.from_config(cfg, amp_dtype(cfg.TRAIN.AMP, cfg.TRAIN.AMP_DTYPE))
        logger.info("evaluating %s on %d images of %s: scales %s, flip %s, accumulate %s",
                    model_file, len(dataset), cfg.DATASET.TEST_SET, list(settings.scales),
                    settings.flip, settings.accumulate)
        writer = create_writer(log_dir, rank) if files.visualize else None
        on_batch = PredictionWriter(output_dir, dataset, model, files, writer) \
            if files.save_pred or files.visualize else None
        loader = eval_loader(dataset, 1, cfg.WORKERS, pin_memory=False)
        evaluator = evaluate(multi_scale(model, settings), loader, dataset, device, on_batch,
                             progress=rank == 0 and sys.stderr.isatty())
        if rank == 0:
            if evaluator is None:
                written = [name for name, on in (("predictions", files.save_pred),
                                                 ("visualizations", files.visualize)) if on]
                logger.info("%s has no labels: no metrics; %s written under %s",
                            cfg.DATASET.TEST_SET, " and ".join(written), output_dir)
            else:
                write_results(evaluator, dataset, cfg, model_file, settings, output_dir)
            logger.info("output folder: %s", os.path.abspath(output_dir))
        if writer is not None:
            writer.close()
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main()
