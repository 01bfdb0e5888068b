"""Geometry of the offset-vector method: pure functions on tensors.

Conventions used throughout:
- Offset fields are B x 2 x h x w, channel 0 = x (to the right), channel 1 = y (downwards).
- Offsets and grids are in normalised units with align_corners=True: -1 and +1 are the centres of
  the first and last pixel, so a displacement of d pixels along x is d * 2 / (w - 1).
- Sampling grids are B x h x w x 2 with the last dimension (x, y), as ``grid_sample`` takes them.
"""
import torch
import torch.nn.functional as F


def base_grid(h, w, *, device=None, dtype=None):
    """(h, w, 2) grid of pixel centres, last dim (x, y), align_corners=True units."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)


def pixels_to_offsets(dx, dy, h, w):
    """A displacement of (dx, dy) pixels in an h x w map, in normalised units (x, y)."""
    return dx * 2.0 / max(w - 1, 1), dy * 2.0 / max(h - 1, 1)


def finite_offsets(offsets):
    """Offsets that are safe to sample with, and the NaN they carried.

    ``grid_sample`` must never see a non-finite grid: its backward crashes the process on one
    (border padding).  Returns ``(offsets with every non-finite value replaced by 0, carry)``
    where ``carry`` (B x 1 x h x w) is NaN at the pixels whose offset was not finite and 0
    elsewhere; adding it to an output keeps a diverged network's loss non-finite, without
    reading anything back to the host.  For finite offsets both are exact no-ops.
    """
    carry = offsets.sum(dim=1, keepdim=True) * 0.0
    return torch.nan_to_num(offsets, nan=0.0, posinf=0.0, neginf=0.0), carry


def offsets_to_grid(offsets, grid):
    """Seed sampling grid clamp(grid + o, -1, 1).

    offsets: B x 2 x h x w (x, y); grid: h x w x 2 from ``base_grid``.  Returns B x h x w x 2.
    """
    return (grid + offsets.permute(0, 2, 3, 1)).clamp(-1.0, 1.0)


def gather_seeds(values, seed_grid, align_corners=True):
    """Sample ``values`` (B x C x h x w) at the seeds: bilinear, border padding.  B x C x h x w."""
    return F.grid_sample(values, seed_grid.to(values.dtype), mode="bilinear",
                         padding_mode="border", align_corners=align_corners)


def refine_offsets(offsets, grid, iterations, align_corners=True):
    """Follow offset chains: ``iterations`` times, o <- o + o(p + o) (bilinear, zero padding).

    Returns the refined offsets (B x 2 x h x w); their grid is ``offsets_to_grid(o, grid)``.
    """
    for _ in range(iterations):
        seed_grid = offsets_to_grid(offsets, grid)
        offsets = offsets + F.grid_sample(offsets, seed_grid.to(offsets.dtype), mode="bilinear",
                                          padding_mode="zeros", align_corners=align_corners)
    return offsets


def fuse(values, seed_values, confidence):
    """S_f = (1 - F) * S_i + F * S_s; confidence is B x 1 x h x w in [0, 1]."""
    return values + confidence * (seed_values - values)
