"""The offset path of the offset-vector networks, shared by the HRNetV2 and HRNet-OCR variants.

The trunk is shared up to stage ``offset_branch - 1``; from there the offset path has its own
copies of the later stages (``transition{k-1}_2``, ``stage{k}_2``) and ends in a head
(720 -> 720 -> 3 for W48) that predicts a 2-D offset field o and a confidence map F.  Class maps
S_i are sampled at each pixel's seed p + o(p) to give S_s and fused by the confidence:
S_f = (1 - F) S_i + F S_s.  Geometry conventions are those of ``seed``.  With grad
checkpointing the duplicated stages are recomputed like the trunk's, and so is the head (with the
concatenation of its branches); the seed gathering is not (it keeps little).
"""
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..config.choices import OFFSET_BRANCHES
from . import seed
from .hrnet import StageSpec, head, init_weights, make_stage, make_transition


@dataclass(frozen=True)
class OffsetSettings:
    """How the offset path is built and used (MODEL.EXTRA.* and MODEL.FREEZED_PAR).

    offset_branch: first duplicated stage (2, 3 or 4).
    offset_threshold: largest offset, normalised units (o = tanh(raw) * threshold).
    iterative_refinement: passes of o <- o + o(p + o).
    logits: gather and fuse logits (True) or class probabilities (False).
    grid_align_corners: align_corners of the seed sampling.
    freeze_shared: train only the offset path; the rest stays frozen and in eval mode.
    """

    offset_branch: int = 4
    offset_threshold: float = 0.5
    iterative_refinement: int = 0
    logits: bool = True
    grid_align_corners: bool = True
    freeze_shared: bool = False


DEFAULT_OFFSET = OffsetSettings()


class OffsetPath:
    """Mixin for an ``HRNetTrunk`` network: the duplicated stages, the offset head named
    ``OFFSET_HEAD``, seed gathering and freezing.  Call ``add_offset_path`` at the end of
    ``__init__``."""

    OFFSET_HEAD = "offset_layer"

    def add_offset_path(self, offset_stages: dict[int, StageSpec], settings: OffsetSettings,
                        init_head: bool):
        """Build the offset path from ``offset_stages`` (keyed by stage number, those >=
        offset_branch).  ``init_head``: give the head the trunk's N(0, 0.001^2) initialisation
        (the thesis) instead of PyTorch's default (OVeNet-OCR, like every OCR head)."""
        if settings.offset_branch not in OFFSET_BRANCHES:
            raise ValueError(f"offset_branch must be 2, 3 or 4, got {settings.offset_branch}")
        self.offset_settings = settings
        pre = self.stage_channels[settings.offset_branch - 1]
        for k in range(settings.offset_branch, 5):
            spec = offset_stages[k]
            setattr(self, f"transition{k - 1}_2", make_transition(pre, spec.out_channels))
            setattr(self, f"stage{k}_2", make_stage(spec, spec.out_channels, self.align_corners))
            pre = spec.out_channels
        setattr(self, self.OFFSET_HEAD, head(sum(pre), 3))
        self._grids = {}
        for name in self.offset_path_sources():
            init_weights(getattr(self, name.rstrip(".")))
        if init_head:
            init_weights(getattr(self, self.OFFSET_HEAD))
        if settings.freeze_shared:
            for module in self.shared_modules():
                module.requires_grad_(False)
            self.train(self.training)  # the frozen part in eval mode from the start

    def offset_path_sources(self) -> dict[str, str]:
        """Prefix of each duplicated module -> prefix of the main-path module it copies."""
        names = {}
        for k in range(self.offset_settings.offset_branch, 5):
            names[f"transition{k - 1}_2."] = f"transition{k - 1}."
            names[f"stage{k}_2."] = f"stage{k}."
        return names

    def shared_modules(self):
        """Everything but the offset path (what MODEL.FREEZED_PAR freezes)."""
        own = {p.rstrip(".") for p in self.offset_path_sources()} | {self.OFFSET_HEAD}
        return [m for name, m in self.named_children() if name not in own]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.offset_settings.freeze_shared:
            for module in self.shared_modules():
                module.train(False)
        return self

    def path_features(self, x):
        """The four branch outputs of the main path and of the offset path (as
        ``forward_features``)."""
        first = self.offset_settings.offset_branch
        y_list = self.stem_and_stage1(x)
        if first > 2:
            y_list = self.run_stages(y_list, 2, first - 1)
        return self.run_stages(y_list, first, 4), self.run_stages(y_list, first, 4, suffix="_2")

    def offset_head(self, side):
        """The offset head on the offset path's branches: B x 3 x H/4 x W/4 (x, y, confidence,
        before tanh / sigmoid); a checkpointed segment like the trunk's."""
        return self.run_head(getattr(self, self.OFFSET_HEAD), side)

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

    def gather(self, head_output, maps: Sequence[torch.Tensor]):
        """Offsets, confidence and, for each class map S_i in ``maps``, its (S_s, S_f).

        head_output: the offset head's B x 3 x h x w (x, y, confidence before tanh / sigmoid);
        maps: B x K x h x w logits.  Returns (o B x 2 x h x w, F B x 1 x h x w, [(S_s, S_f)]).
        With ``logits`` false S_s and S_f are log-probabilities.  All maps share one sampling.
        """
        settings = self.offset_settings
        raw = head_output.float()
        # A diverged offset head gives NaN offsets; the seeds are sampled at 0 offsets instead
        # (grid_sample's backward crashes on a NaN grid) and the NaN goes into the confidence,
        # so the loss is non-finite for the training guard to see.
        offsets, nan_carry = seed.finite_offsets(torch.tanh(raw[:, :2]) * settings.offset_threshold)
        confidence = torch.sigmoid(raw[:, 2:3]) + nan_carry
        grid = self._base_grid(*offsets.shape[-2:], offsets)
        offsets = seed.refine_offsets(offsets, grid, settings.iterative_refinement,
                                      settings.grid_align_corners)
        seed_grid = seed.offsets_to_grid(offsets, grid)
        # Seeds are gathered in fp32 even under autocast: a bf16 grid is off by up to a pixel.
        values = [m.float() if settings.logits else m.float().softmax(dim=1) for m in maps]
        seeds = seed.gather_seeds(torch.cat(values, dim=1), seed_grid, settings.grid_align_corners)
        pairs = []
        for value, sampled in zip(values, seeds.split([v.shape[1] for v in values], dim=1)):
            fused = seed.fuse(value, sampled, confidence)
            pairs.append((sampled, fused) if settings.logits else (_log(sampled), _log(fused)))
        return offsets, confidence, pairs


def _log(probs):
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
