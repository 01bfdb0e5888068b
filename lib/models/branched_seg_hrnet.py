"""Offset-vector HRNetV2 (MODEL.NAME ``branched_seg_hrnet``).

The trunk is shared up to stage ``offset_branch - 1``; from there an offset path with its own
copies of the later stages (``transition{k-1}_2``, ``stage{k}_2``) ends in ``offset_layer``, which
predicts a 2-D offset field and a confidence map.  The class logits S_i are sampled at each pixel's
seed p + o(p) to give S_s, and fused with S_i by the confidence: S_f = (1 - F) S_i + F S_s.
"""
from collections.abc import Sequence

import torch

from . import seed
from .hrnet import StageSpec, concat_branches, head, init_weights, make_stage, make_transition
from .output import SegOutput
from .seg_hrnet import SegHRNet

# The stages from which the offset path may have its own copies (MODEL.EXTRA.OFFSET_BRANCH).
OFFSET_BRANCHES = (2, 3, 4)


class BranchedSegHRNet(SegHRNet):
    """HRNetV2 with an offset/confidence head.

    Input B x 3 x H x W; output ``SegOutput`` with every field at H/4 x W/4 (see SegOutput).

    Args:
        stages: STAGE1..STAGE4 of the main path.
        offset_stages: the offset path's copies, keyed by stage number (those >= offset_branch).
        offset_branch: first duplicated stage (2, 3 or 4).
        offset_threshold: largest offset, normalised units (o = tanh(raw) * threshold).
        iterative_refinement: passes of o <- o + o(p + o).
        logits: gather and fuse logits (True) or class probabilities (False).
        grid_align_corners: align_corners of the seed sampling.
        freeze_shared: train only the offset path; the rest stays frozen and in eval mode.
    """

    def __init__(self, stages: Sequence[StageSpec], offset_stages: dict[int, StageSpec],
                 num_classes: int, final_conv_kernel: int = 1, align_corners: bool = False,
                 offset_branch: int = 4, offset_threshold: float = 0.5,
                 iterative_refinement: int = 0, logits: bool = True,
                 grid_align_corners: bool = True, freeze_shared: bool = False):
        super().__init__(stages, num_classes, final_conv_kernel, align_corners)
        if offset_branch not in OFFSET_BRANCHES:
            raise ValueError(f"offset_branch must be 2, 3 or 4, got {offset_branch}")
        self.offset_branch = offset_branch
        self.offset_threshold = offset_threshold
        self.iterative_refinement = iterative_refinement
        self.gather_logits = logits
        self.grid_align_corners = grid_align_corners
        pre = self.stage_channels[offset_branch - 1]
        for k in range(offset_branch, 5):
            spec = offset_stages[k]
            setattr(self, f"transition{k - 1}_2", make_transition(pre, spec.out_channels))
            setattr(self, f"stage{k}_2", make_stage(spec, spec.out_channels, align_corners))
            pre = spec.out_channels
        self.offset_layer = head(sum(pre), 3)
        self._grids = {}
        for name in self.offset_path_sources():
            init_weights(getattr(self, name.rstrip(".")))
        init_weights(self.offset_layer)
        self.freeze_shared = freeze_shared
        if freeze_shared:
            for module in self.shared_modules():
                module.requires_grad_(False)

    def offset_path_sources(self) -> dict[str, str]:
        """Prefix of each duplicated module -> prefix of the main-path module it copies."""
        names = {}
        for k in range(self.offset_branch, 5):
            names[f"transition{k - 1}_2."] = f"transition{k - 1}."
            names[f"stage{k}_2."] = f"stage{k}."
        return names

    def shared_modules(self):
        """Everything but the offset path (what MODEL.FREEZED_PAR freezes)."""
        own = {p.rstrip(".") for p in self.offset_path_sources()} | {"offset_layer"}
        return [m for name, m in self.named_children() if name not in own]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_shared:
            for module in self.shared_modules():
                module.train(False)
        return self

    def _base_grid(self, h, w, ref):
        # Not a buffer: it depends on the map size, not on the weights, and must not be saved.
        if torch.compiler.is_compiling():
            return seed.base_grid(h, w, device=ref.device, dtype=ref.dtype)  # a graph constant
        key = (h, w, ref.device, ref.dtype)
        if key not in self._grids:
            # A normal tensor even when made during evaluation, so training can use it too.
            with torch.inference_mode(False):
                self._grids[key] = seed.base_grid(h, w, device=ref.device, dtype=ref.dtype)
        return self._grids[key]

    def forward(self, x):
        y_list = self.stem(x)
        if self.offset_branch > 2:
            y_list = self.run_stages(y_list, 2, self.offset_branch - 1)
        main = self.run_stages(y_list, self.offset_branch, 4)
        side = self.run_stages(y_list, self.offset_branch, 4, suffix="_2")
        logits = self.last_layer(concat_branches(main, self.align_corners))
        raw = self.offset_layer(concat_branches(side, self.align_corners)).float()
        # A diverged offset head gives NaN offsets; the seeds are sampled at 0 offsets instead
        # and the NaN goes into the confidence, so the loss is non-finite for the guard to see.
        offsets, nan_carry = seed.finite_offsets(torch.tanh(raw[:, :2]) * self.offset_threshold)
        confidence = torch.sigmoid(raw[:, 2:3]) + nan_carry

        grid = self._base_grid(*offsets.shape[-2:], offsets)
        offsets = seed.refine_offsets(offsets, grid, self.iterative_refinement,
                                      self.grid_align_corners)
        seed_grid = seed.offsets_to_grid(offsets, grid)
        # Seeds are gathered in fp32 even under autocast: a bf16 grid is off by up to a pixel.
        values = logits.float() if self.gather_logits else logits.float().softmax(dim=1)
        seeds = seed.gather_seeds(values, seed_grid, self.grid_align_corners)
        fused = seed.fuse(values, seeds, confidence)
        if not self.gather_logits:
            seeds, fused = _log(seeds), _log(fused)
        return SegOutput(logits, offsets, seeds, fused, confidence)


def _log(probs):
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
