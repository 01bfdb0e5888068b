"""The fusion split (same / fixed / broken / changed) and its histograms on hand-made pixels."""
import math

import pytest
import torch

from lib.evaluation.accumulator import MeasureSettings, SegAccumulator
from lib.evaluation.boundary import label_regions
from lib.evaluation.fusion import (
    LENGTH_EDGES,
    confidence_bin,
    confidence_edges,
    fusion_counts,
    fusion_outcome,
    histogram_bins,
    length_bin,
)

PREDICTIONS = ["logits", "seed_logits", "fused_logits"]
# One image of 2 x 4 pixels, classes 0..2; column by column:
#   labels  0 0 1 1 | 2 2 255 1
#   S_i     0 1 1 2 | 0 2 0   0
#   S_f     0 0 2 2 | 1 1 1   0
LABELS = torch.tensor([[[0, 0, 1, 1], [2, 2, 255, 1]]])
BASE = torch.tensor([[[0, 1, 1, 2], [0, 2, 0, 0]]])
FUSED = torch.tensor([[[0, 0, 2, 2], [1, 1, 1, 0]]])
# same (0, 0), fixed (0, 1), broken (0, 2), same (0, 3): S_i wrong and S_f equal;
# changed (1, 0), broken (1, 1), ignored (1, 2), same (1, 3).
OUTCOME = [[0, 1, 2, 0], [3, 2, -1, 0]]
# Offset (dx, dy) in pixels and confidence of each pixel.
DX = torch.tensor([[[0.0, 3.0, 0.2, 0.0], [1.5, 40.0, 9.0, 0.0]]])
DY = torch.tensor([[[0.0, 4.0, 0.0, 0.7], [0.0, 30.0, 9.0, 600.0]]])
CONF = torch.tensor([[[[0.0, 0.97, 0.5, 1.0], [0.26, 0.04, 0.5, 0.5]]]])


def test_outcomes_of_hand_made_pixels():
    regions = label_regions(LABELS, 3)
    outcome = fusion_outcome(BASE, FUSED, regions)
    assert torch.where(LABELS == 255, -1, outcome.long())[0].tolist() == OUTCOME
    counts = fusion_counts(outcome, regions, torch.zeros_like(LABELS), 3, 1).sum(dim=(2, 3))
    # rows classes 0, 1, 2; columns same, fixed, broken, changed; the ignored pixel nowhere
    assert counts.tolist() == [[1, 1, 0, 0], [2, 0, 1, 0], [0, 0, 1, 1]]


def test_length_bins_double_from_half_a_pixel_and_are_exact_at_the_edges():
    edges = torch.tensor(LENGTH_EDGES)
    assert length_bin(edges).tolist() == list(range(len(LENGTH_EDGES)))
    below = torch.nextafter(edges[1:], torch.zeros(()))
    assert length_bin(below).tolist() == list(range(len(LENGTH_EDGES) - 1))
    assert length_bin(torch.tensor([1e-30, 3.0, 1e6])).tolist() == [0, 3, 11]


def test_confidence_bins_are_equal_and_one_falls_in_the_last():
    values = torch.tensor([0.0, 0.2499, 0.25, 0.74, 0.75, 0.999, 1.0])
    assert confidence_bin(values, 4).tolist() == [0, 0, 1, 2, 3, 3, 3]


def test_a_nan_length_or_confidence_has_no_bin_and_every_other_value_has_one():
    nan, inf = float("nan"), float("inf")
    no_length, no_confidence = len(LENGTH_EDGES), 4
    assert length_bin(torch.tensor([nan, -nan, inf, 3.0])).tolist() == [no_length] * 2 + [11, 3]
    assert confidence_bin(torch.tensor([nan, -nan, inf, -inf, 0.5]), 4).tolist() == \
        [no_confidence] * 2 + [3, 0, 2]
    joint = histogram_bins(torch.tensor([nan, 3.0, 3.0]), torch.tensor([0.5, nan, 0.5]), 4)
    assert joint.tolist() == [no_length * 4, no_length * 4, 3 * 4 + 2]


def test_pixels_with_a_nan_offset_or_confidence_are_left_out_of_the_fusion_counts():
    # A diverged network's maps: NaN confidence at the fixed (0, 1) and the changed (1, 0)
    # pixel, a NaN offset at the broken (0, 2) one; the confusion matrices keep every pixel.
    nan = float("nan")
    confidence, dx = CONF.clone(), DX.clone()
    confidence[0, 0, 0, 1] = confidence[0, 0, 1, 0] = nan
    dx[0, 0, 2] = nan
    analysis = SegAccumulator(3, PREDICTIONS, measures=MeasureSettings(bands=(1,), confidence_bins=4))
    analysis.update({"logits": BASE, "seed_logits": FUSED, "fused_logits": FUSED}, LABELS,
                    offsets=torch.cat((dx, DY))[None], confidence=confidence)
    analysis.reduce()
    block = analysis.results()["fusion"]["fused_logits"]
    # Left: same (0, 0), same (0, 3), broken (1, 1), same (1, 3).
    assert block["pixels"] == 4
    assert (block["fixed"], block["broken"], block["changed"]) == (0.0, 0.25, 0.0)
    assert sum(block["offset_length"]["all"]) == sum(block["confidence"]["all"]) == 4
    assert int(analysis.confusion("fused_logits").sum()) == 7


