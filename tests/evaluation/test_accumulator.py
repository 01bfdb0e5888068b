"""SegAccumulator: every prediction counted, groups, exact sums over two gloo ranks, inputs
checked."""
import datetime

import numpy as np
import pytest
import torch

from lib.evaluation.accumulator import MeasureSettings, SegAccumulator
from lib.evaluation.loop import Batch
from lib.evaluation.predictions import fusion_pairs, label_size_inputs, output_predictions
from lib.evaluation.results import json_safe
from lib.models.output import OCROutput, SegOutput
from tests.evaluation import references as ref
from tests.helpers import free_port

K = 5
PREDICTIONS = ["logits", "seed_logits", "fused_logits"]


def batch(seed, n=2, h=12, w=20):
    """Labels with ignored pixels, three noisy predictions, offsets in pixels, confidence."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, K, (n, 3, 4), generator=g)
    labels = coarse.repeat_interleave(4, 1).repeat_interleave(5, 2)
    labels[torch.rand(labels.shape, generator=g) < 0.1] = 255
    preds = {}
    for field in PREDICTIONS:
        noise = torch.randint(0, K, labels.shape, generator=g)
        preds[field] = torch.where(torch.rand(labels.shape, generator=g) < 0.3, noise,
                                   labels.clamp(max=K - 1))
    offsets = 20 * torch.randn(n, 2, h, w, generator=g)
    confidence = torch.rand(n, 1, h, w, generator=g)
    return preds, labels, offsets, confidence


def analysis_of(batches, groups):
    analysis = SegAccumulator(K, PREDICTIONS, measures=MeasureSettings(bands=(1, 3)))
    for (preds, labels, offsets, confidence), group in zip(batches, groups, strict=True):
        analysis.update(preds, labels, offsets=offsets, confidence=confidence, groups=group)
    return analysis.reduce()


def test_every_prediction_gets_its_own_confusion_matrix_and_iou():
    batches = [batch(0), batch(1)]
    analysis = analysis_of(batches, [None, None])
    results = analysis.results()
    for field in PREDICTIONS:
        preds = [p for b in batches for p in b[0][field].numpy()]
        labels = [t for b in batches for t in b[1].numpy()]
        iou = ref.plain_iou(preds, labels, K)
        got = np.array(list(results["predictions"][field]["IoU"].values()))
        np.testing.assert_allclose(got, iou)
        confusion = analysis.confusion(field).numpy()
        assert confusion.sum() == sum((t != 255).sum() for t in labels)
        assert confusion[1, 2] == sum(((t == 1) & (p == 2)).sum()
                                      for p, t in zip(preds, labels, strict=True))
    assert "per_condition" not in results["predictions"]["logits"]
    assert results["final_prediction"] == "fused_logits"


def test_the_final_prediction_is_the_fused_one_or_else_the_only_one():
    preds, labels, _, _ = batch(10)
    for predictions, final in ((["logits"], "logits"), (["logits", "region_logits"], "logits")):
        accumulator = SegAccumulator(K, predictions)
        accumulator.update({h: preds["logits"] for h in predictions}, labels)
        assert accumulator.reduce().results()["final_prediction"] == final


def test_a_batch_is_processed_as_its_update():
    preds, labels, offsets, confidence = batch(11)
    groups = ["fog", None]
    updated = analysis_of([(preds, labels, offsets, confidence)], [groups])
    processed = SegAccumulator(K, PREDICTIONS, measures=MeasureSettings(bands=(1, 3)))
    processed.process(Batch(torch.zeros(2, 3, 12, 20), ["a", "b"], preds, offsets, confidence,
                            labels, groups))
    assert json_safe(processed.reduce().results()) == json_safe(updated.results())


def test_a_group_is_counted_alone_and_in_the_overall():
    batches = [batch(2), batch(3)]
    grouped = analysis_of(batches, [["fog", "night"], "fog"]).results()
    alone_fog = analysis_of([_rows(batches[0], [0]), batches[1]], [None, None]).results()
    overall = analysis_of(batches, [None, None]).results()
    for kind in ("predictions", "boundary", "fusion"):
        for name, entry in grouped[kind].items():
            entry = dict(entry)
            per_condition = entry.pop("per_condition")
            assert sorted(per_condition) == ["fog", "night"]
            assert json_safe(entry) == json_safe(overall[kind][name])
            assert json_safe(per_condition["fog"]) == json_safe(alone_fog[kind][name])


def _rows(one_batch, rows):
    preds, labels, offsets, confidence = one_batch
    return ({h: p[rows] for h, p in preds.items()}, labels[rows], offsets[rows],
            confidence[rows])


def _rank_of_two(rank, port, results):
    """One of two gloo ranks: rank 0 sees only fog images, rank 1 fog and night."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2, timeout=datetime.timedelta(seconds=60))
    try:
        if rank == 0:
            analysis = analysis_of([batch(4)], ["fog"])
        else:
            analysis = analysis_of([batch(5), batch(6)], [["fog", "night"], "night"])
        results[rank] = json_safe(analysis.results())
    finally:
        dist.destroy_process_group()


