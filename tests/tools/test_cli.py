"""tools/cli.py: an error of the project's own types ends a tool with one line, ``error: <message>``,
and exit status 2; --debug or OVENET_DEBUG=1 adds the traceback; other exceptions keep theirs."""
import ast
import glob
import importlib
import inspect
import os
import pkgutil

import pytest

import lib
from lib.config import ConfigError
from lib.utils.errors import ProjectError
from tests.helpers import OFFSET_CFG, ROOT, run_tool, small_opts
from tools.cli import run


def _raising(error, seen=None):
    def main(argv):
        if seen is not None:
            seen.append(argv)
        raise error
    return main


@pytest.fixture(autouse=True)
def _one_process(monkeypatch):
    for name in ("OVENET_DEBUG", "RANK", "WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)


def test_a_project_error_is_one_line_and_status_2(capsys):
    error = ConfigError("command line: unknown config key TRAIN.OHEMTHRES; did you mean "
                        "LOSS.OHEMTHRES?")
    assert run(_raising(error), ["--cfg", "x.yaml"]) == 2
    assert capsys.readouterr().err == f"error: {error}\n"


@pytest.mark.parametrize("flag, env", [("--debug", None), (None, "1")])
def test_debug_adds_the_traceback_and_is_not_passed_on(capsys, monkeypatch, flag, env):
    if env:
        monkeypatch.setenv("OVENET_DEBUG", env)
    seen = []
    argv = ["--cfg", "x.yaml", *([flag] if flag else []), "TRAIN.LR", "0.1"]
    assert run(_raising(ConfigError("bad key"), seen), argv) == 2
    assert seen == [["--cfg", "x.yaml", "TRAIN.LR", "0.1"]]
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)") and err.endswith(
        "error: bad key\n")


def test_other_exceptions_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        run(_raising(ZeroDivisionError("a bug")), [])


def test_the_exit_status_of_main_is_returned():
    assert run(lambda argv: None, []) is None
    assert run(lambda argv: 1, []) == 1


def test_each_rank_of_a_multi_process_run_names_itself(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run(_raising(ConfigError("bad key")), []) == 2
    assert capsys.readouterr().err == "error: rank 1: bad key\n"


def test_every_error_class_of_the_library_is_a_project_error():
    classes = []
    for module in pkgutil.walk_packages(lib.__path__, "lib."):
        for _, obj in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.name:
                classes.append(obj)
    assert len(classes) >= 9, classes  # RunError, ConfigError, DatasetError, CheckpointError, ...
    assert [c for c in classes if not issubclass(c, ProjectError)] == []


def test_every_tool_ends_through_the_wrapper():
    ends = {}
    for path in glob.glob(os.path.join(ROOT, "tools", "*.py")):
        tree = ast.parse(open(path).read())
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                ends[os.path.basename(path)] = ast.unparse(node.body[0])
    assert {"train.py", "test.py", "infer.py", "export.py", "compare.py", "make_lists.py",
            "make_synthetic_dataset.py", "study.py", "diagnose_offsets.py",
            "benchmark.py"} <= set(ends)
    assert {name: end for name, end in ends.items() if end != "sys.exit(run(main))"} == {}


def test_a_wrong_dataset_root_ends_train_with_one_line_and_reaches_the_log(tmp_path):
    missing = str(tmp_path / "no_data")
    opts = small_opts(missing, str(tmp_path), epochs=1)
    proc = run_tool(["tools/train.py", "--cfg", OFFSET_CFG, *opts], check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"error: dataset root (DATASET.ROOT) not found: {missing}\n"
    log, = glob.glob(os.path.join(str(tmp_path), "output", "**", "train_*.log"), recursive=True)
    ending = open(log).read().split("ERROR the run ended with an error")[1]
    assert "Traceback (most recent call last)" in ending and missing in ending
    # A start that failed is not the latest run, and left no empty file behind.
    assert not glob.glob(os.path.join(str(tmp_path), "output", "*", "*", "latest"))
    files = [p for p in glob.glob(os.path.join(str(tmp_path), "**"), recursive=True)
             if os.path.isfile(p)]
    assert files and [p for p in files if os.path.getsize(p) == 0] == []


def test_a_missing_validation_list_stops_the_start_before_anything_is_written(synthetic_root,
                                                                               tmp_path):
    opts = small_opts(synthetic_root, str(tmp_path), epochs=1,
                      **{"DATASET.TEST_SET": "list/cityscapes/missing.lst"})
    proc = run_tool(["tools/train.py", "--cfg", OFFSET_CFG, *opts], check=False)
    assert proc.returncode == 2 and "missing.lst" in proc.stderr, proc.stderr
    # The data is built before the TensorBoard writer, the checkpoints and the config: the run
    # folder holds only its log, and no run is the latest.
    assert not glob.glob(os.path.join(str(tmp_path), "log", "**", "events.*"), recursive=True)
    written = [os.path.basename(p) for p in glob.glob(os.path.join(str(tmp_path), "output", "**"),
                                                      recursive=True) if os.path.isfile(p)]
    assert [name for name in written if not name.startswith("train_")] == []
