"""HRNetV2 building blocks and the multi-resolution trunk.

Attribute names follow the official HRNetV2 segmentation code (conv1, bn1, conv2, bn2, layer1,
transition1..3, stage2..4; branches / fuse_layers inside a stage) so that its checkpoints and the
ImageNet classification files load without renaming.

Shapes: the stem maps B x 3 x H x W to B x 64 x H/4 x W/4; branch k of a stage runs at H/2^(k+2).
"""
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.normalization import IMAGENET, ImageNormalization
from .checkpointing import GradCheckpointing

# With grad checkpointing, branches 0 .. CHECKPOINTED_BRANCHES - 1 (1/4 and 1/8 resolution) of
# every HighResolutionModule are recomputed.  Every branch costs about the same FLOPs, but branch
# k stores about 2^-k as much as branch 0.  Stored GiB saved per second of recomputed forward
# (OVeNet-OCR W48, CPU): stem 1.8, heads 1.1-1.2, branch 0 0.8, branch 1 0.46, branch 2 0.22,
# branch 3 0.10; two branches are the fewest that bring every network under a third.
CHECKPOINTED_BRANCHES = 2

# Batch-norm momentum the modules are built with (HRNetV2 reference); ``set_bn_momentum`` changes
# it after building (MODEL.BN_MOMENTUM).
BN_MOMENTUM = 0.01


@dataclass(frozen=True)
class StageSpec:
    """One HRNet stage: ``num_modules`` HighResolutionModules over ``num_branches`` resolutions."""

    num_modules: int
    num_branches: int
    block: str  # "BASIC" or "BOTTLENECK"
    num_blocks: Sequence[int]
    num_channels: Sequence[int]

    @classmethod
    def from_config(cls, node):
        return cls(node.NUM_MODULES, node.NUM_BRANCHES, node.BLOCK, tuple(node.NUM_BLOCKS),
                   tuple(node.NUM_CHANNELS))

    @property
    def out_channels(self) -> list[int]:
        return [c * BLOCKS[self.block].expansion for c in self.num_channels]


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


# Residual blocks by MODEL.EXTRA.<stage>.BLOCK; the config's BLOCK_NAMES (lib/config/choices.py)
# lists the same names.
BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_layer(block, inplanes, planes, num_blocks, stride=1):
    """A residual sequence; the first block gets a 1x1 projection when the width changes."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(GradCheckpointing, nn.Module):
    """Parallel residual branches followed by all-to-all fusion.

    Input and output: a list of ``num_branches`` tensors, branch i of shape B x C_i x H_i x W_i.
    Fused output i = ReLU(sum_j T_ij(x_j)): identity for j = i; 1x1 conv + BN and a bilinear resize
    for j > i; (i - j) stride-2 3x3 convs for j < i.  With grad checkpointing the branches below
    ``CHECKPOINTED_BRANCHES`` are recomputed in the backward.
    """

    def __init__(self, block, num_blocks, in_channels, num_channels, multi_scale_output=True,
                 align_corners=False):
        super().__init__()
        self.num_branches = len(num_channels)
        self.align_corners = align_corners
        self.multi_scale_output = multi_scale_output
        self.branches = nn.ModuleList(
            make_layer(block, in_channels[i], num_channels[i], num_blocks[i])
            for i in range(self.num_branches))
        self.num_inchannels = [c * block.expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self):
        if self.num_branches == 1:
            return None
        ch = self.num_inchannels
        fuse_layers = []
        for i in range(self.num_branches if self.multi_scale_output else 1):
            row = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(nn.Sequential(
                        nn.Conv2d(ch[j], ch[i], 1, bias=False),
                        nn.BatchNorm2d(ch[i], momentum=BN_MOMENTUM)))
                elif j == i:
                    row.append(None)
                else:
                    downs = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        out = ch[i] if last else ch[j]
                        layers = [nn.Conv2d(ch[j], out, 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(out, momentum=BN_MOMENTUM)]
                        if not last:
                            layers.append(nn.ReLU(inplace=False))
                        downs.append(nn.Sequential(*layers))
                    row.append(nn.Sequential(*downs))
            fuse_layers.append(nn.ModuleList(row))
        return nn.ModuleList(fuse_layers)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        x = [self.checkpointed(branch, xi) if i < CHECKPOINTED_BRANCHES else branch(xi)
             for i, (branch, xi) in enumerate(zip(self.branches, x))]
        if self.fuse_layers is None:
            return x
        fused = []
        for i, row in enumerate(self.fuse_layers):
            y = x[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                t = layer(x[j])
                if j > i:
                    t = F.interpolate(t, size=x[i].shape[-2:], mode="bilinear",
                                      align_corners=self.align_corners)
                y = y + t
            fused.append(self.relu(y))
        return fused


def make_transition(pre_channels, cur_channels):
    """Adapt the branches of one stage to the next; new branches come from the lowest resolution.

    Entry i is None when branch i passes through unchanged.
    """
    layers: list[nn.Module | None] = []
    for i, cur in enumerate(cur_channels):
        if i < len(pre_channels):
            if cur != pre_channels[i]:
                layers.append(nn.Sequential(conv3x3(pre_channels[i], cur),
                                            nn.BatchNorm2d(cur, momentum=BN_MOMENTUM),
                                            nn.ReLU(inplace=True)))
            else:
                layers.append(None)
        else:
            downs = []
            for j in range(i + 1 - len(pre_channels)):
                inch = pre_channels[-1]
                outch = cur if j == i - len(pre_channels) else inch
                downs.append(nn.Sequential(conv3x3(inch, outch, stride=2),
                                           nn.BatchNorm2d(outch, momentum=BN_MOMENTUM),
                                           nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*downs))
    return nn.ModuleList(layers)


def make_stage(spec: StageSpec, in_channels, align_corners=False):
    """``spec.num_modules`` HighResolutionModules; every module keeps all resolutions."""
    block = BLOCKS[spec.block]
    modules = []
    for _ in range(spec.num_modules):
        modules.append(HighResolutionModule(block, spec.num_blocks, in_channels, spec.num_channels,
                                            multi_scale_output=True, align_corners=align_corners))
        in_channels = modules[-1].num_inchannels
    return nn.Sequential(*modules)


def run_transition(transition: nn.ModuleList, y_list: list[torch.Tensor]) -> list[torch.Tensor]:
    """Apply a transition: kept branches pass through, new ones start from the last branch."""
    out = []
    for i, layer in enumerate(transition):
        src = y_list[i] if i < len(y_list) else y_list[-1]
        out.append(src if layer is None else layer(src))
    return out


def concat_branches(y_list: list[torch.Tensor], align_corners=False) -> torch.Tensor:
    """Upsample every branch to branch 0 and concatenate: B x sum(C_i) x H/4 x W/4."""
    size = y_list[0].shape[-2:]
    ups = [y_list[0]] + [F.interpolate(y, size=size, mode="bilinear", align_corners=align_corners)
                         for y in y_list[1:]]
    return torch.cat(ups, dim=1)


def head(in_channels, out_channels, kernel_size=1):
    """1x1 conv (bias) -> BN -> ReLU -> conv (bias) to ``out_channels``: the official last_layer."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel_size=1),
        nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size,
                  padding=1 if kernel_size == 3 else 0),
    )


