"""One command that checks a CUDA machine: every CUDA test, then the speed and memory table.

    python tools/gpu_check.py --out DIR [--budget SECONDS] [--dry-run]

With a CUDA device it runs, each step in its own process and within its own time budget, in
this order: the tests marked cuda (``pytest -m cuda``: tests/cuda/, one process per file, the
torch.compile test last), then ``tools/benchmark.py`` on the W48 offset network and OVeNet-OCR
at their Cityscapes recipes: train (fp32 and bf16 + channels-last, each without and with
activation checkpointing; GPU kernels per step, OHEM's kthvalue time), memory (the estimate, the
real peak and the largest batch on this GPU), single-scale inference and the six-scale + flip
evaluation of a 1024x2048 image (fp32 and bf16 + channels-last), and the training step under
torch.compile.  The whole run keeps within --budget seconds (default 480: 8 minutes); a step
that has no time left is reported as not run, one that runs out of its budget is stopped.

Without a CUDA device, or with --dry-run, it is a dry run on the CPU: the same steps with the
recipes' networks at tiny widths and images (the tests with --cuda-dry-run; compiling the
benchmark's step is left out: inductor takes minutes on a CPU), and a table of the GPU run's
shape whose figures read "no CUDA device".

DIR/gpu_check.md (device, driver, torch, CUDA and cuDNN versions, every test's result with its
figures, the table and its commands), DIR/gpu_check.json (every figure) and DIR/gpu_check.log
(each step's output) are rewritten after every step, so that a run stopped from outside leaves
what it had done.  Exit status 0 when every step ran and every test passed, else 1.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import argparse
import datetime
import importlib.util
import json
import platform
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import torch

from lib.engine.benchmark import CITYSCAPES_RECIPES
from lib.utils.atomic import write_json, write_text
from lib.utils.profiling import markdown_table, versions
from tools.cli import run

# The W48 networks the CUDA tests train, by name: their Cityscapes recipes.
NETWORKS = dict(zip(("hrnet", "hrnet_ocr", "offset", "ovenet_ocr"), CITYSCAPES_RECIPES,
                    strict=True))


@dataclass(frozen=True)
class Sizes:
    """Training crop (H, W) and images per step; evaluation image (H, W); the small image
    (H, W) of the comparisons with the CPU (a W48 network there takes seconds per forward)."""

    crop: tuple[int, int]
    batch: int
    image: tuple[int, int]
    small: tuple[int, int]


REAL = Sizes(crop=(512, 1024), batch=2, image=(1024, 2048), small=(64, 128))
TINY = Sizes(crop=(32, 64), batch=2, image=(64, 128), small=(32, 64))
# The dry run's networks: the recipes with one block per branch, widths 8-64 and a narrow OCR
# head (every module of the W48 network is still there).
TINY_OPTS = ["MODEL.EXTRA.STAGE1.NUM_BLOCKS", "[1]", "MODEL.EXTRA.STAGE1.NUM_CHANNELS", "[8]",
             "MODEL.OCR.MID_CHANNELS", "16", "MODEL.OCR.KEY_CHANNELS", "8"]
for _k in (2, 3, 4):
    for _stage in (f"STAGE{_k}", f"STAGE{_k}_2"):
        TINY_OPTS += [f"MODEL.EXTRA.{_stage}.NUM_MODULES", "1",
                      f"MODEL.EXTRA.{_stage}.NUM_BLOCKS", str([1] * _k),
                      f"MODEL.EXTRA.{_stage}.NUM_CHANNELS", str([8, 16, 32, 64][:_k])]

# The benchmark's networks: the paper's offset network and OVeNet-OCR.
BENCHMARKED = ("offset", "ovenet_ocr")
SCALES = "0.5,0.75,1.0,1.25,1.5,1.75"
# Each test's own limit where pytest-timeout is installed (the compile test compiles a W48 step),
# below its step's budget: a test stopped so is reported, a step stopped loses its report.
TEST_TIMEOUT, COMPILE_TIMEOUT = 90, 180
# A step is started only with at least this many seconds of the budget left.
MIN_START = 10
NO_DEVICE = "no CUDA device"
# Set by this tool for the test processes: where tests/cuda/conftest.py appends each result.
RESULTS_ENV = "GPU_CHECK_RESULTS"


@dataclass
class Step:
    """One process of the check: a test file or a benchmark run, with its longest time on a
    GPU (seconds) and, once it has run, its ``status`` and ``seconds``."""

    name: str
    argv: list
    budget: float
    kind: str  # "tests" or "benchmark"
    network: str = ""
    mode: str = ""
    planned: list = field(default_factory=list)  # benchmark: the rows' variant labels
    skip: str = ""  # why the step does not run (the dry run's compile)
    status: str = "not run: the budget was spent"
    seconds: float = 0.0


def pytest_argv(path, marker, dry_run, timeout):
    argv = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", marker, path]
    if dry_run:
        argv.append("--cuda-dry-run")
    if importlib.util.find_spec("pytest_timeout") is not None:
        argv += ["--timeout", str(timeout)]
    return argv


def pytest_steps(dry_run):
    files = [("training", "cuda and not compile", 100), ("memory", "cuda", 60),
             ("distributed", "cuda", 40), ("evaluation", "cuda", 60), ("export", "cuda", 45)]
    return [Step(f"tests: {name}", pytest_argv(f"tests/cuda/test_{name}.py", marker, dry_run,
                                               TEST_TIMEOUT), budget, "tests")
            for name, marker, budget in files]


def compile_test_step(dry_run):
    return Step("tests: torch.compile", pytest_argv("tests/cuda/test_training.py", "compile",
                                                    dry_run, COMPILE_TIMEOUT), 200, "tests")


def labels(variants, checkpointing):
    return [v + (" +ckpt" if on else "") for v in variants for on in checkpointing]


def benchmark_steps(dry_run, gpu_gb):
    """The benchmark runs of the table, most wanted first (the compile of OVeNet-OCR last)."""
    sizes = TINY if dry_run else REAL
    shrink = TINY_OPTS if dry_run else []
    (crop_h, crop_w), (image_h, image_w) = sizes.crop, sizes.image
    iters = ["--iters", "1", "--warmup", "0"] if dry_run else ["--iters", "5", "--warmup", "2"]
    eval_iters = iters if dry_run else ["--iters", "2", "--warmup", "1"]
    train = ["--mode", "train", *iters, "TRAIN.IMAGE_SIZE", f"[{crop_w},{crop_h}]",
             "TRAIN.BATCH_SIZE_PER_GPU", str(sizes.batch)]
    modes = {
        "train": (train + ["--variants", "fp32,bf16_cl", "--checkpointing", "off,on"], 40,
                  labels(["fp32", "bf16_cl"], [False, True])),
        "memory": (["--mode", "memory", "--crops", f"{crop_h}x{crop_w}", "--variants",
                    "fp32,bf16", "--checkpointing", "off,on", "--batch", str(sizes.batch),
                    "--gpu-memory", f"{gpu_gb:g}", *(["--device", "cpu"] if dry_run else [])],
                   30, labels(["fp32", "bf16"], [False, True])),
        "infer": (["--mode", "infer", *iters, "--size", str(image_h), str(image_w),
                   "--variants", "fp32,bf16_cl"], 30, ["fp32", "bf16_cl"]),
        "eval": (["--mode", "eval", *eval_iters, "--size", str(image_h),
                  str(image_w), "--variants", "fp32,bf16_cl", "TEST.SCALE_LIST", SCALES,
                  "TEST.FLIP_TEST", "True", "TEST.BASE_SIZE", str(image_w), "TEST.IMAGE_SIZE",
                  f"[{image_w},{image_h}]"], 50, ["fp32", "bf16_cl"]),
        "compile": (train + ["--variants", "bf16_cl_compile", "--checkpointing", "off"], 90,
                    ["bf16_cl_compile"]),
    }
    steps = {}
    for network in BENCHMARKED:
        for mode, (args, budget, planned) in modes.items():
            argv = ["tools/benchmark.py", "--cfg", NETWORKS[network], *args, *shrink]
            skip = "not run in the dry run: inductor compiles for minutes on a CPU" \
                if dry_run and mode == "compile" else ""
            steps[network, mode] = Step(f"benchmark: {network} {mode}", argv, budget,
                                        "benchmark", network, mode, planned, skip)
    order = [(n, m) for m in ("train", "memory", "infer") for n in BENCHMARKED]
    order += [("offset", "compile")] + [(n, "eval") for n in BENCHMARKED]
    order += [("ovenet_ocr", "compile")]
    return [steps[key] for key in order]


def all_steps(dry_run, gpu_gb):
    """Every step in the order they run: the tests, the benchmarks, the compile test after the
    eager benchmarks and before the offset network's compiled one (whose graph it compiles
    first).  The dry run runs every test in one process (each start costs seconds of imports on
    a CPU, and no budget has to be shared)."""
    benchmarks = benchmark_steps(dry_run, gpu_gb)
    if dry_run:
        tests = Step("tests", pytest_argv("tests/cuda", "cuda", True, TEST_TIMEOUT), 600, "tests")
        return [tests] + benchmarks
    at = next(i for i, s in enumerate(benchmarks) if s.mode == "compile")
    return [collect_step(), *pytest_steps(dry_run), *benchmarks[:at], compile_test_step(dry_run),
            *benchmarks[at:]]


def run_step(step, seconds, env, log):
    """Run ``step`` for at most ``seconds``, its whole process group stopped after that;
    sets its status and time, appends its output to ``log``."""
    start = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"\n===== {step.name}: python {shlex.join(step.argv)}\n")
        out.flush()
        proc = subprocess.Popen([sys.executable, *step.argv], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=seconds)
            step.status = "ok" if rc == 0 else f"failed (exit status {rc})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            step.status = f"stopped after its budget of {seconds:.0f} s"
    step.seconds = time.perf_counter() - start


def read_jsonl(path):
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def results_of(reports):
    """``(collected ids, {test id: {"outcome", "seconds", "properties", "message"}})`` of the
    lines of tests/cuda/conftest.py: the tests each process collected, then one line per test
    phase."""
    collected = list(dict.fromkeys(r["nodeid"] for r in reports if r["when"] == "collected"))
    tests = {}
    for r in reports:
        if r["when"] == "collected":
            continue
        test = tests.setdefault(r["nodeid"], {"outcome": "passed", "seconds": 0.0,
                                              "properties": {}, "message": ""})
        test["seconds"] += r["duration"]
        test["properties"].update(r["properties"])
        if r["outcome"] != "passed":
            test["outcome"] = "failed" if r["outcome"] == "failed" else r["outcome"]
            test["message"] = r["message"]
    return collected, tests


def collect_step():
    """``pytest --collect-only`` of every test marked cuda: a GPU run lists the tests its budget
    leaves out too."""
    return Step("tests: collect", ["-m", "pytest", "-q", "--collect-only", "-p",
                                   "no:cacheprovider", "-m", "cuda", "tests/cuda"], 60, "tests")


def environment(dry_run):
    """What the run ran on, from nvidia-smi and torch, without creating a CUDA context here
    (the tests measure the device's memory)."""
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": platform.node(), "versions": versions(),
            "CUDA (torch's build)": str(torch.version.cuda)}
    if dry_run:
        info["device"] = f"{NO_DEVICE}: a dry run on the CPU ({platform.processor() or platform.machine()})"
        return info
    query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
             "--format=csv,noheader,nounits"]
    if shutil.which("nvidia-smi"):
        name, memory, driver = subprocess.run(query, capture_output=True, text=True,
                                              timeout=30).stdout.splitlines()[0].split(", ")
        info.update(device=f"{name}, {int(memory) / 1024:.1f} GiB", driver=driver)
    info["NCCL"] = ".".join(map(str, torch.cuda.nccl.version()))
    return info


