"""Files written whole or not at all: a write that fails midway (a full disk) leaves the previous
file and no partial file, and its error names the file and the reason; for lib.utils.atomic and
every writer built on it (results.json, figures, prediction PNGs, exported networks, lists)."""
import errno
import json
import os

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from lib.config import load_cfg
from lib.datasets.lists import write_list
from lib.engine.tester import run_test
from lib.evaluation.figures import save_figure
from lib.models import build_model
from lib.models.export import export
from lib.utils import atomic
from lib.utils.atomic import FileWriteError, write_bytes
from lib.utils.visualize import save_png
from tests.helpers import small_opts, tiny_cfg

PREVIOUS = b"the previous file\n"


class _FullDisk:
    """A binary file whose first write stores half of its data, then fails as a full disk does."""

    def __init__(self, path, mode):
        self.file = open(path, mode)  # noqa: SIM115 (closed in __exit__)

    def write(self, data):
        data = bytes(data)
        self.file.write(data[:len(data) // 2])
        self.file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.fixture
def full_disk(monkeypatch):
    monkeypatch.setattr(atomic, "open", _FullDisk, raising=False)


def _fails_and_keeps_the_previous_file(path, write):
    """``write()`` on a full disk: the error names ``path`` and ENOSPC, ``path`` still holds
    PREVIOUS, and no other file is left in its folder (a run's log file aside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PREVIOUS)
    before = sorted(os.listdir(path.parent))
    with pytest.raises(FileWriteError) as error:
        write()
    message = str(error.value)
    assert str(path) in message and "No space left on device (ENOSPC)" in message, message
    assert path.read_bytes() == PREVIOUS
    new = [n for n in os.listdir(path.parent) if n not in before and not n.endswith(".log")]
    assert new == []  # no temporary or partial file


def test_a_write_replaces_the_file_whole_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "a" / "file.bin"
    write_bytes(str(path), b"first")
    write_bytes(str(path), b"second")
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == ["file.bin"]


def test_a_write_that_fails_midway_keeps_the_previous_file(tmp_path, full_disk):
    path = tmp_path / "file.bin"
    _fails_and_keeps_the_previous_file(path, lambda: write_bytes(str(path), b"x" * 1000))


def test_an_error_of_the_writer_itself_keeps_the_previous_file_and_its_type(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(PREVIOUS)

    def broken_writer(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise ValueError("the encoder failed")

    with pytest.raises(ValueError, match="the encoder failed"), atomic.atomic_path(str(path)) \
            as tmp:
        broken_writer(tmp)
    assert path.read_bytes() == PREVIOUS and os.listdir(tmp_path) == ["out.png"]


def test_prediction_pngs_are_written_whole(tmp_path, full_disk):
    path = tmp_path / "labelIds" / "frame.png"
    image = np.zeros((4, 6), np.uint8)
    _fails_and_keeps_the_previous_file(path, lambda: save_png(str(path), image))


def test_a_png_written_in_memory_first_reads_back_equal(tmp_path):
    import cv2

    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    save_png(tmp_path / "rgb.png", image)
    assert np.array_equal(cv2.imread(str(tmp_path / "rgb.png"))[..., ::-1], image)


def test_figures_are_written_whole(tmp_path, full_disk):
    path = tmp_path / "iou.png"
    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    _fails_and_keeps_the_previous_file(path, lambda: save_figure(fig, str(path)))


def test_lists_are_written_whole(tmp_path, full_disk):
    path = tmp_path / "train.lst"
    _fails_and_keeps_the_previous_file(path, lambda: write_list(str(path), [("a.png", "b.png")]))


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_files_are_written_whole(tmp_path, fmt, monkeypatch):
    if fmt == "onnx":
        pytest.importorskip("onnx")
    model = build_model(tiny_cfg(), load_pretrained=False).eval()
    path = tmp_path / f"net.{fmt}"
    export(model, str(path), fmt, (32, 32))  # the exported file in full, to compare with
    complete = path.stat().st_size
    monkeypatch.setattr(atomic, "open", _FullDisk, raising=False)
    _fails_and_keeps_the_previous_file(path, lambda: export(model, str(path), fmt, (32, 32)))
    assert complete > 2 * len(PREVIOUS)  # the failed write had more to write than it left


def test_results_json_is_written_whole(synthetic_root, trained_run, tmp_path, monkeypatch):
    cfg_path, _, folder = trained_run
    cfg = load_cfg(cfg_path, small_opts(synthetic_root, str(tmp_path), **{
        "TEST.MODEL_FILE": os.path.join(folder, "final_state.pth"),
        "TEST.EVAL_DIR": str(tmp_path / "evaluation")}))
    results = tmp_path / "evaluation" / "results.json"
    full_at = {"results.json"}
    real_open = open

    def open_fails_for_results(path, mode="r", *args, **kwargs):
        if "w" in mode and os.path.basename(path).startswith(".results."):
            assert full_at, "written once only"
            full_at.clear()
            return _FullDisk(path, mode)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic, "open", open_fails_for_results, raising=False)
    _fails_and_keeps_the_previous_file(
        results, lambda: run_test(cfg, cfg_path, torch.device("cpu"), rank=0))
    monkeypatch.undo()
    run_test(cfg, cfg_path, torch.device("cpu"), rank=0)
    assert json.loads(results.read_text())["num_images"] == 4
