"""The tables and notes of the memory mode: bytes per image and fixed costs, the largest batch
of each GPU size, and the batch and accumulation steps that train a recipe's effective batch on
one GPU."""
import shlex

from ...utils.memory import GIB
from ...utils.profiling import markdown_table
from ..memory_use import FREE_BYTES, FREE_SHARE
from .variants import VARIANTS

__all__ = ["memory_table", "settings_table", "settings_example", "memory_notes",
           "one_gpu_settings", "effective_batch"]


def _crop_text(crop):
    return "x".join(map(str, crop))


def memory_table(rows, sizes_gb):
    """The measured bytes of each row in GiB, and its largest batch for each of ``sizes_gb``."""
    headers = ["network", "dataset (classes)", "crop", "precision", "checkpointing",
               "saved GiB/image", "recompute GiB/image", "params+grads+opt GiB",
               "weight copies GiB", "CUDA peak GiB (batch)"] + \
        [f"batch @ {gb:g} GB" for gb in sizes_gb]
    lines = []
    for r in rows:
        fixed = r["parameters_bytes"] + r["gradients_bytes"] + r["optimizer_state_bytes"]
        peak = "n/a" if r["cuda_peak_bytes"] is None \
            else f"{r['cuda_peak_bytes'] / GIB:.2f} ({r['batch']})"
        lines.append([r["network"], f"{r['dataset']} ({r['classes']})", _crop_text(r["crop"]),
                      r["variant"], "on" if r["checkpointing"] else "off",
                      f"{r['saved_per_image_bytes'] / GIB:.3f}",
                      f"{r['recompute_per_image_bytes'] / GIB:.3f}", f"{fixed / GIB:.3f}",
                      f"{r['parameter_copies_bytes'] / GIB:.3f}", peak]
                     + [str(r["largest_batch"][f"{gb:g}"]) for gb in sizes_gb])
    return markdown_table(headers, lines)


def effective_batch(row):
    """The recipe's images per optimiser step: batch per GPU x GPUs x accumulation steps."""
    return row["recipe_batch_per_gpu"] * row["recipe_gpus"] * row["recipe_accumulate_steps"]


def one_gpu_settings(effective, largest):
    """``(TRAIN.BATCH_SIZE_PER_GPU, TRAIN.ACCUMULATE_STEPS)`` that train ``effective`` images
    per step on one GPU that fits ``largest`` images: the largest divisor of ``effective`` that
    fits, and the steps that make up the rest; None when not even one image fits."""
    if largest < 1:
        return None
    batch = max(b for b in range(1, min(largest, effective) + 1) if effective % b == 0)
    return batch, effective // batch


def settings_table(rows, sizes_gb):
    """What to type on one GPU of each size to train the recipe's effective batch."""
    headers = ["network", "dataset", "crop", "precision", "checkpointing", "recipe"] + \
        [f"{gb:g} GB" for gb in sizes_gb]
    lines = []
    for r in rows:
        recipe = (f"{r['recipe_batch_per_gpu']} x {r['recipe_gpus']} GPUs"
                  + (f" x {r['recipe_accumulate_steps']}" if r["recipe_accumulate_steps"] > 1
                     else "") + f" = {effective_batch(r)}")
        cells = []
        for gb in sizes_gb:
            settings = one_gpu_settings(effective_batch(r), r["largest_batch"][f"{gb:g}"])
            cells.append("does not fit" if settings is None else f"{settings[0]} x {settings[1]}")
        lines.append([r["network"], r["dataset"], _crop_text(r["crop"]), r["variant"],
                      "on" if r["checkpointing"] else "off", recipe] + cells)
    return markdown_table(headers, lines)


def settings_example(rows, sizes_gb):
    """The command line of the first row that fits, on the largest GPU size."""
    gb = max(sizes_gb)
    for r in rows:
        settings = one_gpu_settings(effective_batch(r), r["largest_batch"][f"{gb:g}"])
        if settings is not None:
            variant = VARIANTS[r["variant"]]
            flags = [word for key, on in (("TRAIN.AMP", variant.amp),
                                          ("TRAIN.CHANNELS_LAST", variant.channels_last),
                                          ("TRAIN.COMPILE", variant.compile),
                                          ("TRAIN.GRAD_CHECKPOINTING", r["checkpointing"]))
                     if on for word in (key, "True")]
            return (f"e.g. {r['network']} at {_crop_text(r['crop'])} on one {gb:g} GB GPU: "
                    "python " + shlex.join(["tools/train.py", "--cfg", r["config"], *flags,
                                            "TRAIN.BATCH_SIZE_PER_GPU", str(settings[0]),
                                            "TRAIN.ACCUMULATE_STEPS", str(settings[1])]))
    return f"not one image fits on {gb:g} GB in any row"


def memory_notes(rows):
    """What the columns mean, which recipes each crop measured, and what checkpointing kept."""
    notes = ["saved GiB/image: distinct storages that autograd saves for backward in the forward "
             "and the loss (lib.utils.memory.saved_tensor_bytes), parameters and their copies "
             "left out",
             "recompute GiB/image: with checkpointing, what the largest recomputed segment "
             "saves (the backward holds it while it recomputes that segment)",
             "weight copies GiB: autocast's bf16 copies of the weights that the forward saves "
             "(and the largest recomputed segment makes again): once per step whatever the "
             "batch, like the weights",
             f"batch @ N GB: the largest B with params+grads+opt + weight copies + B x (saved + "
             f"recompute) <= N GB x {1 - FREE_SHARE:g} - {FREE_BYTES / GIB:g} GiB "
             f"(lib.engine.memory_use), an estimate; GB = 2^30 bytes"]
    for crop in dict.fromkeys(tuple(r["crop"]) for r in rows):
        crop_rows = [r for r in rows if tuple(r["crop"]) == crop]
        classes = sorted({(r["dataset"], r["classes"]) for r in crop_rows})
        foreign = sorted({_crop_text(r["recipe_crop"]) for r in crop_rows
                          if tuple(r["recipe_crop"]) != crop})
        notes.append(f"{_crop_text(crop)}: the {', '.join(f'{d} ({k} classes)' for d, k in classes)}"
                     f" recipes" + (f", whose own crop is {', '.join(foreign)} (H x W)"
                                    if foreign else ""))
    off = {(r["config"], tuple(r["crop"]), r["variant"]): r for r in rows
           if not r["checkpointing"]}
    for r in rows:
        base = off.get((r["config"], tuple(r["crop"]), r["variant"]))
        if r["checkpointing"] and base is not None:
            share = r["saved_per_image_bytes"] / base["saved_per_image_bytes"]
            notes.append(f"{r['network']} {_crop_text(r['crop'])} {r['variant']}: "
                         f"checkpointing keeps {share:.3f} of the saved bytes")
    return notes
