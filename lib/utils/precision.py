"""Mixed precision: the autocast dtype of a run (TRAIN.AMP, TRAIN.AMP_DTYPE) and its context."""
import contextlib

import torch

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def amp_dtype(enabled, name="bfloat16"):
    """The autocast dtype called ``name`` (a key of ``AMP_DTYPES``) when ``enabled``, else None
    (fp32)."""
    if name not in AMP_DTYPES:
        raise ValueError(f"TRAIN.AMP_DTYPE {name!r} is not one of {sorted(AMP_DTYPES)}")
    return AMP_DTYPES[name] if enabled else None


def autocast(device, dtype):
    """Autocast context for ``device`` in ``dtype``; a no-op context when dtype is None (also
    on devices without autocast, such as the meta device)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def needs_loss_scaling(dtype):
    """float16 gradients underflow without a loss scale (GradScaler); bfloat16 and fp32 do not."""
    return dtype == torch.float16


def overflow_remedy(dtype):
    """What to try when a network's values overflowed under autocast in ``dtype``: float16
    holds nothing above 65504, bfloat16 has fp32's range; "" for other dtypes."""
    if dtype != torch.float16:
        return ""
    return ("float16 autocast overflows above 65504: try TRAIN.AMP_DTYPE bfloat16 (or "
            "TRAIN.AMP False)")
