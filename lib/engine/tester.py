"""The test run of ``tools/test.py``: evaluate a network with the configured procedure, write
``results.json`` and, when asked, the prediction files."""
import logging
import os
import sys

from ..datasets import build_dataset
from ..datasets.loaders import eval_loader
from ..evaluation.accumulator import MeasureSettings
from ..evaluation.figures import save_figure
from ..evaluation.finite import NonFiniteOutputError
from ..evaluation.loop import evaluate, predict_by_protocol
from ..evaluation.prediction_files import PredictionFiles, PredictionWriter
from ..evaluation.protocols import InferenceSettings
from ..evaluation.report import report
from ..evaluation.results import json_safe
from ..models import build_eval_model, input_normalization
from ..utils.atomic import write_json
from ..utils.errors import RunError
from ..utils.logger import create_writer, setup_logging
from ..utils.precision import overflow_remedy
from .launch import configure_cudnn, make_writable_dir
from .out_of_memory import InputWatch, OutOfMemoryMessage, explain_out_of_memory
from .run_folders import evaluation_dir, evaluation_name, run_to_evaluate

__all__ = ["run_test"]

logger = logging.getLogger(__name__)


def run_test(cfg, cfg_path, device, rank, save_pred=False):
    """Collective: evaluate TEST.MODEL_FILE (default: ``final_state.pth`` of RUN_DIR or of the
    config's latest run) on DATASET.TEST_SET with the TEST.* procedure, every rank its shard.

    Rank 0 writes ``results.json`` into the evaluation's own folder (TEST.EVAL_DIR, else
    ``<run>/eval/<what it evaluated>``, see ``run_folders``) and logs the table; with
    ``save_pred`` (or TEST.SAVE_PRED) label-id and colour PNGs, with TEST.SAVE_EVERY_PREDICTION the
    label-id PNGs of every prediction, with TEST.VISUALIZATION the maps of every image.  A list
    without labels is refused unless something is written.
    Returns the results dict on rank 0 when there are labels, else None.  Out of device
    memory, it raises an ``OutOfMemoryRunError`` that names the network, the image, the
    procedure and what to change; when the network's outputs hold NaN or infinite values, a
    ``NonFiniteOutputError`` that names the weight file, and no results.json is written.
    """
    settings = InferenceSettings.from_config(cfg)
    model_file, output_dir = _evaluation_folder(cfg, cfg_path, settings, rank)
    configure_cudnn(cfg.CUDNN)
    files = PredictionFiles.from_config(cfg, save_pred)
    oom_message = OutOfMemoryMessage.testing(cfg)
    with explain_out_of_memory(oom_message, device):
        model = build_eval_model(cfg, model_file, device)
    dataset = _test_set(cfg, model, files)
    logger.info("evaluating %s on %d images of %s: scales %s, flip %s, accumulate %s",
                model_file, len(dataset), cfg.DATASET.TEST_SET, list(settings.scales),
                settings.flip, settings.accumulate)
    writer = create_writer(os.path.join(output_dir, "tensorboard"), rank) \
        if files.visualize else None
    try:
        consumers = [PredictionWriter(output_dir, dataset, model, files, writer)] \
            if files.writes_any else []
        loader = eval_loader(dataset, 1, cfg.WORKERS, pin_memory=False)
        watch = InputWatch(predict_by_protocol(model, settings))
        with explain_out_of_memory(oom_message, device, watch):
            evaluation = evaluate(model, watch, loader, dataset, device,
                                  MeasureSettings.from_config(cfg), consumers=consumers,
                                  progress=rank == 0 and sys.stderr.isatty())
    finally:
        if writer is not None:
            writer.close()
    if evaluation.nonfinite:
        raise _nonfinite_error(evaluation.nonfinite, model_file, cfg.DATASET.TEST_SET,
                               settings.amp_dtype)
    results = None
    if rank == 0:
        if evaluation.results is None:
            logger.info("%s has no labels: no metrics; %s written under %s",
                        cfg.DATASET.TEST_SET, files.describe(), output_dir)
        else:
            results = _write_results(evaluation, dataset, cfg, model_file, settings, output_dir)
        logger.info("evaluation folder: %s", os.path.abspath(output_dir))
    return results


def _evaluation_folder(cfg, cfg_path, settings, rank):
    """``(weights to evaluate, the evaluation's folder)`` (``run_folders``); the folder made on
    rank 0 and the log set up in it."""
    model_file, run_dir = run_to_evaluate(cfg, cfg_path)
    output_dir = cfg.TEST.EVAL_DIR or evaluation_dir(
        run_dir, evaluation_name(model_file, cfg.DATASET.TEST_SET, settings.protocol,
                                 settings.scales, settings.flip), model_file)
    if rank == 0:
        make_writable_dir(output_dir, "TEST.EVAL_DIR" if cfg.TEST.EVAL_DIR else "OUTPUT_DIR")
    setup_logging(output_dir, rank, "test")
    logger.info("evaluation folder: %s", os.path.abspath(output_dir))
    return model_file, output_dir


def _test_set(cfg, model, files):
    """DATASET.TEST_SET normalised for ``model``; a list without labels is refused when
    ``files`` writes nothing."""
    dataset = build_dataset(cfg, "test", normalization=input_normalization(model))
    if not dataset.has_labels and not files.writes_any:
        raise RunError(f"{cfg.DATASET.TEST_SET} has no labels, so there is nothing to measure "
                       f"and nothing would be written: pass --save-pred (or TEST.SAVE_PRED "
                       f"True) to write the predictions")
    return dataset


def _nonfinite_error(count, model_file, test_set, amp_dtype):
    remedy = overflow_remedy(amp_dtype)
    return NonFiniteOutputError(
        f"the network of {model_file} gives outputs that are not finite ({count} NaN or "
        f"infinite values on {test_set}), so it has no metrics and no results.json was written."
        f"\nWhat to do: {remedy + '; otherwise ' if remedy else ''}the run that wrote these "
        f"weights diverged: evaluate an earlier weight file of it (its best.pth or "
        f"checkpoint_prev.pth.tar), or train it again with a lower TRAIN.LR")


def _write_results(evaluation, dataset, cfg, model_file, settings, output_dir):
    """results.json, the figures beside it, and the tables in the log (rank 0)."""
    results = {**evaluation.results, "model_file": model_file,
               "test_set": cfg.DATASET.TEST_SET, "scales": list(settings.scales),
               "flip": settings.flip, "num_images": len(dataset),
               "confusion_matrix": evaluation.confusion.tolist()}
    write_json(os.path.join(output_dir, "results.json"), json_safe(results))
    tables, figures = report(evaluation)
    logger.info("results:\n%s", tables)
    for name, figure in figures.items():
        save_figure(figure, os.path.join(output_dir, name))
    logger.info("figures: %s in %s", ", ".join(figures), output_dir)
    return results
