"""tools/gpu_check.py: its dry run on the CPU runs every CUDA test and writes the report; its
steps keep within their budgets."""
import json
import subprocess
import sys

import pytest
import torch

from lib.config import load_cfg
from tests.helpers import ROOT, run_tool
from tools import benchmark, gpu_check
from tools.gpu_check import NO_DEVICE, Step


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    proc = run_tool(["tools/gpu_check.py", "--out", str(out), "--dry-run"], timeout=1500)
    return proc, out


def collected_cuda_tests():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p",
                           "no:cacheprovider", "-m", "cuda", "tests/cuda", "--cuda-dry-run"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    return [line for line in proc.stdout.splitlines() if "::" in line]


def table_under(text, heading):
    """The cells of the rows of the first Markdown table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.mark.slow
def test_the_dry_run_runs_every_cuda_test_and_writes_the_tables_shape(dry_run):
    proc, out = dry_run
    assert proc.returncode == 0
    text = (out / "gpu_check.md").read_text()
    figures = json.loads((out / "gpu_check.json").read_text())
    expected = collected_cuda_tests()
    assert len(expected) > 40
    assert set(figures["tests"]) == set(expected)
    assert all(t["outcome"] == "passed" for t in figures["tests"].values())
    assert f"## Tests (pytest -m cuda): {len(expected)} collected, {len(expected)} passed" in text
    assert f"device: {NO_DEVICE}: a dry run on the CPU" in text
    rows = table_under(text, "## Speed and memory")
    modes = [r[1] for r in rows]
    # two networks: fp32 and bf16_cl without and with checkpointing; the same for memory with
    # bf16; infer and eval fp32 and bf16_cl; the compiled step
    assert {m: modes.count(m) for m in modes} == {"train": 8, "memory": 8, "infer": 4,
                                                  "eval": 4, "compile": 2}
    assert all(cell == NO_DEVICE for r in rows for cell in r[3:9])
    # the commands of the table are the GPU run's, at the real sizes
    assert "[1] `python tools/benchmark.py --cfg experiments/cityscapes/" in text
    assert "--size 1024 2048" in text and "--crops 512x1024" in text
    steps = {s["name"]: s["status"] for s in figures["steps"]}
    assert all(status == "ok" or status.startswith("not run in the dry run") for status in
               steps.values())
    assert (out / "gpu_check.log").stat().st_size > 0


@pytest.mark.slow
def test_a_gpu_runs_figures_fill_the_table(dry_run):
    # The dry run's figures (tiny networks on the CPU) in the table as a GPU run writes it.
    _, out = dry_run
    found = json.loads((out / "gpu_check.json").read_text())["benchmarks"]
    steps = gpu_check.all_steps(False, 80.0)
    table = gpu_check.speed_table(steps, found, 80.0, dry_run=False)
    rows = table_under("\n" + table, "\n")
    train = next(r for r in rows if r[:3] == ["offset", "train", "bf16_cl +ckpt"])
    assert float(train[3]) > 0 and train[6] == "—"  # no kernels counted off CUDA
    assert train[7].endswith("(3)")  # OHEM's kthvalue once per term: S_i, S_s, S_f
    memory = next(r for r in rows if r[:3] == ["offset", "memory", "bf16"])
    assert memory[8].startswith("estimate") and "largest batch on 80 GB" in memory[8]
    assert [r[1] for r in rows if r[3] == "not run: the budget was spent"] == ["compile"] * 2


def test_the_gpu_run_compiles_after_the_eager_benchmarks_and_within_8_minutes():
    steps = gpu_check.all_steps(False, 80.0)
    names = [s.name for s in steps]
    assert names[0] == "tests: collect" and names[1] == "tests: training"
    assert names.index("tests: torch.compile") < names.index("benchmark: offset compile")
    assert names.index("benchmark: offset train") < names.index("tests: torch.compile")
    assert gpu_check.parse_args(["--out", "x"]).budget is None  # 480 s with a GPU
    compile_test = steps[names.index("tests: torch.compile")]
    assert "compile" in compile_test.argv and "--cuda-dry-run" not in compile_test.argv


def test_the_gpu_runs_benchmark_commands_are_valid(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # memory mode: not meta
    for step in gpu_check.all_steps(False, 80.0):
        if step.kind == "benchmark":
            assert step.argv[0] == "tools/benchmark.py"
            args = benchmark.parse_args(step.argv[1:])
            load_cfg(args.cfg, args.opts)  # every override names a key, with a valid value
            assert args.mode in step.mode or step.mode == "compile"


def test_a_step_without_time_left_is_not_run_and_one_over_its_budget_is_stopped(tmp_path):
    log = str(tmp_path / "log")
    late = Step("late", ["-c", "pass"], 10, "tests")
    gpu_check.run_within(late, deadline=0.0, dry_run=False, env={}, log=log,
                         scratch=str(tmp_path), figures={})
    assert late.status == "not run: the budget was spent" and late.seconds == 0
    slow = Step("slow", ["-c", "import time; time.sleep(60)"], 1, "tests")
    gpu_check.run_step(slow, 1, env=None, log=log)
    assert slow.status == "stopped after its budget of 1 s" and slow.seconds < 30
    failing = Step("failing", ["-c", "raise SystemExit(3)"], 10, "tests")
    gpu_check.run_step(failing, 10, env=None, log=log)
    assert failing.status == "failed (exit status 3)"
    assert "===== slow: python -c" in open(log).read()


def test_the_phases_of_a_test_make_one_result():
    lines = [{"nodeid": "a", "when": "collected"}, {"nodeid": "b", "when": "collected"},
             {"nodeid": "a", "when": "call", "outcome": "passed", "duration": 1.5,
              "properties": {"x": 1}, "message": ""},
             {"nodeid": "a", "when": "teardown", "outcome": "failed", "duration": 0.5,
              "properties": {}, "message": "boom"}]
    collected, tests = gpu_check.results_of(lines)
    assert collected == ["a", "b"]
    assert tests == {"a": {"outcome": "failed", "seconds": 2.0, "properties": {"x": 1},
                           "message": "boom"}}
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in gpu_check.results_table(collected, tests).splitlines()[2:]]
    assert rows == [["a", "failed", "2.0", "x: 1"], ["b", "not run", "", ""]]