def gpu_memory_gb():
    """Total memory of the first GPU in GiB (nvidia-smi), else 80."""
    if not shutil.which("nvidia-smi"):
        return 80.0
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,"
                          "nounits"], capture_output=True, text=True, timeout=30).stdout
    return round(int(out.splitlines()[0]) / 1024, 1)


def _cell(value, fmt):
    return "—" if value is None else format(value, fmt)


def model_rows(step, rows, eager_ms):
    """Table rows of a train, infer, eval or compile run's figures."""
    lines = []
    for r in rows:
        if step.mode == "eval":
            other = f"procedure / its forwards {r['procedure_over_forwards']:.2f}"
        elif step.mode == "compile" and eager_ms:
            other = f"{eager_ms / r['ms_mean']:.2f}x the eager bf16_cl step"
        else:
            other = f"{r['speedup']:.2f}x the first row"
        selection = "—" if "selection_ms" not in r else \
            f"{r['selection_ms']:.2f} ({r['selection_calls']})"
        lines.append([r["variant"], f"{r['images_per_s']:.2f}", f"{r['ms_median']:.1f}",
                      f"{r['peak_mem_mb'] / 1024:.2f}", _cell(r.get("kernels_per_iter"), "d"),
                      selection, other])
    return lines


def memory_rows(rows, gpu_gb):
    lines = []
    for r in rows:
        fixed = sum(r[k] for k in ("parameters_bytes", "gradients_bytes",
                                   "optimizer_state_bytes", "parameter_copies_bytes"))
        per_image = r["saved_per_image_bytes"] + r["recompute_per_image_bytes"]
        estimate = (fixed + r["batch"] * per_image) / 2 ** 30
        peak = "—" if r["cuda_peak_bytes"] is None else \
            f"{r['cuda_peak_bytes'] / 2 ** 30:.2f} ({r['batch']} images)"
        lines.append([r["variant"] + (" +ckpt" if r["checkpointing"] else ""), "—", "—", peak,
                      "—", "—", f"estimate {estimate:.2f} GiB; largest batch on {gpu_gb:g} GB "
                                f"{r['largest_batch'][f'{gpu_gb:g}']}"])
    return lines


def speed_table(steps, figures, gpu_gb, dry_run):
    """One table of every benchmark step: its rows, or its planned rows with why they are
    empty; the cmd column numbers the commands listed under it."""
    headers = ["network", "mode", "variant", "images/s", "ms median", "peak GiB",
               "kernels/step", "kthvalue ms (calls)", "other", "cmd"]
    eager = {}
    lines = []
    for number, step in enumerate((s for s in steps if s.kind == "benchmark"), start=1):
        found = figures.get(step.name)
        if found is None or dry_run:
            why = NO_DEVICE if dry_run else step.status
            rows = [[label] + [why] * 6 for label in step.planned]
        elif step.mode == "memory":
            rows = memory_rows(found["rows"], gpu_gb)
        else:
            if step.mode == "train":
                eager[step.network] = next((r["ms_mean"] for r in found["rows"]
                                            if r["variant"] == "bf16_cl"), None)
            rows = model_rows(step, found["rows"], eager.get(step.network))
        lines += [[step.network, step.mode, *row, f"[{number}]"] for row in rows]
    return markdown_table(headers, lines)


def commands(gpu_gb):
    """The benchmark commands of the GPU run, numbered as the table's cmd column."""
    return [f"[{i}] `python {shlex.join(s.argv)}`" for i, s in
            enumerate((s for s in all_steps(False, gpu_gb) if s.kind == "benchmark"), start=1)]


def results_table(collected, tests):
    lines = []
    for nodeid in collected:
        test = tests.get(nodeid)
        if test is None:
            lines.append([nodeid, "not run", "", ""])
            continue
        figures = "; ".join(f"{k}: {v}" for k, v in test["properties"].items())
        lines.append([nodeid, test["outcome"], f"{test['seconds']:.1f}", figures])
    return markdown_table(["test", "result", "seconds", "figures"], lines)


def report_text(info, collected, tests, steps, figures, gpu_gb, dry_run):
    counts = {}
    for nodeid in collected:
        outcome = tests.get(nodeid, {"outcome": "not run"})["outcome"]
        counts[outcome] = counts.get(outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    parts = ["# GPU check (tools/gpu_check.py)", ""]
    parts += [f"- {key}: {value}" for key, value in info.items()]
    if dry_run:
        parts += ["", f"A dry run: {NO_DEVICE}. The tests ran on the CPU with the recipes' "
                      "networks at tiny widths and images; the table has the shape of the GPU "
                      "run and no figure."]
    parts += ["", f"## Tests (pytest -m cuda): {len(collected)} collected, {summary}", "",
              results_table(collected, tests)]
    failed = [(nodeid, t) for nodeid, t in tests.items() if t["outcome"] == "failed"]
    for nodeid, test in failed:
        parts += ["", f"### {nodeid}", "", "```", test["message"], "```"]
    parts += ["", "## Speed and memory (tools/benchmark.py)", "",
              speed_table(steps, figures, gpu_gb, dry_run), "", *commands(gpu_gb), "",
              "kthvalue ms (calls): OHEM's selection in one profiled step (CUDA: its kernels' "
              "time); kernels/step: GPU kernels of that step; peak GiB: max_memory_allocated "
              "(memory rows: of a whole step of the batch given, beside the estimate of "
              "lib.engine.memory_use)", "", "## Steps", "",
              markdown_table(["step", "status", "seconds", "budget s"],
                             [[s.name, s.status, f"{s.seconds:.1f}", f"{s.budget:g}"]
                              for s in steps])]
    return "\n".join(parts) + "\n"


def run_within(step, deadline, dry_run, env, log, scratch, figures):
    """Run ``step`` in what is left of the budget (a GPU step within its own budget too); a
    benchmark's figures go into ``figures`` under the step's name."""
    left = deadline - time.perf_counter()
    if step.skip:
        step.status = step.skip
        return
    if left < MIN_START:
        return
    argv = step.argv
    json_path = os.path.join(scratch, f"{step.network}_{step.mode}.json")
    if step.kind == "benchmark":
        step.argv = [*argv, "--json", json_path]
    try:
        run_step(step, left if dry_run else min(step.budget, left), env, log)
    finally:
        step.argv = argv
    if step.kind == "benchmark" and step.status == "ok":
        with open(json_path) as f:
            figures[step.name] = json.load(f)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for gpu_check.md, .json and .log")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole check (default 480 with a GPU; 1200 for "
                             "the dry run, a guard against a hang: it takes under 2 minutes of "
                             "CPU time)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the CPU run at tiny sizes, also where there is a GPU")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    dry_run = args.dry_run or not torch.cuda.is_available()
    budget = args.budget or (1200.0 if dry_run else 480.0)
    deadline = time.perf_counter() + budget
    os.makedirs(args.out, exist_ok=True)
    paths = {ext: os.path.join(args.out, f"gpu_check.{ext}") for ext in ("md", "json", "log")}
    open(paths["log"], "w").close()
    gpu_gb = 80.0 if dry_run else gpu_memory_gb()
    info = environment(dry_run)
    steps = all_steps(dry_run, gpu_gb)
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        results = os.path.join(scratch, "results.jsonl")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{RESULTS_ENV: results})
        if dry_run:
            env.setdefault("OMP_NUM_THREADS", "1")
        for step in steps:
            run_within(step, deadline, dry_run, env, paths["log"], scratch, figures)
            collected, tests = results_of(read_jsonl(results))
            write_text(paths["md"], report_text(info, collected, tests, steps, figures, gpu_gb,
                                                dry_run))
            write_json(paths["json"], {"environment": info, "dry_run": dry_run, "tests": tests,
                                       "steps": [vars(s) for s in steps],
                                       "benchmarks": figures}, indent=1)
    print(f"wrote {paths['md']}")
    complete = all(s.status == "ok" or s.skip for s in steps)
    passed = bool(collected) and all(tests.get(n, {}).get("outcome") in ("passed", "skipped")
                                     for n in collected)
    return 0 if complete and passed else 1


if __name__ == "__main__":
    sys.exit(run(main))
