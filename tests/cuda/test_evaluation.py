"""The reference evaluation on the device: six scales and flip of a full-size image with every
prediction and the analysis, without host synchronisation inside the image loop; and the device's
predictions and counts against the CPU's on a small image."""
import copy
import time
from dataclasses import replace

import pytest
import torch

from lib.evaluation.accumulator import MeasureSettings, SegAccumulator
from lib.evaluation.loop import evaluate, predict_by_protocol
from lib.evaluation.predictions import network_predictions
from lib.evaluation.protocols import InferenceSettings, predict, split_predictions
from lib.evaluation.results import json_safe
from lib.models import build_model
from tests.cuda.helpers import classes_differ_at_near_ties, host_reads
from tools.gpu_check import NETWORKS

pytestmark = pytest.mark.cuda

SCALES = "0.5,0.75,1.0,1.25,1.5,1.75"


class LabelledImages:
    """What the evaluation reads of a dataset: its classes and ignore label, no conditions."""

    has_labels = True
    class_names = None  # "0".."K-1"

    def __init__(self, cfg, size):
        self.num_classes, self.ignore_label = cfg.DATASET.NUM_CLASSES, cfg.TRAIN.IGNORE_LABEL
        self.size = size

    def __len__(self):
        return self.size

    def condition(self, name):
        return None


def protocol_cfg(target, network, hw):
    """The recipe with the reference procedure for images of ``hw``: six scales, flip, the
    window of the image's size."""
    height, width = hw
    return target.cfg(network, "TEST.SCALE_LIST", SCALES, "TEST.FLIP_TEST", True,
                      "TEST.BASE_SIZE", width, "TEST.IMAGE_SIZE", f"[{width},{height}]")


def network_on(cfg, device):
    torch.manual_seed(0)
    return build_model(cfg, load_pretrained=False).to(device).eval()


@pytest.mark.parametrize("network", list(NETWORKS))
def test_six_scales_and_flip_with_every_prediction_read_nothing_back_per_image(
        target, network, monkeypatch, record_property):
    cfg = protocol_cfg(target, network, target.sizes.image)
    model = network_on(cfg, target.device)
    settings = InferenceSettings.from_config(cfg)
    images = [target.batch(cfg, n=1, hw=target.sizes.image, seed=seed) for seed in range(3)]
    reads, seconds = [], []
    for count in (1, 2):
        loader = [(x.cpu(), y.cpu(), [f"image{i}"]) for i, (x, y) in enumerate(images[:count])]
        dataset = LabelledImages(cfg, count)
        target.sync()
        start = time.perf_counter()
        with host_reads(target, monkeypatch) as found:
            evaluation = evaluate(model, predict_by_protocol(model, settings), loader, dataset,
                                  target.device, MeasureSettings.from_config(cfg))
        target.sync()
        seconds.append(time.perf_counter() - start)
        reads.append(list(found))
        assert evaluation.nonfinite == 0
        labels = torch.stack([y for _, y in images[:count]])
        assert int(evaluation.confusion.sum()) == int((labels != cfg.TRAIN.IGNORE_LABEL).sum())
        assert set(evaluation.results["predictions"]) == set(network_predictions(model))
    record_property("seconds for 1 and 2 images", [round(s, 2) for s in seconds])
    record_property("host synchronisations for 1 and 2 images", [len(r) for r in reads])
    assert len(reads[1]) == len(reads[0]), reads[1]


def moved(predicted, device):
    """A prediction of ``predict_by_protocol`` on ``device``."""
    return {"preds": {field: p.to(device) for field, p in predicted["preds"].items()},
            **{k: None if predicted[k] is None else predicted[k].to(device)
               for k in ("offsets", "confidence")}}


@pytest.mark.parametrize("network", list(NETWORKS))
def test_the_device_predicts_and_counts_what_the_cpu_does(target, network, full_fp32,
                                                         record_property):
    cfg = protocol_cfg(target, network, target.sizes.small)
    cpu = torch.device("cpu")
    cpu_model = network_on(cfg, cpu)
    model = copy.deepcopy(cpu_model).to(target.device)
    predictions = network_predictions(model)
    settings = replace(InferenceSettings.from_config(cfg), predictions=predictions)
    image, labels = target.batch(cfg, n=1, hw=target.sizes.small)
    expected = split_predictions(predict(cpu_model, image.to(cpu), settings), predictions)
    got = {h: s.cpu() for h, s in split_predictions(predict(model, image, settings), predictions).items()}
    flipped = sum(classes_differ_at_near_ties(got[field], expected[field]) for field in predictions)
    record_property("pixels whose class differs (near ties), all predictions", flipped)
    # The counts of the same predictions, on the device and on the CPU.
    predicted = predict_by_protocol(cpu_model, settings)(image.to(cpu))
    counts, results = [], []
    for device in (cpu, target.device):
        on = moved(predicted, device)
        accumulator = SegAccumulator(cfg.DATASET.NUM_CLASSES, predictions,
                                     ignore_label=cfg.TRAIN.IGNORE_LABEL,
                                     measures=MeasureSettings.from_config(cfg), device=device)
        accumulator.update(on["preds"], labels.to(device), offsets=on["offsets"],
                           confidence=on["confidence"])
        accumulator.reduce()
        counts.append([accumulator.confusion(h).cpu() for h in predictions])
        results.append(json_safe(accumulator.results()))
    assert all(torch.equal(a, b) for a, b in zip(*counts, strict=True))
    assert results[0] == results[1]
