"""One run per output folder: the lock file, stale locks, and a second run that stops at once."""
import os
import socket
import subprocess
import sys

import pytest

from lib.engine.folder_lock import LOCK_NAME, FolderLock, FolderLockedError
from lib.models.weights import CheckpointError
from tests.helpers import OFFSET_CFG

HOST = socket.gethostname()
NAME = os.path.splitext(os.path.basename(OFFSET_CFG))[0]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _identity(pid):
    """[boot id, start time] of process ``pid``, read here from /proc."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    with open(f"/proc/{pid}/stat") as f:
        start = f.read().split(") ")[-1].split()[19]  # field 22: starttime
    return [boot, start]


def _lock_of(pid, *identity):
    return " ".join([HOST, str(pid), *identity]) + "\n"


def test_the_lock_holds_host_pid_boot_id_and_start_time_and_is_removed_on_release(tmp_path):
    with FolderLock(str(tmp_path)):
        assert (tmp_path / LOCK_NAME).read_text() == _lock_of(os.getpid(),
                                                              *_identity(os.getpid()))
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


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path):
    dead = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(f"{HOST} {dead}\n")
    lock = FolderLock(str(tmp_path)).acquire()
    assert f"stale lock of process {dead} on {HOST}, which no longer runs" in \
        lock.takeover_warning
    assert (tmp_path / LOCK_NAME).read_text().split()[:2] == [HOST, str(os.getpid())]
    lock.release()


@pytest.mark.parametrize("content", [f"{HOST} {os.getpid()}\n",
                                     _lock_of(os.getpid(), *_identity(os.getpid()))],
                         ids=["old-form", "with-identity"])
def test_a_lock_naming_this_process_is_taken_over(tmp_path, content):
    """A restarted container: its run got the process id of the run that left the lock."""
    (tmp_path / LOCK_NAME).write_text(content)
    lock = FolderLock(str(tmp_path)).acquire()
    assert f"process {os.getpid()} on {HOST}, which is this process's own id" in \
        lock.takeover_warning
    assert (tmp_path / LOCK_NAME).read_text() == _lock_of(os.getpid(), *_identity(os.getpid()))
    lock.release()


@pytest.mark.parametrize("which, reason", [(1, "another start time"), (0, "another boot id")])
def test_a_lock_whose_process_id_was_reused_is_taken_over(tmp_path, which, reason):
    alive = os.getppid()  # a live process that is not the lock's owner
    identity = _identity(alive)
    identity[which] = "1"  # the owner's: another boot, or another start time
    (tmp_path / LOCK_NAME).write_text(_lock_of(alive, *identity))
    lock = FolderLock(str(tmp_path)).acquire()
    assert f"process {alive} on {HOST}" in lock.takeover_warning
    assert reason in lock.takeover_warning
    lock.release()


def test_a_live_owner_with_its_own_start_time_stops_the_second_run(tmp_path):
    owner = os.getppid()
    (tmp_path / LOCK_NAME).write_text(_lock_of(owner, *_identity(owner)))
    with pytest.raises(FolderLockedError, match=f"process {owner} on {HOST}"):
        FolderLock(str(tmp_path)).acquire()


def test_a_lock_this_process_holds_is_not_taken_over_by_its_second_lock(tmp_path):
    with FolderLock(str(tmp_path)):
        with pytest.raises(FolderLockedError, match=f"process {os.getpid()}"):
            FolderLock(str(tmp_path)).acquire()
    FolderLock(str(tmp_path)).acquire().release()  # free again once released


def test_the_takeover_warning_is_in_the_runs_log_file(make_trainer, tmp_path):
    folder = _folder(tmp_path)
    folder.mkdir(parents=True)
    dead = _dead_pid()
    (folder / LOCK_NAME).write_text(f"{HOST} {dead}\n")
    make_trainer(epochs=1, RUN_DIR=str(folder)).close()
    (log,) = folder.glob("train_*.log")
    assert f"taking over the stale lock of process {dead}" in log.read_text()


def _folder(tmp_path):
    return tmp_path / "runs" / "one"


def _continue(folder, **extra):
    """Overrides that put a run into ``folder`` and continue what is there: the ways two runs
    can meet in one folder, now that each new run has its own."""
    return {"RUN_DIR": str(folder), "AUTO_RESUME": True, **extra}


def test_a_second_trainer_stops_at_once_and_leaves_the_first_runs_config(make_trainer, tmp_path):
    first = make_trainer(epochs=1, **_continue(_folder(tmp_path)))
    config = (_folder(tmp_path) / "config.yaml").read_text()
    with pytest.raises(FolderLockedError, match=str(_folder(tmp_path))):
        make_trainer(epochs=2, **_continue(_folder(tmp_path)))
    assert (_folder(tmp_path) / "config.yaml").read_text() == config
    first.close()
    assert not (_folder(tmp_path) / LOCK_NAME).exists()


def test_a_run_that_fails_to_start_leaves_config_and_no_lock(make_trainer, tmp_path):
    make_trainer(epochs=1, **_continue(_folder(tmp_path))).close()
    config = (_folder(tmp_path) / "config.yaml").read_text()
    with pytest.raises(CheckpointError, match="no_such_weights.pth"):
        make_trainer(epochs=3, **_continue(_folder(tmp_path),
                                           **{"MODEL.PRETRAINED": "no_such_weights.pth"}))
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
        assert seen == [_lock_of(os.getpid(), *_identity(os.getpid()))]
    assert os.listdir(tmp_path) == []