def test_two_ranks_sum_to_exactly_what_one_process_counts():
    results = torch.multiprocessing.Manager().dict()
    torch.multiprocessing.spawn(_rank_of_two, args=(free_port(), results), nprocs=2)
    whole = json_safe(analysis_of([batch(4), batch(5), batch(6)],
                                  ["fog", ["fog", "night"], "night"]).results())
    assert results[0] == whole and results[1] == whole


def test_update_after_reduce_and_a_second_reduce_raise():
    analysis = analysis_of([batch(7)], [None])
    preds, labels, offsets, confidence = batch(8)
    with pytest.raises(RuntimeError, match="after reduce"):
        analysis.update(preds, labels, offsets=offsets, confidence=confidence)
    with pytest.raises(RuntimeError, match="twice"):
        analysis.reduce()


def test_wrong_inputs_name_the_prediction_and_the_shapes():
    preds, labels, offsets, confidence = batch(9)
    analysis = SegAccumulator(K, PREDICTIONS)
    with pytest.raises(ValueError, match="expected"):
        analysis.update({"logits": preds["logits"]}, labels, offsets=offsets,
                        confidence=confidence)
    bad = dict(preds, seed_logits=preds["seed_logits"][:, :5])
    with pytest.raises(ValueError, match="'seed_logits'"):
        analysis.update(bad, labels, offsets=offsets, confidence=confidence)
    with pytest.raises(ValueError, match="3 group names for a batch of 2"):
        analysis.update(preds, labels, offsets=offsets, confidence=confidence,
                        groups=["a", "b", "c"])


def test_band_widths_must_increase():
    with pytest.raises(ValueError, match="increasing"):
        SegAccumulator(K, PREDICTIONS, measures=MeasureSettings(bands=(4, 2)))


def test_predictions_and_fusion_pairs_of_the_output_types():
    x = torch.zeros(1, K, 2, 2)
    assert output_predictions(SegOutput(x)) == ["logits"]
    offset_net = SegOutput(x, torch.zeros(1, 2, 2, 2), x, x, torch.zeros(1, 1, 2, 2))
    assert output_predictions(offset_net) == PREDICTIONS
    assert fusion_pairs(PREDICTIONS) == {"fused_logits": "logits"}
    ocr = OCROutput(x, torch.zeros(1, 2, 2, 2), x, x, torch.zeros(1, 1, 2, 2), x, x, x)
    assert fusion_pairs(output_predictions(ocr)) == {"fused_logits": "logits",
                                                     "region_fused_logits": "region_logits"}
    assert fusion_pairs(["fused_logits"]) == {}


def test_label_size_inputs_resize_every_map_and_give_offsets_in_label_pixels():
    logits = torch.zeros(1, K, 4, 8)
    logits[0, 1, :, :4] = 1.0  # class 1 on the left half,
    logits[0, 3, :, 4:] = 1.0  # class 3 on the right one
    offsets = torch.zeros(1, 2, 4, 8)
    offsets[0, 0] = 0.5  # half of the half-width: (W - 1) / 4 label pixels to the right
    offsets[0, 1] = -1.0
    output = SegOutput(logits, offsets, logits, logits.flip(-1), torch.full((1, 1, 4, 8), 0.25))
    inputs = label_size_inputs(output, (16, 32), align_corners=False)
    assert sorted(inputs["preds"]) == sorted(PREDICTIONS)
    assert inputs["preds"]["logits"].shape == (1, 16, 32)
    assert inputs["preds"]["logits"][0, :, 16:].eq(3).all()
    assert inputs["preds"]["logits"][0, :, :16].eq(1).all()
    assert inputs["preds"]["fused_logits"][0, :, :16].eq(3).all()
    torch.testing.assert_close(inputs["offsets"][0, 0], torch.full((16, 32), 31 / 4))
    torch.testing.assert_close(inputs["offsets"][0, 1], torch.full((16, 32), -15 / 2))
    torch.testing.assert_close(inputs["confidence"], torch.full((1, 1, 16, 32), 0.25))
    assert label_size_inputs(SegOutput(logits), (16, 32), False)["offsets"] is None


def test_label_size_predictions_are_the_argmax_also_where_classes_tie():
    logits = torch.randint(0, 3, (2, K, 6, 10)).float()  # many equal maxima
    logits[0, 2, 1, 1] = float("nan")
    inputs = label_size_inputs(SegOutput(logits), (6, 10), align_corners=True)
    assert torch.equal(inputs["preds"]["logits"], logits.argmax(dim=1))
