"""A lock file that keeps two runs out of one output folder.

The lock holds ``<host> <pid> <boot id> <start time>`` of its owner: the boot id of the machine
(``/proc/sys/kernel/random/boot_id``) and the process's start time in clock ticks after boot
(field 22 of ``/proc/<pid>/stat``), ``-`` where the system has no ``/proc``.  Together they tell
the owner from a later process that got the same id.  Locks of the older ``<host> <pid>`` form
are read too.

A lock owned on this host by a process that is not its owner any more is taken over with a
warning: the process no longer exists (a killed run); the id is this process's own (a container
restarted, and the run got the id its predecessor had), unless this process itself holds the
lock through another ``FolderLock``; the machine restarted since (another boot id); or the id
now belongs to a process that started at another time.  A live owner, or one on another host
(which cannot be checked from here), stops the new run with an error naming the folder and
owner.  The warning is kept in ``FolderLock.takeover_warning`` for the caller to log once the
run's log file is open (the lock is taken before it, so that a refused run leaves the folder
alone).

The file appears with its content in one step (written beside it, then hard-linked into place), so
a lock that cannot be read is not a half-written one: it is treated as held, never as stale.
"""
import os
import socket
from typing import NamedTuple

from ..utils.errors import ProjectError

LOCK_NAME = "run.lock"
_UNKNOWN = "-"
_HELD = set()  # absolute paths of the locks this process holds


class FolderLockedError(ProjectError, RuntimeError):
    """The output folder belongs to another run."""


class Owner(NamedTuple):
    """Who holds a lock; ``boot_id`` and ``start`` are None when unknown (old locks, no /proc)."""

    host: str
    pid: int
    boot_id: str | None = None
    start: str | None = None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read_proc(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def boot_id():
    """This machine's boot id, None without /proc."""
    text = _read_proc("/proc/sys/kernel/random/boot_id")
    return text.strip() if text else None


def start_time(pid):
    """When process ``pid`` started, in clock ticks after boot (a string); None when unknown."""
    text = _read_proc(f"/proc/{pid}/stat")
    if not text:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count after its end.
    fields = text.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def _read_owner(path):
    """The ``Owner`` of the lock at ``path``; None when there is none."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    fields = text.split()
    try:
        if len(fields) not in (2, 4):
            raise ValueError
        host, pid, *identity = fields
        return Owner(host, int(pid), *(None if v == _UNKNOWN else v for v in identity))
    except ValueError:
        raise FolderLockedError(
            f"{path} exists but does not name its owner ({text.strip()[:60]!r}); delete it if no "
            f"run uses {os.path.dirname(path)}") from None


def _why_not_the_owner(owner, own):
    """Why process ``owner.pid`` on this host no longer owns the lock; None when it may."""
    if owner.pid == own.pid:
        return "which is this process's own id: a lock left by an earlier process with that id"
    if not _alive(owner.pid):
        return "which no longer runs"
    if owner.boot_id and own.boot_id and owner.boot_id != own.boot_id:
        return "from before the machine restarted (another boot id): that id is another process now"
    now = start_time(owner.pid)
    if owner.start and now and owner.start != now:
        return "whose id another process has taken since (another start time)"
    return None


class FolderLock:
    """``with FolderLock(folder):`` owns ``folder/run.lock`` for the block (or ``acquire`` /
    ``release``).  After ``acquire``, ``takeover_warning`` says whose stale lock was taken over
    (None when there was none), for the caller to log."""

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        pid = os.getpid()
        self.owner = Owner(socket.gethostname(), pid, boot_id(), start_time(pid))
        self.held = False
        self.takeover_warning = None

    def acquire(self):
        """Take the lock; raises FolderLockedError while another live run holds it."""
        for _ in range(3):  # a stale lock removed by a concurrent run: try again
            if self._create():
                self.held = True
                _HELD.add(os.path.abspath(self.path))
                return self
            self._remove_if_stale()
        raise FolderLockedError(f"cannot lock {self.folder}: {self.path} keeps reappearing")

    def _create(self):
        """Create the lock with its content in one step; False when a lock exists."""
        content = " ".join(_UNKNOWN if v is None else str(v) for v in self.owner) + "\n"
        tmp = f"{self.path}.{self.owner.host}.{self.owner.pid}.tmp"
        with open(tmp, "w") as f:
            f.write(content)
        try:
            os.link(tmp, self.path)  # fails when the lock exists, atomically (also on NFS)
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then write
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(content)
            return True
        finally:
            os.remove(tmp)

    def _remove_if_stale(self):
        owner = _read_owner(self.path)
        if owner is not None:
            reason = None
            if owner.host == self.owner.host and os.path.abspath(self.path) not in _HELD:
                reason = _why_not_the_owner(owner, self.owner)
            if reason is None:
                raise FolderLockedError(
                    f"output folder {self.folder} is in use by the run of process {owner.pid} "
                    f"on {owner.host} (lock file {self.path}); wait for it, start a new run "
                    f"(another RUN_DIR, or without AUTO_RESUME / TRAIN.RESUME), or delete the "
                    f"lock file if that run no longer exists")
            self.takeover_warning = (f"{self.folder}: taking over the stale lock of process "
                                     f"{owner.pid} on {owner.host}, {reason}")
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    def release(self):
        """Remove the lock file if this process still owns it."""
        if self.held:
            if _read_owner(self.path) == self.owner:
                os.remove(self.path)
            _HELD.discard(os.path.abspath(self.path))
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
