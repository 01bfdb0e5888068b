"""One run per output folder: the lock file, stale locks, and a second run that stops at once."""
import logging
import os
import socket
import subprocess
import sys

import pytest

from lib.engine.folder_lock import LOCK_NAME, FolderLock, FolderLockedError
from lib.models.weights import CheckpointError
from tests.tools.helpers import OFFSET_CFG

HOST = socket.gethostname()
NAME = os.path.splitext(os.path.basename(OFFSET_CFG))[0]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_holds_host_and_pid_and_is_removed_on_release(tmp_path):
    with FolderLock(str(tmp_path)):
        assert (tmp_path / LOCK_NAME).read_text().split() == [HOST, str(os.getpid())]
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_live_owner_stops_the_second_run_naming_folder_and_owner(tmp_path):
    owner = os.getppid()  # alive for as long as this test runs
    (tmp_path / LOCK_NAME).write_text(f"{HOST} {owner}\n")
    with pytest.raises(FolderLockedError) as error:
        FolderLock(str(tmp_path)).acquire()
    assert str(tmp_path) in str(error.value) and str(owner) in str(error.value)
    assert HOST in str(error.value)
    assert (tmp_path / LOCK_NAME).read_text().split() == [HOST, str(owner)]


def test_an_owner_on_another_host_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("some-other-node 12\n")
    with pytest.raises(FolderLockedError, match="some-other-node"):
        FolderLock(str(tmp_path)).acquire()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(f"{HOST} {dead}\n")
    with caplog.at_level(logging.WARNING):
        lock = FolderLock(str(tmp_path)).acquire()
    assert f"stale lock of process {dead}" in caplog.text
    assert (tmp_path / LOCK_NAME).read_text().split() == [HOST, str(os.getpid())]
    lock.release()


def _folder(tmp_path):
    return tmp_path / "output" / "cityscapes" / NAME


def test_a_second_trainer_stops_at_once_and_leaves_the_first_runs_config(make_trainer, tmp_path):
    first = make_trainer(epochs=1)
    config = (_folder(tmp_path) / "config.yaml").read_text()
    with pytest.raises(FolderLockedError, match=str(_folder(tmp_path))):
        make_trainer(epochs=2)
    assert (_folder(tmp_path) / "config.yaml").read_text() == config
    first.close()
    assert not (_folder(tmp_path) / LOCK_NAME).exists()


def test_a_run_that_fails_to_start_leaves_config_and_no_lock(make_trainer, tmp_path):
    make_trainer(epochs=1).close()
    config = (_folder(tmp_path) / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match="no_such_weights.pth"):
        make_trainer(epochs=3, **{"MODEL.PRETRAINED": "no_such_weights.pth"})
    assert (_folder(tmp_path) / "config.yaml").read_text() == config
    assert not (_folder(tmp_path) / LOCK_NAME).exists()


def test_a_lock_that_does_not_name_its_owner_is_held_not_stale(tmp_path):
    # What a reader could see of a lock that is still being written, were it not written whole.
    (tmp_path / LOCK_NAME).write_text("")
    with pytest.raises(FolderLockedError, match="does not name its owner"):
        FolderLock(str(tmp_path)).acquire()
    assert (tmp_path / LOCK_NAME).exists()


def test_the_lock_appears_whole_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    seen = []
    link = os.link

    def watching_link(src, dst):
        seen.append(open(src).read())
        return link(src, dst)

    monkeypatch.setattr(os, "link", watching_link)
    with FolderLock(str(tmp_path)):
        assert seen == [f"{HOST} {os.getpid()}\n"]
    assert os.listdir(tmp_path) == []
