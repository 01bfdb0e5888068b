"""The variants a benchmark compares: precision, memory format and torch.compile, each built from
its own config by the builders of training and testing."""
from dataclasses import dataclass

__all__ = ["Variant", "VARIANTS", "DEFAULT_VARIANTS", "variant_names", "variant_cfg",
           "row_settings"]


@dataclass(frozen=True)
class Variant:
    """TRAIN.AMP (bf16 autocast), TRAIN.CHANNELS_LAST and TRAIN.COMPILE of one variant."""

    name: str
    amp: bool
    channels_last: bool
    compile: bool


VARIANTS = {v.name: v for v in (
    Variant("fp32", False, False, False),
    Variant("fp32_cl", False, True, False),
    Variant("bf16", True, False, False),
    Variant("bf16_cl", True, True, False),
    Variant("bf16_cl_compile", True, True, True),
)}
# The variants of a run that names none, by device type.
DEFAULT_VARIANTS = {"cpu": "fp32", "cuda": "fp32,bf16,bf16_cl,bf16_cl_compile"}


def variant_names(variants, device):
    """``variants`` (names), or the device's default ones when None."""
    return variants or DEFAULT_VARIANTS[device.type].split(",")


def variant_cfg(cfg, variant, checkpointing=None):
    """``cfg`` with the variant's TRAIN.AMP, TRAIN.CHANNELS_LAST and TRAIN.COMPILE (and
    TRAIN.GRAD_CHECKPOINTING unless None): every variant is built by the builders of training and
    testing from its own config."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.TRAIN.AMP, cfg.TRAIN.CHANNELS_LAST = variant.amp, variant.channels_last
    cfg.TRAIN.COMPILE = variant.compile
    if checkpointing is not None:
        cfg.TRAIN.GRAD_CHECKPOINTING = checkpointing
    cfg.freeze()
    return cfg


def row_settings(variants, checkpointing, cfg):
    """``([(Variant, checkpointing), ...], notes)``: every variant named in ``variants`` with
    every setting of ``checkpointing`` (None: the config's), but torch.compile with
    checkpointing, which training refuses (a note says so)."""
    settings, refused = [], []
    for name in variants:
        for on in checkpointing:
            if VARIANTS[name].compile and (on or on is None and cfg.TRAIN.GRAD_CHECKPOINTING):
                refused.append(f"{name} with checkpointing: not run (TRAIN.COMPILE refuses "
                               f"TRAIN.GRAD_CHECKPOINTING)")
            else:
                settings.append((VARIANTS[name], on))
    return settings, refused
