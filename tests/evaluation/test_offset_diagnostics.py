"""The study's measures of seeds and gradients, on hand-made cases."""
import pytest
import torch

from lib.evaluation.offset_diagnostics import (
    fixable_share,
    near_boundary,
    seed_measures,
    seed_positions,
    seed_summary,
    shared_trunk_parameters,
    term_gradients,
)
from lib.models import build_model
from lib.models.losses import build_criterion


def _offsets(dx, dy, h=4, w=6):
    o = torch.zeros(1, 2, h, w)
    o[:, 0], o[:, 1] = dx, dy
    return o


def test_seed_positions_are_the_pixel_plus_its_offset_rounded_and_clamped():
    rows, cols = seed_positions(_offsets(2.4, -1.0))
    assert rows[0, :, 0].tolist() == [0, 0, 1, 2]  # row - 1, clamped at 0
    assert cols[0, 0].tolist() == [2, 3, 4, 5, 5, 5]  # col + 2, clamped at 5
    rows, cols = seed_positions(_offsets(0.0, 0.0))
    assert rows[0, :, 3].tolist() == [0, 1, 2, 3] and cols[0, 2].tolist() == list(range(6))


def test_near_boundary_marks_the_pixels_whose_window_holds_two_labels():
    labels = torch.zeros(1, 3, 8, dtype=torch.int64)
    labels[:, :, 4:] = 1
    near = near_boundary(labels, 1)
    assert near[0, 0].tolist() == [False, False, False, True, True, False, False, False]
    assert near_boundary(labels, 2)[0, 1].tolist() == [False, False, True, True, True, True,
                                                       False, False]


def test_seed_measures_count_same_class_seeds_by_hand():
    # class 0 in columns 0-3, class 1 in 4-7; every seed is 2 pixels to the right
    labels = torch.zeros(1, 2, 8, dtype=torch.int64)
    labels[:, :, 4:] = 1
    offsets = _offsets(2.0, 0.0, 2, 8)
    confidence = torch.full((1, 1, 2, 8), 0.25)
    confidence[..., 2:4] = 0.75  # the pixels whose seed crosses into class 1
    sums = seed_measures(offsets, confidence, labels, threshold_px=(2.0, 10.0), radius=1)
    # columns 2 and 3 cross the boundary: 4 of 16 pixels; the rest stay in their class
    assert float(sums["pixels"]) == 16 and float(sums["same"]) == 12
    s = seed_summary({k: float(v) for k, v in sums.items()})
    assert s["same_class_seeds"] == pytest.approx(12 / 16)
    # near the boundary (radius 1): columns 3 and 4; column 3 crosses, column 4 stays
    assert s["same_class_seeds_near_boundary"] == pytest.approx(0.5)
    assert s["same_class_seeds_interior"] == pytest.approx(10 / 12)
    assert s["saturated"] == pytest.approx(1.0)  # |o_x| = 2 = the threshold
    assert s["mean_length_px"] == pytest.approx(2.0)
    assert s["confidence_same"] == pytest.approx(0.25)
    assert s["confidence_other"] == pytest.approx(0.75)


def test_ignored_pixels_and_seeds_are_left_out():
    labels = torch.tensor([[[0, 0, 255, 1]]])
    sums = seed_measures(_offsets(1.0, 0.0, 1, 4), torch.zeros(1, 1, 1, 4), labels,
                         threshold_px=(5.0, 5.0), radius=0)
    # pixel 0 -> 1 (same), pixel 1 -> ignored seed, pixel 3 -> 3 (clamped, same)
    assert float(sums["pixels"]) == 3 and float(sums["seed_labelled"]) == 2
    assert float(sums["same"]) == 2


def test_fixable_share_counts_wrong_pixels_with_a_right_one_of_their_class_in_reach():
    labels = torch.tensor([[[0, 0, 0, 0, 0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 1, 1, 1, 1, 1, 1, 0]]])
    # wrong: columns 1-5 (class 0) and 7 (class 1); right class-0 pixel at 0, class-1 at 6
    fixable, wrong = fixable_share(pred, labels, 2, (0, 2))
    assert float(wrong) == 6
    assert float(fixable) == 3  # columns 1 and 2 reach column 0; column 7 reaches column 6
    fixable, _ = fixable_share(pred, labels, 2, (0, 5))
    assert float(fixable) == 6


def _tiny_offset_network(make_tiny_cfg, branch):
    cfg = make_tiny_cfg(offset_branch=branch)
    cfg.LOSS.CLASS_BALANCE = False
    cfg.LOSS.USE_OHEM = False
    torch.manual_seed(0)
    return build_model(cfg, load_pretrained=False), build_criterion(cfg, None)


@pytest.mark.parametrize("branch, shared", [
    (4, {"conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2",
         "stage3"}),
    (2, {"conv1", "bn1", "conv2", "bn2", "layer1"}),
])
def test_the_shared_trunk_is_the_part_both_paths_run_through(make_tiny_cfg, branch, shared):
    network, _ = _tiny_offset_network(make_tiny_cfg, branch)
    names = shared_trunk_parameters(network, torch.randn(1, 3, 32, 64))
    assert {n.split(".")[0] for n, _ in names} == shared
    # every parameter of those modules is there, so none is missed
    expected = sum(p.numel() for n, p in network.named_parameters() if n.split(".")[0] in shared)
    assert sum(p.numel() for _, p in names) == expected


def test_term_gradients_equal_the_gradient_of_each_term_alone(make_tiny_cfg):
    network, criterion = _tiny_offset_network(make_tiny_cfg, 4)
    images = torch.randn(2, 3, 32, 64)
    labels = torch.randint(0, 5, (2, 32, 64))
    params = [p for _, p in shared_trunk_parameters(network, images)]
    got = term_gradients(network, criterion, images, labels, params)
    assert set(got) == {"seg", "seed", "fused", "confidence", "total"}
    assert got["seg"]["cos_seg"] == pytest.approx(1.0)
    network.zero_grad()
    criterion(network(images), labels)["confidence"].backward()
    norm = torch.cat([p.grad.flatten() for p in params]).norm()
    assert got["confidence"]["norm"] == pytest.approx(float(norm), rel=1e-5)