class HRNetTrunk(GradCheckpointing, nn.Module):
    """Stem, stage 1 and stages 2-4 of HRNetV2 (no head).

    ``forward_features(x)`` maps B x 3 x H x W to the four branch outputs, branch k of shape
    B x C_k x H/2^(k+2) x W/2^(k+2).

    With ``set_grad_checkpointing()`` (training only) these segments are recomputed in the
    backward instead of stored: the stem with stage 1, and the upper branches of every
    HighResolutionModule (``CHECKPOINTED_BRANCHES``); the networks add their heads.  Of a
    recomputed segment only the inputs stay in memory.

    ``normalization`` is how the input must be normalised (``lib.utils.normalization``): the
    statistics the trunk's pretrained weights were trained with, ImageNet's for the HRNet
    files; ``input_normalization(model)`` reads it, DDP and ``torch.compile`` wrappers
    included.
    """

    normalization: ImageNormalization = IMAGENET

    def __init__(self, stages: Sequence[StageSpec], align_corners=False):
        super().__init__()
        stage1, *later = stages
        self.align_corners = align_corners
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        block1 = BLOCKS[stage1.block]
        self.layer1 = make_layer(block1, 64, stage1.num_channels[0], stage1.num_blocks[0])
        # Output widths of each stage, index 1 = stage 1; used to build the duplicated stages.
        self.stage_channels = {1: stage1.out_channels}
        for k, spec in enumerate(later, start=2):
            pre = self.stage_channels[k - 1]
            setattr(self, f"transition{k - 1}", make_transition(pre, spec.out_channels))
            setattr(self, f"stage{k}", make_stage(spec, spec.out_channels, align_corners))
            self.stage_channels[k] = spec.out_channels

    @property
    def head_channels(self) -> int:
        return sum(self.stage_channels[4])

    def stem_and_stage1(self, x):
        """The stem (two stride-2 convolutions) and stage 1 (``layer1``):
        ``[B x C_1 x H/4 x W/4]``, the input of stage 2's transition."""
        return [self.checkpointed(self.layer1, x, fn=self._stem_and_stage1)]

    def _stem_and_stage1(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.layer1(x)

    def run_stages(self, y_list, first, last, suffix=""):
        """Stages ``first``..``last`` (2-4) on the outputs of stage ``first - 1``."""
        for k in range(first, last + 1):
            y_list = run_transition(getattr(self, f"transition{k - 1}{suffix}"), y_list)
            y_list = getattr(self, f"stage{k}{suffix}")(y_list)
        return y_list

    def forward_features(self, x):
        return self.run_stages(self.stem_and_stage1(x), 2, 4)

    def run_head(self, head: nn.Module, y_list: list[torch.Tensor]) -> torch.Tensor:
        """``head`` on the concatenated branches (``concat_branches``), one segment for
        checkpointing: the concatenation is recomputed too, only the branches are kept."""
        return self.checkpointed(head, y_list,
                                 fn=lambda ys: head(concat_branches(ys, self.align_corners)))


def init_weights(module):
    """Official initialisation: conv weights N(0, 0.001^2), BN weight 1 and bias 0 (conv biases
    keep PyTorch's default)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.001)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def set_bn_momentum(module, momentum):
    """Give every BatchNorm2d in ``module`` the running-statistics momentum ``momentum``.

    The HRNetV2 reference uses 0.01 throughout; HRNet-OCR and OVeNet-OCR use 0.1.
    """
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum
