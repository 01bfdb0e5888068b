"""Out of device memory in training, validation and testing: one clear error, nothing saved.

The CPU has no CUDA allocator to exhaust: the network's forward raises the error CUDA raises."""
import contextlib
import glob
import os
import subprocess
import sys
import time
import types

import pytest
import torch

from lib.config import load_cfg
from lib.engine import out_of_memory
from lib.engine.out_of_memory import OutOfMemoryMessage, OutOfMemoryRunError
from lib.models import build_model
from lib.utils.device import describe_memory
from lib.utils.errors import RunError
from tests.helpers import OFFSET_CFG, ROOT, free_port, small_opts

CUDA_MESSAGE = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                "79.19 GiB of which 1.12 GiB is free.")


def _run_out_of_memory_after(module, calls):
    """Make ``module``'s forward raise CUDA's error after ``calls`` forwards; returns the list
    of forwards (one entry each)."""
    real, count = module.forward, []

    def forward(*args, **kwargs):
        count.append(1)
        if len(count) > calls:
            raise torch.OutOfMemoryError(CUDA_MESSAGE)
        return real(*args, **kwargs)

    module.forward = forward
    return count


def _files(folder):
    """{name: bytes} of every file in ``folder`` (checkpoints included, temporary files too)."""
    return {name: open(os.path.join(folder, name), "rb").read()
            for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name)) and not name.endswith(".log")}


def test_out_of_memory_in_a_training_step_names_the_run_and_saves_nothing(make_trainer):
    # 8 images, 2 steps per epoch of 2 micro-batches of 2: the first epoch ends with a
    # checkpoint, the second one's first step runs out of memory.
    trainer = make_trainer(epochs=2, **{"TRAIN.ACCUMULATE_STEPS": 2, "TRAIN.EVAL_INTERVAL": 0})
    forwards = _run_out_of_memory_after(trainer.parts.step.model, calls=2 * 2)
    saved = []
    checkpointer = trainer.parts.checkpointer
    real_save = checkpointer.save
    checkpointer.save = lambda *a: (real_save(*a), saved.append(_files(trainer.output_dir)))
    with pytest.raises(OutOfMemoryRunError) as caught:
        trainer.fit()
    assert len(forwards) == 5 and len(saved) == 1
    assert _files(trainer.output_dir) == saved[0]  # no new file, the checkpoint unchanged
    assert "final_state.pth" not in saved[0] and "checkpoint.pth.tar" in saved[0]
    message = str(caught.value)
    assert isinstance(caught.value, RunError)
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    for part in ("out of memory in training of branched_seg_hrnet on device cpu",
                 "input: 4 images of 32x64 (H x W)", "crop [64, 32] [w, h] (TRAIN.IMAGE_SIZE)",
                 "TRAIN.BATCH_SIZE_PER_GPU 2 x TRAIN.ACCUMULATE_STEPS 2",
                 "fp32 (TRAIN.AMP False)", "  cause: CUDA out of memory. Tried to allocate 2.00 GiB",
                 "TRAIN.GRAD_CHECKPOINTING True",
                 "TRAIN.BATCH_SIZE_PER_GPU 1 TRAIN.ACCUMULATE_STEPS 4 (the same effective batch",
                 "TRAIN.AMP True (bfloat16"):
        assert part in message, (part, message)


def test_out_of_memory_in_validation_names_the_images_and_writes_no_checkpoint(make_trainer):
    trainer = make_trainer(epochs=1, **{"TRAIN.EVAL_INTERVAL": 1, "TRAIN.AMP": True})
    _run_out_of_memory_after(trainer.parts.step.model, calls=len(trainer.loader))  # training
    with pytest.raises(OutOfMemoryRunError) as caught:
        trainer.fit()
    message = str(caught.value)
    for part in ("out of memory in validation of branched_seg_hrnet on device cpu",
                 "input: 2 images of 64x128 (H x W)", "TEST.BATCH_SIZE_PER_GPU 2",
                 "autocast bfloat16 (TRAIN.AMP True)", "to fit, try one of:\n"
                 "  TEST.BATCH_SIZE_PER_GPU 1"):
        assert part in message, (part, message)
    assert "TRAIN.AMP True (bfloat16" not in message  # it is on already
    assert not {"checkpoint.pth.tar", "best.pth"} & set(os.listdir(trainer.output_dir))


def test_out_of_memory_in_a_test_run_names_the_procedure_and_writes_no_results(
        synthetic_root, tmp_path, monkeypatch):
    from lib.engine import tester

    weights = tmp_path / "weights.pth"
    opts = small_opts(synthetic_root, str(tmp_path)) + [
        "TEST.MODEL_FILE", str(weights), "TEST.SCALE_LIST", "0.5,1.0", "TEST.FLIP_TEST", "True",
        "TEST.WINDOW_BATCH", "4"]
    cfg = load_cfg(OFFSET_CFG, opts)
    torch.save(build_model(cfg, load_pretrained=False).state_dict(), weights)
    real_build = tester.build_eval_model

    def build_failing(*args):
        model = real_build(*args)
        _run_out_of_memory_after(model, calls=0)
        return model

    monkeypatch.setattr(tester, "build_eval_model", build_failing)
    with pytest.raises(OutOfMemoryRunError) as caught:
        tester.run_test(cfg, OFFSET_CFG, torch.device("cpu"), rank=0)
    message = str(caught.value)
    for part in ("out of memory in testing of branched_seg_hrnet on device cpu",
                 "input: 1 image of 64x128 (H x W)", "scales [0.5, 1.0]", "flip True",
                 "TEST.WINDOW_BATCH 4", "  TEST.WINDOW_BATCH 2", "TRAIN.AMP True (bfloat16",
                 "Tried to allocate 2.00 GiB"):
        assert part in message, (part, message)
    assert not glob.glob(os.path.join(str(tmp_path), "output", "**", "results.json"),
                         recursive=True)


