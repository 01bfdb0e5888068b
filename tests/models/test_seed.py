"""The offset-vector geometry against analytic cases and a NumPy re-derivation."""
import numpy as np
import pytest
import torch

from lib.models import seed


def _grid(h, w):
    return seed.base_grid(h, w, dtype=torch.float64)


def _constant_offsets(b, h, w, dx=0.0, dy=0.0):
    ox, oy = seed.pixels_to_offsets(dx, dy, h, w)
    o = torch.zeros(b, 2, h, w, dtype=torch.float64)
    o[:, 0], o[:, 1] = ox, oy
    return o


def test_base_grid_puts_minus_one_and_one_on_the_corner_pixel_centres():
    g = _grid(3, 5)
    assert g.shape == (3, 5, 2)
    assert g[0, 0].tolist() == [-1.0, -1.0] and g[-1, -1].tolist() == [1.0, 1.0]
    assert g[0, :, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]  # x runs along the last axis
    assert g[:, 0, 1].tolist() == [-1.0, 0.0, 1.0]


def test_zero_offsets_give_seeds_equal_to_the_logits_and_fusion_equal_to_the_logits():
    values = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    seeds = seed.gather_seeds(values, seed.offsets_to_grid(_constant_offsets(2, 6, 7), _grid(6, 7)))
    assert torch.allclose(seeds, values, atol=1e-12)
    conf = torch.rand(2, 1, 6, 7, dtype=torch.float64)
    assert torch.allclose(seed.fuse(values, seeds, conf), values, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, -3])
def test_constant_offset_along_x_gathers_the_pixel_k_to_the_right_with_border_clamping(k):
    h, w = 5, 8
    values = torch.randn(1, 3, h, w, dtype=torch.float64)
    grid = seed.offsets_to_grid(_constant_offsets(1, h, w, dx=k), _grid(h, w))
    seeds = seed.gather_seeds(values, grid)
    src = np.clip(np.arange(w) + k, 0, w - 1)
    assert torch.allclose(seeds, values[..., src], atol=1e-9)


@pytest.mark.parametrize("k", [1, 3, -2])
def test_constant_offset_along_y_gathers_the_pixel_k_below_with_border_clamping(k):
    h, w = 6, 4
    values = torch.randn(2, 3, h, w, dtype=torch.float64)
    grid = seed.offsets_to_grid(_constant_offsets(2, h, w, dy=k), _grid(h, w))
    src = np.clip(np.arange(h) + k, 0, h - 1)
    assert torch.allclose(seed.gather_seeds(values, grid), values[:, :, src], atol=1e-9)


def _numpy_bilinear_border(values, px, py):
    """Bilinear sample of values (C, H, W) at pixel coordinates, coordinates clamped to the map."""
    c, h, w = values.shape
    px, py = np.clip(px, 0, w - 1), np.clip(py, 0, h - 1)
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = px - x0, py - y0
    return (values[:, y0, x0] * (1 - ax) * (1 - ay) + values[:, y0, x1] * ax * (1 - ay)
            + values[:, y1, x0] * (1 - ax) * ay + values[:, y1, x1] * ax * ay)


def test_fractional_offsets_match_a_numpy_bilinear_re_derivation():
    rng = np.random.default_rng(0)
    h, w = 7, 9
    values = rng.normal(size=(1, 3, h, w))
    dx, dy = rng.uniform(-3, 3, size=(h, w)), rng.uniform(-3, 3, size=(h, w))
    o = torch.from_numpy(np.stack([dx * 2 / (w - 1), dy * 2 / (h - 1)])[None])
    got = seed.gather_seeds(torch.from_numpy(values), seed.offsets_to_grid(o, _grid(h, w)))
    ys, xs = np.mgrid[0:h, 0:w]
    want = _numpy_bilinear_border(values[0], xs + dx, ys + dy)
    np.testing.assert_allclose(got[0].numpy(), want, atol=1e-9)


def test_refinement_follows_offset_chains():
    h, w = 3, 12
    step = 2 / (w - 1)
    offsets = torch.zeros(1, 2, h, w, dtype=torch.float64)
    offsets[0, 0, :, 0] = 3 * step  # pixel 0 points to pixel 3,
    offsets[0, 0, :, 3] = 2 * step  # which points to pixel 5, which stays.
    once = seed.refine_offsets(offsets, _grid(h, w), iterations=1)
    assert torch.allclose(once[0, 0, :, 0], torch.full((h,), 5 * step, dtype=torch.float64))
    assert torch.allclose(once[0, 0, :, 3], torch.full((h,), 2 * step, dtype=torch.float64))
    assert torch.equal(once[0, 1], torch.zeros(h, w, dtype=torch.float64))
    assert torch.equal(seed.refine_offsets(offsets, _grid(h, w), iterations=0), offsets)


def test_each_refinement_pass_samples_the_current_field():
    h, w = 2, 40
    offsets = torch.zeros(1, 2, h, w, dtype=torch.float64)
    offsets[0, 0] = 2 * 2 / (w - 1)  # two pixels to the right everywhere
    twice = seed.refine_offsets(offsets, _grid(h, w), iterations=2)
    # 2 -> 2 + 2 = 4 -> 4 + 4 = 8 pixels (the grid is clamped, so the border samples inside).
    assert torch.allclose(twice[0, 0], torch.full((h, w), 8 * 2 / (w - 1), dtype=torch.float64))


def flip_offsets(offsets):
    """Offset field of the horizontally mirrored image: mirror the map and negate x."""
    flipped = offsets.flip(-1)
    return torch.cat((-flipped[:, :1], flipped[:, 1:]), dim=1)


def test_seeds_of_a_mirrored_map_with_the_mirrored_offsets_are_the_mirrored_seeds():
    torch.manual_seed(0)
    h, w = 6, 10
    values = torch.randn(2, 3, h, w, dtype=torch.float64)
    offsets = torch.rand(2, 2, h, w, dtype=torch.float64) - 0.5
    grid = _grid(h, w)
    seeds = seed.gather_seeds(values, seed.offsets_to_grid(offsets, grid))
    mirrored = seed.gather_seeds(values.flip(-1),
                                 seed.offsets_to_grid(flip_offsets(offsets), grid))
    assert torch.allclose(mirrored, seeds.flip(-1), atol=1e-9)


def test_mirroring_an_offset_field_twice_is_the_identity():  # of the helper above
    offsets = torch.randn(3, 2, 5, 7)
    assert torch.equal(flip_offsets(flip_offsets(offsets)), offsets)
    assert torch.equal(flip_offsets(offsets)[:, 0], -offsets[:, 0].flip(-1))


def test_fusion_is_the_confidence_weighted_mix():
    a, b = torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3)
    conf = torch.rand(1, 1, 3, 3)
    assert torch.allclose(seed.fuse(a, b, conf), (1 - conf) * a + conf * b, atol=1e-6)


def test_finite_offsets_zero_the_non_finite_values_and_carry_nan_to_exactly_those_pixels():
    offsets = torch.randn(2, 2, 3, 4, dtype=torch.float64)
    same, carry = seed.finite_offsets(offsets)
    assert torch.equal(same, offsets) and torch.equal(carry, torch.zeros(2, 1, 3, 4,
                                                                         dtype=torch.float64))
    offsets[0, 0, 1, 2], offsets[1, 1, 0, 0], offsets[1, 0, 2, 3] = np.nan, np.inf, -np.inf
    cleaned, carry = seed.finite_offsets(offsets)
    bad = torch.zeros(2, 1, 3, 4, dtype=torch.bool)
    bad[0, 0, 1, 2] = bad[1, 0, 0, 0] = bad[1, 0, 2, 3] = True
    assert torch.equal(carry.isnan(), bad) and torch.equal(carry[~bad], torch.zeros(21,
                                                                                    dtype=torch.float64))
    assert torch.isfinite(cleaned).all()
    assert cleaned[0, 0, 1, 2] == 0 and cleaned[1, 1, 0, 0] == 0 and cleaned[1, 0, 2, 3] == 0
    keep = torch.isfinite(offsets)
    assert torch.equal(cleaned[keep], offsets[keep])


# A diverging run: the offset head's output turns NaN.  grid_sample's backward on a NaN grid
# crashes the process (SIGSEGV), so this runs in a child process and must exit normally.
_NAN_OFFSETS_STEP = """
import torch
from lib.models.losses import build_criterion
from lib.models import build_model
from tests.helpers import tiny_cfg

torch.manual_seed(0)
cfg = tiny_cfg()
cfg.LOSS.CLASS_BALANCE = False
cfg.LOSS.USE_OHEM = {ohem}
cfg.MODEL.EXTRA.ITERATIVE_REFINEMENT = {refinement}
model = build_model(cfg, load_pretrained=False).train()
criterion = build_criterion(cfg)


def nan_offsets(module, inputs, raw):
    raw = raw.clone()
    raw[:, :2] = float("nan")  # the offsets only; the logits and the confidence stay finite
    return raw


model.offset_layer.register_forward_hook(nan_offsets)
output = model(torch.randn(2, 3, 64, 64))
terms = criterion(output, torch.randint(0, 5, (2, 64, 64)))
loss = sum(terms.values())
assert torch.isfinite(output.offsets).all() and torch.isfinite(output.logits).all()
assert not torch.isfinite(loss), terms
loss.backward()
print("backward returned", {{k: bool(torch.isfinite(v)) for k, v in terms.items()}})
"""


@pytest.mark.parametrize("ohem, refinement", [(False, 0), (True, 1)])
def test_nan_offsets_give_a_non_finite_loss_and_a_backward_that_returns(ohem, refinement):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _NAN_OFFSETS_STEP.format(
        ohem=ohem, refinement=refinement)], cwd=root, env=env, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, f"rc {done.returncode}: {done.stderr[-2000:]}"
    assert "backward returned" in done.stdout
    assert "'fused': False" in done.stdout and "'confidence': False" in done.stdout
