"""tools/benchmark.py on the tiny quick-start network: every mode prints every figure."""
import json
import statistics

import pytest
import torch

from lib.config import load_cfg
from lib.engine.benchmark.memory_mode import memory_recipes
from lib.models import build_model
from tests.helpers import OFFSET_CFG
from tools import benchmark

SMALL = ["--iters", "2", "--warmup", "1", "TRAIN.BATCH_SIZE_PER_GPU", "2",
         "TRAIN.IMAGE_SIZE", "[64,32]", "TEST.IMAGE_SIZE", "[64,32]", "TEST.BASE_SIZE", "64",
         "LOSS.OHEMKEEP", "1000"]
MODEL_COLUMNS = ["variant", "images/s", "ms/iter mean", "median", "p90", "peak mem MB",
                 "TFLOP/s", "% of peak"]


@pytest.fixture(autouse=True)
def one_thread():
    """Other test runs may share the cores; one thread keeps the small runs quick."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(capsys, *args):
    assert benchmark.main(["--cfg", OFFSET_CFG, *SMALL, *args]) == 0
    return capsys.readouterr().out


def table(out, index=0):
    """The ``index``-th printed Markdown table as a list of {column: cell} rows."""
    tables, previous = [], ""
    for line in out.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    lines = tables[index]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert set(lines[1]) <= set("|-:"), "second table line is not a Markdown rule"
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]


def header_value(out, key):
    return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith(key + ":"))


def test_train_mode_prints_header_and_every_figure(capsys):
    out = run(capsys, "--mode", "train")
    for key in ("device", "versions", "config", "model", "batch", "command"):
        assert header_value(out, key)
    assert "torch " + torch.__version__ in header_value(out, "versions")
    assert "Python" in header_value(out, "versions") and "cuDNN" in header_value(out, "versions")
    params = sum(p.numel() for p in build_model(load_cfg(OFFSET_CFG)).parameters())
    assert header_value(out, "model") == f"branched_seg_hrnet, {params:,} parameters"
    assert header_value(out, "batch").startswith("2 images per training step, 32x64")
    assert header_value(out, "command").startswith("python tools/benchmark.py --cfg ")
    [row] = table(out)
    assert list(row)[:len(MODEL_COLUMNS)] == MODEL_COLUMNS
    assert row["variant"] == "fp32" and row["speed vs fp32"] == "1.00x"
    for column in ("images/s", "ms/iter mean", "median", "p90", "peak mem MB", "TFLOP/s"):
        assert float(row[column]) > 0, column
    assert row["% of peak"] == "n/a"  # no peak is known for a CPU
    assert "GFLOP" in out and "process peak RSS" in out and "unknown (give --peak-tflops)" in out


def test_infer_mode_prints_latency_percentiles_for_one_image(capsys):
    out = run(capsys, "--mode", "infer")
    assert header_value(out, "batch").startswith("1 image per forward_logits call, 32x64")
    [row] = table(out)
    assert float(row["median"]) <= float(row["p90"])
    assert float(row["images/s"]) == pytest.approx(1e3 / float(row["ms/iter mean"]), rel=0.05)
    assert float(row["TFLOP/s"]) > 0


def test_eval_mode_replays_the_procedures_forwards_and_prints_the_ratio(capsys, tmp_path):
    path = tmp_path / "eval.json"
    out = run(capsys, "--mode", "eval", "--json", str(path), "TEST.SCALE_LIST", "0.5,1.0,1.5",
              "TEST.FLIP_TEST", "True", "TEST.WINDOW_BATCH", "4")
    [row] = table(out)
    assert float(row["proc/fwd"]) > 0 and float(row["forwards ms"]) > 0
    figures = json.loads(path.read_text())["rows"][0]
    # 32x64 image, base size 64: scale 0.5 -> 16x32 whole, 1.0 -> 32x64 whole, 1.5 -> 48x96 in
    # 2 x 2 windows of 32x64, one batch of TEST.WINDOW_BATCH 4; flip doubles every batch.
    assert figures["forward_shapes"] == [[2, 3, 16, 32], [2, 3, 32, 64], [8, 3, 32, 64]]
    each = zip(figures["procedure_ms_each"], figures["forwards_ms_each"], strict=True)
    assert figures["procedure_over_forwards"] == pytest.approx(
        statistics.median(p / f for p, f in each))
    assert figures["ms_median"] == pytest.approx(statistics.median(figures["procedure_ms_each"]))
    assert row["proc/fwd"] == f"{figures['procedure_over_forwards']:.3f}"
    assert "forwards per image: 3" in out


def test_two_variants_print_two_rows_with_the_speed_ratio(capsys):
    out = run(capsys, "--mode", "infer", "--variants", "fp32,bf16")
    rows = table(out)
    assert [r["variant"] for r in rows] == ["fp32", "bf16"]
    assert rows[0]["speed vs fp32"] == "1.00x"
    ratio = float(rows[0]["ms/iter mean"]) / float(rows[1]["ms/iter mean"])
    assert float(rows[1]["speed vs fp32"].rstrip("x")) == pytest.approx(ratio, rel=0.1, abs=0.02)


def test_json_holds_the_printed_numbers_and_the_given_peak(capsys, tmp_path):
    path = tmp_path / "train.json"
    out = run(capsys, "--mode", "train", "--json", str(path), "--peak-tflops", "0.5")
    data = json.loads(path.read_text())
    [printed] = table(out)
    [row] = data["rows"]
    assert data["mode"] == "train" and data["batch"] == 2 and data["image_hw"] == [32, 64]
    assert printed["images/s"] == f"{row['images_per_s']:.2f}"
    assert printed["ms/iter mean"] == f"{row['ms_mean']:.1f}"
    assert printed["median"] == f"{row['ms_median']:.1f}"
    assert printed["peak mem MB"] == f"{row['peak_mem_mb']:.0f}"
    assert printed["TFLOP/s"] == f"{row['tflops']:.4f}"
    assert row["tflops"] == pytest.approx(data["flops_per_iter"] / (row["ms_mean"] / 1e3) / 1e12)
    assert row["peak_tflops"] == 0.5 and row["pct_of_peak"] == pytest.approx(200 * row["tflops"])
    assert printed["% of peak"] == f"{row['pct_of_peak']:.2f}"
    assert data["header"]["command"] in out


def test_train_flops_count_the_backward_pass(capsys, tmp_path):
    train, infer = tmp_path / "train.json", tmp_path / "infer.json"
    run(capsys, "--mode", "train", "--json", str(train))
    run(capsys, "--mode", "infer", "--batch", "2", "--size", "32", "64", "--json", str(infer))
    ratio = json.loads(train.read_text())["flops_per_iter"] / \
        json.loads(infer.read_text())["flops_per_iter"]
    # Backward of a conv costs two forwards (input and weight gradients), minus the input
    # gradient of the first convolution.
    assert 2.5 < ratio <= 3.0


def test_data_mode_reports_the_training_loaders_throughput(capsys, synthetic_root):
    out = run(capsys, "--mode", "data", "--iters", "5", "DATASET.ROOT", synthetic_root,
              "WORKERS", "0", "TRAIN.BASE_SIZE", "128")
    [row] = table(out)
    assert row["loader"] == "train loader, 0 workers"
    assert float(row["samples/s"]) > 0 and float(row["ms/batch mean"]) > 0
    assert "8 samples" in header_value(out, "dataset")


def test_data_mode_without_data_says_how_to_make_it_and_fails(capsys, tmp_path):
    code = benchmark.main(["--cfg", OFFSET_CFG, "--mode", "data",
                           "DATASET.ROOT", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code != 0
    assert "tools/make_synthetic_dataset.py" in err and "--size 1024 2048" in err


@pytest.mark.parametrize("args, listed", [
    (["--mode", "fly"], "'train', 'infer', 'eval', 'data'"),
    (["--variants", "fp32,fp64"], "fp32, fp32_cl, bf16, bf16_cl, bf16_cl_compile"),
    (["--iters", "0"], "must be >= 1"),
])
def test_invalid_arguments_are_rejected_with_the_valid_choices(capsys, args, listed):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(["--cfg", OFFSET_CFG, *args])
    assert exit_info.value.code == 2
    assert listed in capsys.readouterr().err


def test_memory_mode_reports_saved_bytes_that_grow_with_the_crop(capsys, tmp_path):
    path = tmp_path / "memory.json"
    assert benchmark.main(["--cfg", OFFSET_CFG, "--mode", "memory", "--crops", "32x64,64x128",
                           "--variants", "fp32", "--checkpointing", "off", "--gpu-memory",
                           "2,4", "--json", str(path), "LOSS.OHEMKEEP", "1000"]) == 0
    out = capsys.readouterr().out
    printed = table(out)
    rows = json.loads(path.read_text())["rows"]
    assert [(r["crop"], r["variant"], r["checkpointing"]) for r in rows] == [
        ([32, 64], "fp32", False), ([64, 128], "fp32", False)]
    small, large = (r["saved_per_image_bytes"] for r in rows)
    assert large == pytest.approx(4 * small, rel=0.05)  # activations grow with the pixels
    for shown, row in zip(printed, rows, strict=True):
        assert shown["saved GiB/image"] == f"{row['saved_per_image_bytes'] / 2 ** 30:.3f}"
        assert shown["CUDA peak GiB (batch)"] == "n/a"  # measured on CUDA only
        fixed = row["parameters_bytes"] + row["gradients_bytes"] + row["optimizer_state_bytes"]
        assert row["optimizer_state_bytes"] == row["parameters_bytes"]  # SGD momentum
        for gb in (2, 4):
            per_image = row["saved_per_image_bytes"] + row["recompute_per_image_bytes"]
            expected = int((gb * 2 ** 30 * 0.8 - 2 ** 30 - fixed) // per_image)
            assert expected > 0 and int(shown[f"batch @ {gb:g} GB"]) == expected
    assert "batch @ N GB: the largest B" in out


def test_memory_mode_says_what_to_type_for_the_recipes_effective_batch(capsys, tmp_path):
    path = tmp_path / "memory.json"
    assert benchmark.main(["--cfg", OFFSET_CFG, "--mode", "memory", "--crops", "32x64",
                           "--variants", "fp32", "--gpu-memory", "1.3,1.5,2,80", "--json",
                           str(path), "TRAIN.BATCH_SIZE_PER_GPU", "3", "GPUS", "(0,1,2,3)",
                           "LOSS.OHEMKEEP", "1000"]) == 0
    out = capsys.readouterr().out
    assert header_value(out, "device").startswith("meta device")  # not "CPU"
    rows = json.loads(path.read_text())["rows"]
    for shown, row in zip(table(out, 1), rows, strict=True):
        assert shown["recipe"] == "3 x 4 GPUs = 12"
        for gb in ("1.3", "1.5", "2", "80"):
            largest = row["largest_batch"][gb]
            cell = shown[f"{gb} GB"]
            if largest == 0:
                assert cell == "does not fit"
                continue
            batch, steps = (int(v) for v in cell.split(" x "))
            # the largest divisor of 12 images that fits, the steps that make up 12
            assert batch * steps == 12 and batch <= largest
            assert not any(12 % b == 0 for b in range(batch + 1, largest + 1))
        assert row["largest_batch"]["80"] >= 12 and shown["80 GB"] == "12 x 1"
    assert [r["largest_batch"]["1.3"] for r in rows] != [r["largest_batch"]["80"] for r in rows]
    assert "TRAIN.BATCH_SIZE_PER_GPU 12 TRAIN.ACCUMULATE_STEPS 1" in out


def test_the_520x520_rows_use_the_ade20k_recipes_and_their_150_classes():
    args = benchmark.parse_args(["--mode", "memory", "--crops", "512x1024,520x520,1024x1024"])
    by_crop = {crop: [cfg for _, cfg in configs] for crop, configs in
               memory_recipes(args.cfg, args.opts, args.crops)}
    assert {c.DATASET.DATASET for c in by_crop[(520, 520)]} == {"ade20k"}
    assert {c.DATASET.NUM_CLASSES for c in by_crop[(520, 520)]} == {150}
    assert len(by_crop[(512, 1024)]) == 4 and len(by_crop[(520, 520)]) == 3
    for crop in ((512, 1024), (1024, 1024)):  # the Cityscapes recipes (19 classes)
        assert {c.DATASET.NUM_CLASSES for c in by_crop[crop]} == {19}


def test_bf16_on_the_meta_device_is_refused_with_what_to_do(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for args in (["--variants", "fp32,bf16"], ["--variants", "bf16", "--device", "meta"]):
        with pytest.raises(SystemExit) as exit_info:
            benchmark.main(["--mode", "memory", "--crops", "32x64", *args])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "autocast has no meta backend" in err and "--device cpu" in err


def test_bf16_weight_copies_are_a_fixed_cost_in_the_memory_table(capsys, tmp_path):
    figures = []
    for batch in (1, 2):
        path = tmp_path / f"memory{batch}.json"
        assert benchmark.main(["--cfg", OFFSET_CFG, "--mode", "memory", "--crops", "64x128",
                               "--variants", "bf16", "--checkpointing", "off", "--device", "cpu",
                               "--batch", str(batch), "--json", str(path),
                               "LOSS.OHEMKEEP", "1000"]) == 0
        [row] = json.loads(path.read_text())["rows"]
        figures.append(row)
    one, two = figures
    assert one["parameter_copies_bytes"] == two["parameter_copies_bytes"] > 0
    assert two["saved_per_image_bytes"] == pytest.approx(one["saved_per_image_bytes"], rel=0.01)
    [shown] = table(capsys.readouterr().out)
    assert shown["weight copies GiB"] == f"{two['parameter_copies_bytes'] / 2 ** 30:.3f}"


def test_train_mode_runs_every_variant_without_and_with_checkpointing(capsys, tmp_path):
    path = tmp_path / "train.json"
    out = run(capsys, "--mode", "train", "--variants", "fp32,bf16", "--checkpointing", "off,on",
              "--json", str(path), "LOSS.USE_OHEM", "True")
    rows = table(out)
    assert [r["variant"] for r in rows] == ["fp32", "fp32 +ckpt", "bf16", "bf16 +ckpt"]
    # OHEM's selection runs once per term of the offset network: S_i, S_s and S_f
    assert all(r["kthvalue ms (calls)"].endswith("(3)") for r in rows)
    assert all(r["kernels/step"] == "n/a" for r in rows)  # counted on CUDA only
    assert [r["checkpointing"] for r in json.loads(path.read_text())["rows"]] == \
        [False, True, False, True]


def test_memory_mode_alone_needs_no_config():
    assert benchmark.parse_args(["--mode", "memory"]).cfg is None
    assert benchmark.parse_args(["--mode", "memory", "--crops", "520x520"]).crops == [(520, 520)]
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--mode", "train"])
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--mode", "memory", "--crops", "512by1024"])


def test_checkpointing_mode_times_both_steps_in_turn_and_prints_the_ratio(capsys, tmp_path):
    path = tmp_path / "checkpointing.json"
    out = run(capsys, "--mode", "checkpointing", "--batch", "1", "--json", str(path),
              "--variants", "fp32,bf16_cl_compile")
    [row] = json.loads(path.read_text())["rows"]  # compile with checkpointing is refused
    assert len(row["without_ms_each"]) == len(row["with_ms_each"]) == 2
    ratios = [b / a for a, b in zip(row["without_ms_each"], row["with_ms_each"], strict=True)]
    assert row["ratio_median"] == pytest.approx(statistics.median(ratios))
    assert row["ratio_of_means"] == pytest.approx(sum(row["with_ms_each"]) /
                                                  sum(row["without_ms_each"]))
    [shown] = table(out)
    assert shown["with / without (median)"] == f"{row['ratio_median']:.3f}"
    assert header_value(out, "batch").startswith("1 image per training step, 32x64")
    assert "bf16_cl_compile with checkpointing: not run" in out


def test_analysis_mode_prints_each_stage_beside_the_forward(capsys, tmp_path):
    path = tmp_path / "analysis.json"
    out = run(capsys, "--mode", "analysis", "--batch", "2", "--json", str(path))
    figures = json.loads(path.read_text())
    assert figures["predictions"] == ["logits", "seed_logits", "fused_logits"]
    ms = figures["ms_per_image"]
    rows = {r["stage"]: r for r in table(out)}
    assert list(rows) == ["forward", "final prediction resize + argmax", "every prediction (inputs) - final",
                          "analysis update", "added: inputs - final + update"]
    assert rows["forward"]["% of the forward"] == "100.0"
    added = ms["predictions"] - ms["final"] + ms["analysis"]
    assert rows["added: inputs - final + update"]["ms/image"] == f"{added:.1f}"
    assert header_value(out, "batch").startswith("2 images per forward, 32x64")