def _analysis_of(groups=None, batch=1, confidence_bins=4):
    analysis = SegAccumulator(3, PREDICTIONS, measures=MeasureSettings(bands=(1,),
                                                                       confidence_bins=confidence_bins))
    preds = {"logits": BASE, "seed_logits": FUSED, "fused_logits": FUSED}
    offsets = torch.cat((DX, DY))[None]
    analysis.update({h: p.repeat(batch, 1, 1) for h, p in preds.items()},
                    LABELS.repeat(batch, 1, 1), offsets=offsets.repeat(batch, 1, 1, 1),
                    confidence=CONF.repeat(batch, 1, 1, 1), groups=groups)
    return analysis.reduce().results()["fusion"]


def test_the_fusion_block_counts_shares_per_class_and_histograms():
    block = _analysis_of()["fused_logits"]
    assert block["against"] == "logits"
    assert block["pixels"] == 7
    assert block["differ"] == pytest.approx(4 / 7)
    assert (block["fixed"], block["broken"], block["changed"]) == pytest.approx((1 / 7, 2 / 7,
                                                                                  1 / 7))
    assert block["per_class"]["1"] == pytest.approx(
        {"pixels": 3, "differ": 1 / 3, "fixed": 0.0, "broken": 1 / 3, "changed": 0.0})
    assert block["per_class"]["2"]["changed"] == pytest.approx(0.5)
    # Lengths of the labelled pixels: 0, 5, 0.2, 0.7 | 1.5, 50, (ignored), 600.
    lengths = block["offset_length"]
    assert lengths["edges"][:5] == [0.0, 0.5, 1.0, 2.0, 4.0] and lengths["unit"] == "pixels"
    assert lengths["all"] == [2, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1]
    assert lengths["fixed"] == [0, 0, 0, 0, 1] + [0] * 7  # 5 in [4, 8)
    assert lengths["broken"] == [1] + [0] * 6 + [1, 0, 0, 0, 0]  # 0.2 and 50 in [32, 64)
    assert lengths["changed"] == [0, 0, 1] + [0] * 9
    # Confidence bins [0, .25) [.25, .5) [.5, .75) [.75, 1]: labelled 0, .97, .5, 1 | .26, .04, .5
    confidence = block["confidence"]
    assert confidence["edges"] == [0.0, 0.25, 0.5, 0.75]
    assert confidence["all"] == [2, 1, 2, 2]
    assert confidence["fixed"] == [0, 0, 0, 1] and confidence["broken"] == [1, 0, 1, 0]


@pytest.mark.parametrize("bins", [1, 20, 100])
def test_the_split_does_not_depend_on_the_histogram_bins(bins):
    block = _analysis_of(confidence_bins=bins)["fused_logits"]
    assert (block["fixed"], block["broken"], block["changed"]) == pytest.approx((1 / 7, 2 / 7,
                                                                                  1 / 7))
    assert block["offset_length"]["broken"] == [1] + [0] * 6 + [1, 0, 0, 0, 0]
    assert sum(block["confidence"]["changed"]) == 1 and len(block["confidence"]["all"]) == bins


def test_every_fusion_count_is_per_condition_too():
    both = _analysis_of(groups=["fog", "night"], batch=2)["fused_logits"]
    assert both["pixels"] == 14 and both["fixed"] == pytest.approx(1 / 7)
    for condition in ("fog", "night"):
        alone = both["per_condition"][condition]
        assert alone["pixels"] == 7 and alone["broken"] == pytest.approx(2 / 7)
        assert alone["offset_length"]["all"] == [2, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1]


def test_a_class_without_labelled_pixels_has_no_share():
    labels = torch.full((1, 2, 4), 255)
    analysis = SegAccumulator(3, PREDICTIONS, measures=MeasureSettings(bands=(1,)))
    preds = {h: BASE for h in PREDICTIONS}
    analysis.update(preds, labels, offsets=torch.zeros(1, 2, 2, 4), confidence=CONF)
    block = analysis.reduce().results()["fusion"]["fused_logits"]
    assert block["pixels"] == 0 and math.isnan(block["differ"])
    assert sum(block["confidence"]["all"]) == 0


def test_confidence_edges_split_the_unit_interval_evenly():
    assert confidence_edges(4) == (0.0, 0.25, 0.5, 0.75)
    assert len(confidence_edges()) == 20


def test_no_fused_prediction_no_fusion_block_and_no_offsets_needed():
    analysis = SegAccumulator(3, ["logits"], measures=MeasureSettings(bands=(1,)))
    analysis.update({"logits": BASE}, LABELS)
    assert analysis.reduce().results()["fusion"] == {}


def test_a_fused_prediction_without_offsets_names_what_is_missing():
    analysis = SegAccumulator(3, PREDICTIONS, measures=MeasureSettings(bands=(1,)))
    with pytest.raises(ValueError, match="need offsets N x 2 x H x W"):
        analysis.update({h: BASE for h in PREDICTIONS}, LABELS, confidence=CONF)
