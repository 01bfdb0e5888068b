"""The checkpointing mode: what TRAIN.GRAD_CHECKPOINTING costs.  For each variant the training
step of the train mode without and with it, timed in turn in every iteration so that both meet
the same load of a shared machine; the ratio with / without."""
import statistics

from ...utils.compat import reset_compiled
from ...utils.profiling import Timing, device_name, markdown_table, time_interleaved
from .bench import Bench
from .variants import row_settings, variant_cfg, variant_names

__all__ = ["run_checkpointing_mode"]


def run_checkpointing_mode(cfg, settings, device):
    """``(header, table, notes, figures)``: for each variant, the training step without and
    with TRAIN.GRAD_CHECKPOINTING, timed in turn."""
    bench = Bench(cfg, settings, device)
    variants, refused = row_settings(variant_names(settings.variants, device), [True], cfg)
    rows = []
    for variant, _ in variants:
        steps = [bench.train_parts(variant_cfg(cfg, variant, on)) for on in (False, True)]
        off, on = time_interleaved([lambda p=p, run=run: run(p.model) for p, run in steps],
                                   settings.iters, settings.warmup, bench.sync)
        rows.append({"variant": variant.name, "without_ms": Timing.of(off).median,
                     "with_ms": Timing.of(on).median,
                     "ratio_median": statistics.median(b / a for a, b in zip(off, on)),
                     "ratio_of_means": sum(on) / sum(off),
                     "without_ms_each": [1e3 * t for t in off],
                     "with_ms_each": [1e3 * t for t in on]})
        if variant.compile:
            reset_compiled()
    table = markdown_table(
        ["variant", "ms without (median)", "ms with (median)", "with / without (median)",
         "ratio of means"],
        [[r["variant"], f"{r['without_ms']:.1f}", f"{r['with_ms']:.1f}",
          f"{r['ratio_median']:.3f}", f"{r['ratio_of_means']:.3f}"] for r in rows])
    notes = ["with / without: median over the iterations of the ratio of the two steps' "
             "times"] + refused
    return (bench.header(device_name(device)), table, notes,
            {"batch": bench.batch, "image_hw": list(bench.hw), "rows": rows})