def test_the_device_line_gives_name_total_and_peak_memory_of_a_cuda_device(monkeypatch):
    props = types.SimpleNamespace(name="NVIDIA H200", total_memory=int(139.8 * 2 ** 30))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda index: 120 * 2 ** 30 + 1)
    assert describe_memory(torch.device("cuda", 1)) == \
        "cuda:1 (NVIDIA H200, 139.8 GiB total, 120.0 GiB peak allocated)"
    assert describe_memory("cpu") == "device cpu"


def test_a_batch_of_one_suggests_a_smaller_crop_instead_of_accumulation():
    cfg = load_cfg(OFFSET_CFG, ["TRAIN.BATCH_SIZE_PER_GPU", "1", "TRAIN.ACCUMULATE_STEPS", "3"])
    remedies = OutOfMemoryMessage.training(cfg).remedies
    assert not any("ACCUMULATE_STEPS" in r for r in remedies)
    assert remedies[-1].startswith("a smaller crop TRAIN.IMAGE_SIZE")
    cfg = load_cfg(OFFSET_CFG, ["TRAIN.BATCH_SIZE_PER_GPU", "3"])
    assert "TRAIN.BATCH_SIZE_PER_GPU 1 TRAIN.ACCUMULATE_STEPS 3 (the same effective batch of 3" \
        in OutOfMemoryMessage.training(cfg).remedies[1]


def test_other_errors_pass_unchanged():
    with pytest.raises(ValueError, match="not memory"):
        with out_of_memory.explain_out_of_memory(OutOfMemoryMessage("training", "net"), "cpu"):
            raise ValueError("not memory")


# -- two processes: rank 1 runs out of memory while rank 0 waits in the gradient all-reduce ---
RANK_1_RUNS_OUT = """
import os, runpy, sys
sys.path.insert(0, {root!r})
import torch
from lib.engine import step

real = step.train_step
def train_step(*args, **kwargs):
    if os.environ["RANK"] == "1":
        raise torch.OutOfMemoryError({message!r})
    return real(*args, **kwargs)

step.train_step = train_step
sys.argv = ["tools/train.py", *sys.argv[1:]]
runpy.run_path(os.path.join({root!r}, "tools", "train.py"), run_name="__main__")
"""


def test_out_of_memory_on_one_rank_ends_every_rank(synthetic_root, tmp_path):
    # No launcher that would end the others: each rank must exit by itself (srun without
    # --kill-on-bad-exit).
    script = tmp_path / "rank_1_runs_out.py"
    script.write_text(RANK_1_RUNS_OUT.format(root=ROOT, message=CUDA_MESSAGE))
    args = [sys.executable, str(script), "--cfg", OFFSET_CFG,
            *small_opts(synthetic_root, str(tmp_path), epochs=1)]
    port = str(free_port())
    procs = []
    started = time.time()
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port, OMP_NUM_THREADS="1",
                   PYTHONUNBUFFERED="1")
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert procs[0].returncode != 0 and procs[1].returncode == 2, outputs
    # The tool's one line, naming the rank (tools/cli.py), and no traceback.
    assert "error: rank 1: out of memory in training of branched_seg_hrnet" in outputs[1]
    assert "Traceback" not in outputs[1], outputs[1]
    assert "out of memory" not in outputs[0], outputs[0]  # rank 0 sees its peer leave
    written = glob.glob(os.path.join(str(tmp_path), "output", "**", "*.pth*"), recursive=True)
    assert not {"checkpoint.pth.tar", "final_state.pth"} & {os.path.basename(p) for p in written}
    print(f"both ranks ended {time.time() - started:.1f} s after the start")


def test_launched_aborts_the_process_group_on_an_error_and_destroys_it_otherwise(monkeypatch):
    import torch.distributed as td

    from lib.engine import launch
    from lib.utils import distributed as dist

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # launched leaves the thread count alone
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    calls = []
    monkeypatch.setattr(dist, "abort", lambda real=dist.abort: (calls.append("abort"), real()))
    for fails in (False, True):
        with pytest.raises(RunError) if fails else contextlib.nullcontext():
            with launch.launched(None, []):
                td.init_process_group("gloo", rank=0, world_size=1)  # as a launcher's group
                if fails:
                    raise OutOfMemoryRunError("rank 1 ran out")
        assert not dist.is_initialized()
        assert calls == (["abort"] if fails else [])


def test_checkpointing_is_suggested_only_when_it_is_off():
    off = OutOfMemoryMessage.training(load_cfg(OFFSET_CFG, []))
    on = OutOfMemoryMessage.training(load_cfg(OFFSET_CFG, ["TRAIN.GRAD_CHECKPOINTING", "True"]))
    assert off.remedies[0].startswith("TRAIN.GRAD_CHECKPOINTING True")
    assert not any("GRAD_CHECKPOINTING" in r for r in on.remedies)
    assert on.remedies == off.remedies[1:]
