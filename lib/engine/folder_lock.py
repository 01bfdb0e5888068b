"""A lock file that keeps two runs out of one output folder.

The lock holds ``<host> <pid>`` of its owner.  A lock whose owner runs on this host but no longer
exists (a killed run) is stale and taken over with a warning; a live owner, or one on another host
(which cannot be checked from here), stops the new run with an error naming the folder and owner.
The file appears with its content in one step (written beside it, then hard-linked into place), so
a lock that cannot be read is not a half-written one: it is treated as held, never as stale.
"""
import logging
import os
import socket

from ..utils.errors import ProjectError

logger = logging.getLogger(__name__)

LOCK_NAME = "run.lock"


class FolderLockedError(ProjectError, RuntimeError):
    """The output folder belongs to another run."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read_owner(path):
    """``(host, pid)`` of the lock at ``path``; None when there is none."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        host, pid = text.split()
        return host, int(pid)
    except ValueError:
        raise FolderLockedError(
            f"{path} exists but does not name its owner ({text.strip()[:60]!r}); delete it if no "
            f"run uses {os.path.dirname(path)}") from None


class FolderLock:
    """``with FolderLock(folder):`` owns ``folder/run.lock`` for the block (or ``acquire`` /
    ``release``)."""

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self.owner = (socket.gethostname(), os.getpid())
        self.held = False

    def acquire(self):
        """Take the lock; raises FolderLockedError while another live run holds it."""
        for _ in range(3):  # a stale lock removed by a concurrent run: try again
            if self._create():
                self.held = True
                return self
            self._remove_if_stale()
        raise FolderLockedError(f"cannot lock {self.folder}: {self.path} keeps reappearing")

    def _create(self):
        """Create the lock with its content in one step; False when a lock exists."""
        content = "{} {}\n".format(*self.owner)
        tmp = f"{self.path}.{self.owner[0]}.{self.owner[1]}.tmp"
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
            host, pid = owner
            if host != socket.gethostname() or _alive(pid):
                raise FolderLockedError(
                    f"output folder {self.folder} is in use by the run of process {pid} on "
                    f"{host} (lock file {self.path}); wait for it, choose another OUTPUT_DIR, "
                    f"or delete the lock file if that run no longer exists")
            logger.warning("%s: taking over the stale lock of process %d on %s, which no longer "
                           "runs", self.folder, pid, host)
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    def release(self):
        """Remove the lock file if this process still owns it."""
        if self.held and _read_owner(self.path) == self.owner:
            os.remove(self.path)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
